#include "onebit/hfio/import_hf.h"

#include <cmath>
#include <set>

#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/formats/safetensors.h"
#include "onebit/hfio/hf_tensors.h"
#include "onebit/hfio/ternary_pack.h"
#include "onebit/model/param_layout.h"

namespace onebit::hfio {
namespace {

bool is_bitnet_linear(const model::ParamInfo& p) {
  return p.shape.size() == 2 && p.name.rfind("model.layers.", 0) == 0;  // q/k/v/o/gate/up/down
}

// The scalar weight_scale of `module` (a (1,) or () float tensor), positive and finite.
float read_weight_scale(const HfTensors& t, const std::string& module) {
  const std::string name = module + ".weight_scale";
  if (!t.contains(name))
    fail("tensor \"", printable(name), "\" is missing (quantization_mode offline stores one per linear)");
  const std::vector<float> v = t.read_float(name);
  if (v.size() != 1) fail(t.describe(name), " has ", v.size(), " values; expected one per-tensor scale");
  if (!(v[0] > 0) || !std::isfinite(v[0])) fail(t.describe(name), " is ", v[0], "; a scale must be positive");
  return v[0];
}

// An offline (pre-quantized) linear: ternary codes, packed uint8 or stored as floats in {-1, 0, 1},
// and the factor g with W_eff = t * g. transformers' BitLinear computes y = (x_q . t) / (s_x * weight_scale),
// so there g = 1 / weight_scale; AutoBitLinear multiplies its output by weight_scale: g = weight_scale.
std::vector<float> offline_linear(const HfTensors& t, const HfModel& m, const model::ParamInfo& p, bool& packed) {
  const std::string module = p.name.substr(0, p.name.size() - std::string(".weight").size());
  const formats::TensorInfo& info = t.info(p.name);
  const int64_t out = p.shape[0], in = p.shape[1];
  std::vector<int8_t> codes;
  packed = info.dtype == formats::DType::U8;
  if (packed) {
    const std::vector<int64_t> want = {out / 4, in};
    if (out % 4 != 0)
      fail(t.describe(p.name), " is packed uint8, but out_features ", out,
           " is not divisible by 4 (the 2B4T layout holds 4 rows per byte row)");
    if (info.shape != want)
      fail(t.describe(p.name), " has packed shape ", formats::shape_string(info.shape), "; the 2B4T layout of a [",
           out, ", ", in, "] weight is uint8", formats::shape_string(want), " (4 rows per byte row)");
    codes = unpack_ternary_rows(t.bytes(p.name).data(), out, in, t.describe(p.name));
  } else {
    if (m.linear_class == LinearClass::BitLinear)
      fail(t.describe(p.name), " is ", formats::dtype_name(info.dtype),
           "; linear_class bitlinear (offline) stores packed uint8 weights");
    if (info.shape != p.shape)
      fail(t.describe(p.name), " has shape ", formats::shape_string(info.shape), " but the config needs ",
           formats::shape_string(p.shape));
    const std::vector<float> w = t.read_float(p.name);
    codes.resize(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      if (w[i] != -1.0f && w[i] != 0.0f && w[i] != 1.0f)
        fail(t.describe(p.name), " holds ", w[i], " at element ", i,
             "; an offline checkpoint stores ternary codes -1, 0, 1");
      codes[i] = static_cast<int8_t>(w[i]);
    }
  }
  const float ws = read_weight_scale(t, module);
  const float g = m.linear_class == LinearClass::BitLinear ? 1.0f / ws : ws;
  return master_from_codes(codes, g);
}

// Names a checkpoint may hold that are no parameter of the model: RoPE's cached frequencies, and
// lm_head.weight when tied (transformers ignores it then).
bool ignorable(const std::string& name, const model::ModelConfig& c) {
  if (name.find("rotary_emb.inv_freq") != std::string::npos) return true;
  return c.tie_word_embeddings && name == "lm_head.weight";
}

}  // namespace

ImportSummary import_hf(const fs::path& hf_dir, const fs::path& out_dir) {
  if (!fs::is_directory(hf_dir)) fail(printable(hf_dir.string(), 4096), ": not a directory");
  const fs::path cfg_path = hf_dir / "config.json";
  if (!fs::exists(cfg_path))
    fail(printable(cfg_path.string(), 4096), ": not found (is this a Hugging Face model dir?)");
  ImportSummary s;
  s.source = parse_hf_config(read_json_file(cfg_path), printable(cfg_path.string(), 4096));
  const HfModel& m = s.source;
  const fs::path tok_path = hf_dir / "tokenizer.json";
  if (!fs::exists(tok_path))
    fail(printable(tok_path.string(), 4096), ": not found (onebit reads the Hugging Face tokenizer.json)");

  const HfTensors t(hf_dir);
  const model::ParamLayout layout = model::build_param_layout(m.config);
  std::set<std::string> used;
  // Checked and converted one tensor at a time; nothing is written until every tensor is good.
  std::vector<std::vector<float>> values(layout.info.size());
  const bool offline = m.quantized && m.mode == QuantMode::Offline;
  for (size_t i = 0; i < layout.info.size(); ++i) {
    const model::ParamInfo& p = layout.info[i];
    if (!t.contains(p.name)) fail("tensor \"", p.name, "\" is missing from ", printable(hf_dir.string(), 4096));
    used.insert(p.name);
    if (offline && is_bitnet_linear(p)) {
      bool packed = false;
      values[i] = offline_linear(t, m, p, packed);
      used.insert(p.name.substr(0, p.name.size() - 6) + "weight_scale");
      s.packed_tensors += packed;
      continue;
    }
    const formats::TensorInfo& info = t.info(p.name);
    if (info.shape != p.shape)
      fail(t.describe(p.name), " has shape ", formats::shape_string(info.shape), " but config.json needs ",
           formats::shape_string(p.shape));
    if (info.dtype == formats::DType::U8)
      fail(t.describe(p.name), " is packed uint8, but config.json's quantization_config is not offline bitnet");
    values[i] = t.read_float(p.name);
  }
  for (const std::string& name : t.names())
    if (!used.count(name) && !ignorable(name, m.config))
      fail(t.describe(name), " is not a parameter of this ", to_string(m.family), " model (",
           m.config.num_hidden_layers, " layers", m.config.tie_word_embeddings ? ", tied embeddings" : "", ")");

  fs::create_directories(out_dir);
  formats::SafetensorsWriter w;
  for (size_t i = 0; i < layout.info.size(); ++i)
    w.add_f32(layout.info[i].name, layout.info[i].shape, values[i].data());
  w.set_metadata("format", "pt");
  w.write(out_dir / "model.safetensors");
  write_file_atomic(out_dir / "tokenizer.json", read_file(tok_path));
  write_json_atomic(out_dir / "config.json", m.config.to_json());
  s.tensors = layout.info.size();
  return s;
}

}  // namespace onebit::hfio
