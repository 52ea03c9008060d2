#include "onebit/infer/model_weights.h"

#include <cmath>
#include <random>

#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/core/rng.h"
#include "onebit/formats/gguf/reader.h"
#include "onebit/formats/safetensors.h"
#include "onebit/model/param_layout.h"
#include "onebit/modeldir/gguf_import.h"
#include "onebit/modeldir/weights.h"

namespace onebit::infer {

namespace {
std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += cat(i ? ", " : "", s[i]);
  return out + "]";
}
}  // namespace

size_t WeightTensor::numel() const {
  size_t n = 1;
  for (int64_t s : shape) n *= (size_t)s;
  return n;
}

const WeightTensor& ModelWeights::get(const std::string& name, const std::vector<int64_t>& shape) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) fail(source, ": tensor \"", printable(name), "\" is missing");
  if (it->second.shape != shape)
    fail(source, ": tensor \"", printable(name), "\" has shape ", shape_str(it->second.shape),
         " but the model config needs ", shape_str(shape));
  const WeightTensor& t = it->second;
  const size_t n = t.is_ternary_codes() ? t.ternary_codes.size() : t.values.size();
  if (n != t.numel())
    fail(source, ": tensor \"", printable(name), "\" holds ", n, " values for shape ", shape_str(shape));
  return t;
}

WeightTensor ModelWeights::take(const std::string& name, const std::vector<int64_t>& shape) {
  get(name, shape);
  auto node = tensors.extract(name);
  return std::move(node.mapped());
}

ModelWeights load_model_dir_weights(const fs::path& dir) {
  if (!fs::is_directory(dir)) fail(dir.string(), ": model dir not found");
  const fs::path cfg_path = dir / "config.json";
  if (!fs::exists(cfg_path)) fail(cfg_path.string(), ": not found (is ", dir.string(), " a model dir?)");
  ModelWeights w;
  w.config = model::ModelConfig::from_json(read_json_file(cfg_path), cfg_path.string());
  w.config.validate(cfg_path.string());
  const fs::path weights_path = dir / "model.safetensors";
  if (!fs::exists(weights_path)) fail(weights_path.string(), ": not found (is ", dir.string(), " a model dir?)");
  w.source = weights_path.string();
  formats::SafetensorsFile file(weights_path);
  // Every layer has tensors of its own: this bounds the layout before it is built.
  if ((size_t)w.config.num_hidden_layers > file.tensors().size())
    fail(cfg_path.string(), ": key \"num_hidden_layers\" is ", w.config.num_hidden_layers, " but ",
         weights_path.string(), " holds only ", file.tensors().size(), " tensors (does it belong to this config?)");
  const auto layout = model::build_param_layout(w.config);
  modeldir::check_weights_match(file, layout.info);
  for (const model::ParamInfo& p : layout.info) {
    if (w.tensors.count(p.name)) continue;  // a tied head names the embedding again
    WeightTensor t;
    t.shape = p.shape;
    t.values.resize(p.numel);
    file.read_f32(p.name, p.shape, t.values);
    // NaN or infinity would turn into undefined integer codes in the quantizers.
    for (size_t i = 0; i < t.values.size(); ++i)
      if (!std::isfinite(t.values[i]))
        fail(weights_path.string(), ": tensor \"", printable(p.name), "\" holds a non-finite value at index ", i);
    w.tensors.emplace(p.name, std::move(t));
  }
  return w;
}

bool is_gguf_path(const fs::path& p) { return p.extension() == ".gguf"; }

ModelWeights load_gguf_weights(const fs::path& file, std::string* tokenizer_json, std::string* chat_template) {
  if (!fs::is_regular_file(file)) fail(file.string(), ": GGUF file not found");
  if (chat_template) {
    const formats::gguf::GgufReader r(file);
    *chat_template = r.has("tokenizer.chat_template") ? r.get_string("tokenizer.chat_template") : std::string();
  }
  modeldir::GgufModel g = modeldir::read_gguf_model(file, "", /*read_tokenizer=*/tokenizer_json != nullptr);
  ModelWeights w;
  w.config = g.config;
  w.source = file.string();
  for (const model::ParamInfo& p : g.layout) {
    if (w.tensors.count(p.name)) continue;  // a tied head names the embedding again
    WeightTensor t;
    t.shape = p.shape;
    const auto first = g.params.begin() + static_cast<std::ptrdiff_t>(p.offset);
    t.values.assign(first, first + static_cast<std::ptrdiff_t>(p.numel));
    for (size_t i = 0; i < t.values.size(); ++i)
      if (!std::isfinite(t.values[i]))
        fail(file.string(), ": tensor of \"", printable(p.name), "\" holds a non-finite value at index ", i);
    w.tensors.emplace(p.name, std::move(t));
  }
  if (tokenizer_json) *tokenizer_json = std::move(g.tokenizer_json);
  return w;
}

ModelWeights random_model_weights(const model::ModelConfig& cfg, uint64_t seed) {
  cfg.validate("random model config");
  ModelWeights w;
  w.config = cfg;
  w.source = "random weights";
  const auto layout = model::build_param_layout(cfg);
  std::mt19937_64 gen(seed);
  for (size_t i = 0; i < layout.info.size(); ++i) {
    const model::ParamInfo& p = layout.info[i];
    if (w.tensors.count(p.name)) continue;
    WeightTensor t;
    t.shape = p.shape;
    const bool is_linear = p.shape.size() == 2 && (int)i != layout.embed;
    if (is_linear && p.precision == model::Precision::Ternary) {
      t.ternary_codes.resize(p.numel);
      t.ternary_scale = 0.02f;
      uint64_t bits = 0;
      int left = 0;
      for (size_t k = 0; k < p.numel; ++k) {
        if (left == 0) {
          bits = gen();
          left = 21;  // 3 bits per code; 21 per draw
        }
        // 3 random bits → 8 values mapped to -1,0,+1 as 3:2:3 (zeros about a quarter, as trained)
        static constexpr int8_t kMap[8] = {-1, -1, -1, 0, 0, 1, 1, 1};
        t.ternary_codes[k] = kMap[bits & 7];
        bits >>= 3;
        --left;
      }
    } else if (p.shape.size() == 1) {
      t.values.assign(p.numel, 1.0f);
    } else {
      t.values.resize(p.numel);
      std::normal_distribution<float> nd(0.0f, 0.02f);
      for (float& v : t.values) v = nd(gen);
    }
    w.tensors.emplace(p.name, std::move(t));
  }
  return w;
}

}  // namespace onebit::infer
