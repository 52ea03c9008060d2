#include "onebit/modeldir/weights.h"

#include <set>
#include <string>

#include "onebit/core/error.h"

namespace onebit::modeldir {

void check_weights_match(const formats::SafetensorsFile& f, const std::vector<model::ParamInfo>& layout) {
  const std::string file = f.path().string();
  std::set<std::string> expected;
  for (const auto& p : layout) {
    expected.insert(p.name);
    if (!f.contains(p.name))
      fail(file, ": tensor \"", p.name, "\" is missing (the file was written for a different model config)");
    const formats::TensorInfo& t = f.info(p.name);
    if (t.dtype != formats::DType::F32)
      fail(file, ": tensor \"", p.name, "\" is ", formats::dtype_name(t.dtype), ", expected F32 master weights");
    if (t.shape != p.shape)
      fail(file, ": tensor \"", p.name, "\" has shape ", formats::shape_string(t.shape), " but the model config needs ",
           formats::shape_string(p.shape), " (the file was written for a different model config)");
  }
  for (const auto& t : f.tensors())
    if (!expected.count(t.name))
      fail(file, ": tensor \"", printable(t.name), "\" is not a parameter of this model (different model config?)");
}

void load_weights(const fs::path& path, model::Transformer& model) {
  formats::SafetensorsFile f(path);
  check_weights_match(f, model.params_info());
  // Read on the host, then one upload: check_weights_match guarantees every range is filled.
  std::vector<float> params(model.num_params(), 0.0f);
  for (const auto& p : model.params_info())
    f.read_f32(p.name, p.shape, std::span<float>(params).subspan(p.offset, p.numel));
  model.upload_params(params);
}

}  // namespace onebit::modeldir
