#include "onebit/train/model_dir.h"

#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/formats/safetensors.h"

namespace onebit::train {

void save_model_dir(const fs::path& dir, model::Transformer& model, const std::string& tokenizer_json) {
  fs::create_directories(dir);
  write_json_atomic(dir / "config.json", model.config().to_json());
  formats::SafetensorsWriter w;
  auto params = model.params();
  for (const auto& p : model.params_info()) w.add_f32(p.name, p.shape, params.data() + p.offset);
  w.set_metadata("format", "pt");
  w.write(dir / "model.safetensors");
  write_file_atomic(dir / "tokenizer.json", tokenizer_json);
}

void load_weights(const fs::path& path, model::Transformer& model) {
  formats::SafetensorsFile f(path);
  auto params = model.params();
  for (const auto& p : model.params_info()) {
    if (!f.contains(p.name))
      fail(path.string(), ": tensor \"", p.name, "\" is missing (the file was written for a different model config)");
    f.read_f32(p.name, p.shape, params.subspan(p.offset, p.numel));
  }
  if (f.tensors().size() != model.params_info().size()) {
    for (const auto& t : f.tensors()) {
      bool known = false;
      for (const auto& p : model.params_info()) known = known || p.name == t.name;
      if (!known)
        fail(path.string(), ": tensor \"", t.name, "\" is not a parameter of this model (different model config?)");
    }
  }
}

void check_same_config(const fs::path& dir, const model::ModelConfig& cfg) {
  const fs::path p = dir / "config.json";
  json theirs = model::ModelConfig::from_json(read_json_file(p), p.string()).to_json();
  json ours = cfg.to_json();
  if (theirs == ours) return;
  json diff = json::diff(ours, theirs);
  std::string what = "it differs";
  if (!diff.empty()) {
    const json& d = diff[0];
    std::string key = d.value("path", std::string("?"));
    if (!key.empty() && key[0] == '/') key.erase(0, 1);
    json mine = ours.contains(json::json_pointer(d.value("path", std::string("")))) ? ours.at(json::json_pointer(d["path"].get<std::string>())) : json();
    what = cat(key, " is ", d.contains("value") ? d["value"].dump() : std::string("absent"), " there but ",
               mine.is_null() ? std::string("absent") : mine.dump(), " here");
  }
  fail(p.string(), ": checkpoint was made with a different model config (", what, ")");
}

LoadedModel load_model_dir(const fs::path& dir, const std::string& tokenizer_spec) {
  if (!fs::is_directory(dir)) fail(dir.string(), ": model dir not found");
  const fs::path cfg_path = dir / "config.json";
  if (!fs::exists(cfg_path)) fail(cfg_path.string(), ": not found (is ", dir.string(), " a model dir?)");
  model::ModelConfig cfg = model::ModelConfig::from_json(read_json_file(cfg_path), cfg_path.string());
  cfg.validate(cfg_path.string());
  LoadedModel out;
  out.model = std::make_unique<model::Transformer>(cfg);
  load_weights(dir / "model.safetensors", *out.model);
  out.tokenizer = data::load_tokenizer(tokenizer_spec.empty() ? dir.string() : tokenizer_spec);
  if (out.tokenizer->vocab_size() > cfg.vocab_size)
    fail(dir.string(), ": tokenizer has ", out.tokenizer->vocab_size(), " ids but the model's vocab_size is ",
         cfg.vocab_size);
  return out;
}

}  // namespace onebit::train
