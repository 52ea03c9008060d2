#include "onebit/hfio/hf_config.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "onebit/core/error.h"

namespace onebit::hfio {
namespace {

int get_int(const json& j, const char* key, const std::string& where, bool required, int def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) fail(where, ": missing key \"", key, "\"");
    return def;
  }
  if (!it->is_number_integer() || it->get<int64_t>() <= 0 || it->get<int64_t>() > (1LL << 31) - 1)
    fail(where, ": key \"", key, "\" must be a positive integer (got ", json_excerpt(*it), ")");
  return static_cast<int>(it->get<int64_t>());
}

double get_number(const json& j, const char* key, const std::string& where, double def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_number() || !std::isfinite(it->get<double>()))
    fail(where, ": key \"", key, "\" must be a finite number (got ", json_excerpt(*it), ")");
  return it->get<double>();
}

bool get_bool(const json& j, const char* key, const std::string& where, bool def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_boolean()) fail(where, ": key \"", key, "\" must be true or false (got ", json_excerpt(*it), ")");
  return it->get<bool>();
}

std::string get_string(const json& j, const char* key, const std::string& where, const std::string& def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_string()) fail(where, ": key \"", key, "\" must be a string (got ", json_excerpt(*it), ")");
  return it->get<std::string>();
}

// rope_theta at the top level (transformers 4) or in rope_parameters (transformers 5); only the
// default RoPE (no scaling) is what onebit computes.
double rope_theta(const json& j, const std::string& where, double def) {
  double theta = get_number(j, "rope_theta", where, def);
  if (auto it = j.find("rope_parameters"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) fail(where, ": key \"rope_parameters\" must be an object");
    const std::string type = get_string(*it, "rope_type", where + ": key \"rope_parameters\"", "default");
    if (type != "default")
      fail(where, ": key \"rope_parameters.rope_type\" is \"", printable(type),
           "\"; onebit computes only the default RoPE");
    theta = get_number(*it, "rope_theta", where, theta);
  }
  if (auto it = j.find("rope_scaling"); it != j.end() && !it->is_null())
    fail(where, ": key \"rope_scaling\" is set; onebit computes only the default RoPE (no scaling)");
  if (!(theta > 0)) fail(where, ": key \"rope_theta\" must be positive");
  return theta;
}

void parse_quantization_config(const json& q, const std::string& where, HfModel& m) {
  const std::string w = where + ": key \"quantization_config";
  if (!q.is_object()) fail(w, "\" must be an object");
  const std::string method = get_string(q, "quant_method", where, "");
  if (method != "bitnet")
    fail(w, ".quant_method\" is \"", printable(method), "\"; only \"bitnet\" quantization is imported");
  const std::string cls = get_string(q, "linear_class", where, "bitlinear");
  if (cls == "bitlinear")
    m.linear_class = LinearClass::BitLinear;
  else if (cls == "autobitlinear")
    m.linear_class = LinearClass::AutoBitLinear;
  else
    fail(w, ".linear_class\" must be bitlinear or autobitlinear (got \"", printable(cls), "\")");
  const std::string mode = get_string(q, "quantization_mode", where, "offline");
  if (mode == "online")
    m.mode = QuantMode::Online;
  else if (mode == "offline")
    m.mode = QuantMode::Offline;
  else
    fail(w, ".quantization_mode\" must be online or offline (got \"", printable(mode), "\")");
  if (m.linear_class == LinearClass::BitLinear && m.mode == QuantMode::Online)
    fail(w, "\": linear_class bitlinear holds packed weights; online quantization needs autobitlinear");
  if (get_bool(q, "use_rms_norm", where, false))
    fail(w, ".use_rms_norm\" is true: an extra RMSNorm inside every linear is not BitNet b1.58's architecture");
  if (auto it = q.find("modules_to_not_convert"); it != q.end() && !it->is_null()) {
    if (!it->is_array()) fail(w, ".modules_to_not_convert\" must be a list");
    for (const auto& mod : *it)
      if (!mod.is_string() || mod.get<std::string>() != "lm_head")
        fail(w, ".modules_to_not_convert\" names ", json_excerpt(mod),
             "; only lm_head (never quantized here either) can stay unconverted");
  }
  m.quantized = true;
}

// The shortest decimal that reads back as x, so that 1e-5f is written as 1e-05, not 9.99999974e-06.
double json_float(float x) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  return std::strtod(std::string(buf, r.ptr).c_str(), nullptr);
}

}  // namespace

const char* to_string(HfFamily f) { return f == HfFamily::BitNet ? "bitnet" : "llama"; }
const char* to_string(LinearClass c) { return c == LinearClass::BitLinear ? "bitlinear" : "autobitlinear"; }
const char* to_string(QuantMode m) { return m == QuantMode::Online ? "online" : "offline"; }

