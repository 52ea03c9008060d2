// config.json parsing and validation. Every error names the file and the key at fault.
#include "onebit/model/config.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <set>

#include "onebit/core/error.h"
#include "onebit/core/fs.h"

namespace onebit::model {
namespace {

const std::set<std::string>& known_top_keys() {
  static const std::set<std::string> k = {
      "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
      "intermediate_size", "max_position_embeddings", "rope_theta", "rms_norm_eps", "qk_norm", "sub_ln",
      "residual_scale", "tie_word_embeddings", "dropout", "hidden_act", "quantization",
      // Hugging Face metadata that carries no architecture choice we would ignore silently.
      "architectures", "model_type", "torch_dtype", "transformers_version", "bos_token_id", "eos_token_id",
      "pad_token_id", "_name_or_path", "head_dim", "attention_bias", "mlp_bias", "initializer_range", "use_cache"};
  return k;
}

int get_int(const json& j, const std::string& key, const std::string& where, bool required, int def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) fail(where, ": missing key \"", key, "\"");
    return def;
  }
  if (!it->is_number_integer()) fail(where, ": key \"", key, "\" must be an integer (got ", json_excerpt(*it), ")");
  const int64_t v = it->get<int64_t>();
  if (v <= 0 || v > (1LL << 31) - 1) fail(where, ": key \"", key, "\" must be a positive integer (got ", v, ")");
  return (int)v;
}

float get_float(const json& j, const std::string& key, const std::string& where, float def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  // 1e39 would become inf as a float: every float key must be a finite float.
  if (!json_detail::json_value_fits<float>(*it))
    fail(where, ": key \"", key, "\" must be a finite number (got ", json_excerpt(*it), ")");
  return it->get<float>();
}

bool get_bool(const json& j, const std::string& key, const std::string& where, bool def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_boolean()) fail(where, ": key \"", key, "\" must be true or false (got ", json_excerpt(*it), ")");
  return it->get<bool>();
}

std::string get_string(const json& j, const std::string& key, const std::string& where, const std::string& def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_string()) fail(where, ": key \"", key, "\" must be a string (got ", json_excerpt(*it), ")");
  return it->get<std::string>();
}

void reject_unknown(const json& j, const std::set<std::string>& known, const std::string& where,
                    const std::string& prefix) {
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.count(it.key())) fail(where, ": unknown key \"", prefix, printable(it.key()), "\"");
}

const char* act_name(HiddenAct a) {
  switch (a) {
    case HiddenAct::SwiGLU:
      return "swiglu";
    case HiddenAct::ReLU2:
      return "relu2";
    case HiddenAct::GELU:
      return "gelu";
  }
  return "?";
}

std::string strip_weight(std::string name) {
  const std::string suffix = ".weight";
  if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
    name.resize(name.size() - suffix.size());
  return name;
}

// True if `name` is a linear module (or the embedding) of a model with `layers` layers.
bool is_quantizable_module(const std::string& name, int layers) {
  if (name == "lm_head" || name == "model.embed_tokens") return true;
  const std::string pre = "model.layers.";
  if (name.rfind(pre, 0) != 0) return false;
  size_t pos = pre.size(), end = name.find('.', pos);
  if (end == std::string::npos || end == pos) return false;
  const std::string idx = name.substr(pos, end - pos);
  for (char c : idx)
    if (c < '0' || c > '9') return false;
  // "model.layers.03..." would pass a numeric check but never equal the module's real name.
  if (idx.size() > 1 && idx[0] == '0') return false;
  if (idx.size() > 6 || std::stoi(idx) >= layers) return false;
  static const std::set<std::string> rest = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                             "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                             "mlp.down_proj"};
  return rest.count(name.substr(end + 1)) > 0;
}

}  // namespace

const char* to_string(Precision p) {
  switch (p) {
    case Precision::F32:
      return "f32";
    case Precision::BF16:
      return "bf16";
    case Precision::Int8:
      return "int8";
    case Precision::Ternary:
      return "ternary";
    case Precision::Binary:
      return "binary";
  }
  return "?";
}

