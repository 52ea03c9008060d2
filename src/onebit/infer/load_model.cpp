#include "onebit/infer/load_model.h"

#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/formats/safetensors.h"
#include "onebit/model/param_layout.h"
#include "onebit/modeldir/weights.h"

namespace onebit::infer {

LoadedModel load_model_dir(const fs::path& dir, const std::string& tokenizer_spec, kernels::Device device) {
  if (!fs::is_directory(dir)) fail(dir.string(), ": model dir not found");
  const fs::path cfg_path = dir / "config.json";
  if (!fs::exists(cfg_path)) fail(cfg_path.string(), ": not found (is ", dir.string(), " a model dir?)");
  model::ModelConfig cfg = model::ModelConfig::from_json(read_json_file(cfg_path), cfg_path.string());
  cfg.validate(cfg_path.string());
  const fs::path weights_path = dir / "model.safetensors";
  if (!fs::exists(weights_path)) fail(weights_path.string(), ": not found (is ", dir.string(), " a model dir?)");
  LoadedModel out;
  out.tokenizer = data::load_tokenizer(tokenizer_spec.empty() ? dir.string() : tokenizer_spec);
  if (out.tokenizer->vocab_size() > cfg.vocab_size)
    fail(dir.string(), ": tokenizer has ", out.tokenizer->vocab_size(), " ids but the model's vocab_size is ",
         cfg.vocab_size);
  {
    // The mapped file is bounded by its size on disk; the Transformer is as big as config.json says.
    // Checking one against the other first keeps a wrong or hostile config.json from allocating.
    formats::SafetensorsFile weights(weights_path);
    // Every layer has tensors of its own, so this bounds the layout itself before it is built.
    if (static_cast<size_t>(cfg.num_hidden_layers) > weights.tensors().size())
      fail(cfg_path.string(), ": key \"num_hidden_layers\" is ", cfg.num_hidden_layers, " but ",
           weights_path.string(), " holds only ", weights.tensors().size(), " tensors (does it belong to this config?)");
    modeldir::check_weights_match(weights, model::build_param_layout(cfg).info);
  }
  out.model = model::make_transformer(cfg, device);
  modeldir::load_weights(weights_path, *out.model);
  return out;
}

}  // namespace onebit::infer
