#include "onebit/modeldir/model_dir.h"

#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/formats/safetensors.h"

namespace onebit::modeldir {

void save_model_dir(const fs::path& dir, model::Transformer& model, const std::string& tokenizer_json) {
  fs::create_directories(dir);
  write_json_atomic(dir / "config.json", model.config().to_json());
  formats::SafetensorsWriter w;
  const std::vector<float> params = model.download_params();
  for (const auto& p : model.params_info()) w.add_f32(p.name, p.shape, params.data() + p.offset);
  w.set_metadata("format", "pt");
  w.write(dir / "model.safetensors");
  write_file_atomic(dir / "tokenizer.json", tokenizer_json);
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

}  // namespace onebit::modeldir