Precision precision_from_string(const std::string& s, const std::string& where) {
  if (s == "f32") return Precision::F32;
  if (s == "bf16") return Precision::BF16;
  if (s == "int8") return Precision::Int8;
  if (s == "ternary") return Precision::Ternary;
  if (s == "binary") return Precision::Binary;
  fail(where, ": unknown precision \"", printable(s), "\" (expected ternary, binary, int8, bf16 or f32)");
}

double packed_bits(Precision p) {
  switch (p) {
    case Precision::F32:
      return 32;
    case Precision::BF16:
      return 16;
    case Precision::Int8:
      return 8;
    case Precision::Ternary:
      return 2;
    case Precision::Binary:
      return 1;
  }
  return 32;
}

Precision ModelConfig::precision_of(const std::string& module_name) const {
  const std::string name = strip_weight(module_name);
  auto it = quantization.overrides.find(name);
  if (it != quantization.overrides.end()) return it->second;
  if (name == "lm_head") return quantization.lm_head;
  if (name == "model.embed_tokens") return quantization.embedding;
  if (name.find(".self_attn.") != std::string::npos) return quantization.attention;
  if (name.find(".mlp.") != std::string::npos) return quantization.mlp;
  return Precision::F32;
}

ModelConfig ModelConfig::from_json(const json& j, const std::string& where) {
  if (!j.is_object()) fail(where, ": a model config must be a JSON object");
  reject_unknown(j, known_top_keys(), where, "");
  ModelConfig c;
  const std::string type = get_string(j, "model_type", where, "onebit");
  if (type == "bitnet") {
    // transformers' BitNet has no QK-norm and always has the sub-norms: those are its defaults here.
    c.architecture = Architecture::BitNet;
    c.qk_norm = false;
    c.sub_ln = true;
  } else if (type != "onebit") {
    fail(where, ": key \"model_type\" must be onebit or bitnet (got \"", printable(type),
         "\"; a Hugging Face checkpoint dir is converted with `onebit import hf`)");
  }
  c.vocab_size = get_int(j, "vocab_size", where, true, 0);
  c.hidden_size = get_int(j, "hidden_size", where, true, 0);
  c.num_hidden_layers = get_int(j, "num_hidden_layers", where, true, 0);
  c.num_attention_heads = get_int(j, "num_attention_heads", where, true, 0);
  c.num_key_value_heads = get_int(j, "num_key_value_heads", where, false, c.num_attention_heads);
  c.intermediate_size = get_int(j, "intermediate_size", where, true, 0);
  c.max_position_embeddings = get_int(j, "max_position_embeddings", where, true, 0);
  c.rope_theta = get_float(j, "rope_theta", where, c.rope_theta);
  c.rms_norm_eps = get_float(j, "rms_norm_eps", where, c.rms_norm_eps);
  c.qk_norm = get_bool(j, "qk_norm", where, c.qk_norm);
  c.sub_ln = get_bool(j, "sub_ln", where, c.sub_ln);
  c.residual_scale = get_float(j, "residual_scale", where, c.residual_scale);
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", where, c.tie_word_embeddings);
  c.dropout = get_float(j, "dropout", where, c.dropout);
  const std::string act = get_string(j, "hidden_act", where, "swiglu");
  if (act == "swiglu" || act == "silu")
    c.hidden_act = HiddenAct::SwiGLU;
  else if (act == "relu2")
    c.hidden_act = HiddenAct::ReLU2;
  else if (act == "gelu" || act == "gelu_pytorch_tanh")
    c.hidden_act = HiddenAct::GELU;
  else
    fail(where, ": key \"hidden_act\" must be swiglu, relu2 or gelu (got \"", printable(act), "\")");
  if (j.contains("head_dim") && !j["head_dim"].is_null()) {
    const int hd = get_int(j, "head_dim", where, true, 0);
    if ((int64_t)hd * c.num_attention_heads != c.hidden_size)
      fail(where, ": key \"head_dim\" (", hd, ") must equal hidden_size / num_attention_heads");
  }

  if (auto qit = j.find("quantization"); qit != j.end() && !qit->is_null()) {
    const json& q = *qit;
    if (!q.is_object()) fail(where, ": key \"quantization\" must be an object");
    reject_unknown(q, {"weight_bits", "activation_bits", "precision_map"}, where, "quantization.");
    if (auto wit = q.find("weight_bits"); wit != q.end()) {
      if (!wit->is_object()) fail(where, ": key \"quantization.weight_bits\" must be an object");
      reject_unknown(*wit, {"attention", "mlp", "embedding", "lm_head"}, where, "quantization.weight_bits.");
      auto prec = [&](const char* key, Precision& out) {
        if (auto it = wit->find(key); it != wit->end()) {
          if (!it->is_string()) fail(where, ": key \"quantization.weight_bits.", key, "\" must be a string");
          out =
              precision_from_string(it->get<std::string>(), cat(where, ": key \"quantization.weight_bits.", key, "\""));
        }
      };
      prec("attention", c.quantization.attention);
      prec("mlp", c.quantization.mlp);
      prec("embedding", c.quantization.embedding);
      prec("lm_head", c.quantization.lm_head);
    }
    if (auto ait = q.find("activation_bits"); ait != q.end() && !ait->is_null() && !ait->is_string())
      fail(where, ": key \"quantization.activation_bits\" must be a string (got ", json_excerpt(*ait), ")");
    const std::string ab = get_string(q, "activation_bits", where, "int8");
    if (ab == "int8")
      c.quantization.activation_bits = ActBits::Int8;
    else if (ab == "none")
      c.quantization.activation_bits = ActBits::None;
    else
      fail(where, ": key \"quantization.activation_bits\" must be int8 or none (got \"", printable(ab), "\")");
    if (auto mit = q.find("precision_map"); mit != q.end() && !mit->is_null()) {
      if (!mit->is_object()) fail(where, ": key \"quantization.precision_map\" must be an object");
      for (auto it = mit->begin(); it != mit->end(); ++it) {
        const std::string key = cat("quantization.precision_map.", printable(it.key()));
        if (!it->is_string()) fail(where, ": key \"", key, "\" must be a string");
        // "m" and "m.weight" name the same module: two entries for it would silently drop one.
        if (!c.quantization.overrides
                 .emplace(strip_weight(it.key()),
                          precision_from_string(it->get<std::string>(), cat(where, ": key \"", key, "\"")))
                 .second)
          fail(where, ": key \"", key, "\" names module \"", printable(strip_weight(it.key())), "\" a second time");
      }
    }
  }
  c.validate(where);
  return c;
}

