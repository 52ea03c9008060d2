#include "onebit/infer/load_model.h"

#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/modeldir/weights.h"

namespace onebit::infer {

LoadedModel load_model_dir(const fs::path& dir, const std::string& tokenizer_spec) {
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
  out.model = std::make_unique<model::Transformer>(cfg);
  modeldir::load_weights(weights_path, *out.model);
  return out;
}

}  // namespace onebit::infer