HfModel parse_hf_config(const json& j, const std::string& where) {
  if (!j.is_object()) fail(where, ": a config.json must be a JSON object");
  HfModel m;
  const std::string type = get_string(j, "model_type", where, "");
  if (type == "bitnet")
    m.family = HfFamily::BitNet;
  else if (type == "llama")
    m.family = HfFamily::Llama;
  else
    fail(where, ": key \"model_type\" is \"", printable(type),
         "\"; onebit imports bitnet (BitNetForCausalLM) and llama (LlamaForCausalLM) checkpoints");
  model::ModelConfig& c = m.config;
  c.vocab_size = get_int(j, "vocab_size", where, true, 0);
  c.hidden_size = get_int(j, "hidden_size", where, true, 0);
  c.num_hidden_layers = get_int(j, "num_hidden_layers", where, true, 0);
  c.num_attention_heads = get_int(j, "num_attention_heads", where, true, 0);
  c.num_key_value_heads = get_int(j, "num_key_value_heads", where, false, c.num_attention_heads);
  c.intermediate_size = get_int(j, "intermediate_size", where, true, 0);
  c.max_position_embeddings = get_int(j, "max_position_embeddings", where, false, 2048);
  const bool bitnet = m.family == HfFamily::BitNet;
  c.rms_norm_eps = static_cast<float>(get_number(j, "rms_norm_eps", where, bitnet ? 1e-5 : 1e-6));
  c.rope_theta = static_cast<float>(rope_theta(j, where, bitnet ? 500000.0 : 10000.0));
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", where, false);
  if (get_bool(j, "attention_bias", where, false))
    fail(where, ": key \"attention_bias\" is true; onebit's attention has no biases");
  if (get_bool(j, "mlp_bias", where, false))
    fail(where, ": key \"mlp_bias\" is true; onebit's MLP has no biases");
  if (auto it = j.find("head_dim"); it != j.end() && !it->is_null()) {
    const int hd = get_int(j, "head_dim", where, true, 0);
    if (static_cast<int64_t>(hd) * c.num_attention_heads != c.hidden_size)
      fail(where, ": key \"head_dim\" (", hd, ") must equal hidden_size / num_attention_heads in onebit");
  }
  if (get_int(j, "pretraining_tp", where, false, 1) != 1)
    fail(where, ": key \"pretraining_tp\" must be 1 (the sliced-matmul emulation is not onebit's)");
  const std::string act = get_string(j, "hidden_act", where, bitnet ? "relu2" : "silu");
  if (act == "silu")
    c.hidden_act = model::HiddenAct::SwiGLU;
  else if (act == "relu2" && m.family == HfFamily::BitNet)
    c.hidden_act = model::HiddenAct::ReLU2;
  else
    fail(where, ": key \"hidden_act\" is \"", printable(act), "\"; onebit imports ",
         m.family == HfFamily::BitNet ? "relu2 or silu" : "silu", " for model_type ", to_string(m.family));
  c.qk_norm = false;
  c.residual_scale = 1.0f;
  c.dropout = 0.0f;
  if (m.family == HfFamily::BitNet) {
    c.architecture = model::Architecture::BitNet;
    c.sub_ln = true;
    if (auto it = j.find("quantization_config"); it != j.end() && !it->is_null())
      parse_quantization_config(*it, where, m);
  } else {
    if (auto it = j.find("quantization_config"); it != j.end() && !it->is_null())
      fail(where, ": key \"quantization_config\" is set; onebit imports full-precision llama checkpoints");
    c.architecture = model::Architecture::Onebit;
    c.sub_ln = false;
  }
  // Ternary linears with int8 activations (the quantization defaults) are where a fine-tune goes; a
  // full-precision source runs unquantized in onebit's fp phase.
  c.validate(where);
  return m;
}

json bitnet_hf_config(const model::ModelConfig& c, LinearClass linear_class, QuantMode mode) {
  json j;
  j["architectures"] = json::array({"BitNetForCausalLM"});
  j["model_type"] = "bitnet";
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["hidden_act"] = c.hidden_act == model::HiddenAct::ReLU2 ? "relu2" : "silu";
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = json_float(c.rms_norm_eps);
  // Both spellings: transformers 5 reads rope_parameters, transformers 4 rope_theta.
  j["rope_theta"] = json_float(c.rope_theta);
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", json_float(c.rope_theta)}};
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["attention_bias"] = false;
  j["attention_dropout"] = 0.0;
  j["torch_dtype"] = "float32";
  j["quantization_config"] = {{"quant_method", "bitnet"},
                              {"linear_class", to_string(linear_class)},
                              {"quantization_mode", to_string(mode)}};
  return j;
}

}  // namespace onebit::hfio