void ModelConfig::validate(const std::string& where) const {
  auto positive = [&](int v, const char* key) {
    if (v <= 0) fail(where, ": key \"", key, "\" must be a positive integer (got ", v, ")");
  };
  positive(vocab_size, "vocab_size");
  positive(hidden_size, "hidden_size");
  positive(num_hidden_layers, "num_hidden_layers");
  positive(num_attention_heads, "num_attention_heads");
  positive(num_key_value_heads, "num_key_value_heads");
  positive(intermediate_size, "intermediate_size");
  positive(max_position_embeddings, "max_position_embeddings");
  if (hidden_size % num_attention_heads != 0)
    fail(where, ": key \"hidden_size\" (", hidden_size, ") is not divisible by num_attention_heads (",
         num_attention_heads, ")");
  if (num_attention_heads % num_key_value_heads != 0)
    fail(where, ": key \"num_key_value_heads\" (", num_key_value_heads, ") does not divide num_attention_heads (",
         num_attention_heads, ")");
  if (head_dim() % 2 != 0)
    fail(where, ": key \"hidden_size\": head dimension ", hidden_size, "/", num_attention_heads, " = ", head_dim(),
         " must be even for RoPE");
  if (!(rope_theta > 0) || !std::isfinite(rope_theta))
    fail(where, ": key \"rope_theta\" must be positive (got ", rope_theta, ")");
  if (!(rms_norm_eps > 0) || !std::isfinite(rms_norm_eps))
    fail(where, ": key \"rms_norm_eps\" must be positive (got ", rms_norm_eps, ")");
  if (!(residual_scale > 0) || !std::isfinite(residual_scale))
    fail(where, ": key \"residual_scale\" must be positive (got ", residual_scale, ")");
  if (!(dropout >= 0 && dropout < 1)) fail(where, ": key \"dropout\" must be in [0, 1) (got ", dropout, ")");
  if (architecture == Architecture::BitNet) {
    const char* why = "transformers' BitNet";
    if (qk_norm) fail(where, ": key \"qk_norm\" must be false for model_type bitnet (", why, " has no QK-norm)");
    if (!sub_ln) fail(where, ": key \"sub_ln\" must be true for model_type bitnet (", why, " has sub-norms)");
    if (residual_scale != 1.0f)
      fail(where, ": key \"residual_scale\" must be 1 for model_type bitnet (got ", residual_scale, ")");
    if (hidden_act == HiddenAct::GELU)
      fail(where, ": key \"hidden_act\" must be relu2 or swiglu (silu) for model_type bitnet");
  }
  for (const auto& [name, p] : quantization.overrides)
    if (!is_quantizable_module(name, num_hidden_layers))
      fail(where, ": key \"quantization.precision_map.", printable(name),
           "\" names no linear layer of this model (expected e.g. model.layers.0.mlp.down_proj)");
}

json ModelConfig::to_json() const {
  json j;
  j["architectures"] = json::array({"OnebitForCausalLM"});
  j["model_type"] = architecture == Architecture::BitNet ? "bitnet" : "onebit";
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["intermediate_size"] = intermediate_size;
  j["max_position_embeddings"] = max_position_embeddings;
  j["rope_theta"] = rope_theta;
  j["rms_norm_eps"] = rms_norm_eps;
  j["qk_norm"] = qk_norm;
  j["sub_ln"] = sub_ln;
  j["residual_scale"] = residual_scale;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["dropout"] = dropout;
  j["hidden_act"] = act_name(hidden_act);
  json q;
  q["weight_bits"] = {{"attention", to_string(quantization.attention)},
                      {"mlp", to_string(quantization.mlp)},
                      {"embedding", to_string(quantization.embedding)},
                      {"lm_head", to_string(quantization.lm_head)}};
  q["activation_bits"] = quantization.activation_bits == ActBits::Int8 ? "int8" : "none";
  json m = json::object();
  for (const auto& [name, p] : quantization.overrides) m[name] = to_string(p);
  q["precision_map"] = m;
  j["quantization"] = q;
  return j;
}

uint64_t ModelConfig::num_parameters() const {
  const uint64_t d = hidden_size, V = vocab_size, ff = intermediate_size, hd = head_dim();
  const uint64_t kv = (uint64_t)num_key_value_heads * hd;
  uint64_t layer = 2 * d + d * d + 2 * d * kv + d * d + 3 * d * ff;
  if (qk_norm) layer += 2 * hd;
  if (sub_ln) layer += d + ff;
  return V * d + num_hidden_layers * layer + d + (tie_word_embeddings ? 0 : V * d);
}

ModelConfig load_model_config(const std::string& name_or_path) {
  fs::path p(name_or_path);
  if (fs::is_directory(p)) p /= "config.json";
  // Anything that exists is read (a directory named config.json is an error naming it), never
  // mistaken for a missing file and looked up among the presets.
  if (fs::exists(p)) return ModelConfig::from_json(read_json_file(p), printable(p.string(), 4096));
  if (name_or_path.find('/') == std::string::npos && name_or_path.find(".json") == std::string::npos) {
    std::vector<fs::path> dirs;
    if (const char* env = std::getenv("ONEBIT_CONFIG_DIR")) dirs.emplace_back(env);
    char buf[4096];
    const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n > 0) dirs.push_back(fs::path(std::string(buf, n)).parent_path() / ".." / "share" / "onebit" / "configs");
    dirs.push_back(fs::path(ONEBIT_SOURCE_DIR) / "configs");
    for (const auto& d : dirs) {
      const fs::path f = d / (name_or_path + ".json");
      if (fs::is_regular_file(f)) return ModelConfig::from_json(read_json_file(f), printable(f.string(), 4096));
    }
  }
  fail("model config \"", printable(name_or_path, 4096),
       "\": no such file or directory, and not a preset (tiny, 25m, 125m, 0.3b-stack, 1b, 8b, bitnet-2b4t)");
}

}  // namespace onebit::model
