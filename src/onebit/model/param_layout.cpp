#include "onebit/model/param_layout.h"

#include <cmath>

#include "onebit/core/rng.h"

namespace onebit::model {

ParamLayout build_param_layout(const ModelConfig& cfg) {
  ParamLayout L;
  const int64_t d = cfg.hidden_size, ff = cfg.intermediate_size, hd = cfg.head_dim();
  const int64_t kvd = (int64_t)cfg.num_key_value_heads * hd;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool decay, Precision prec) {
    ParamInfo p;
    p.name = name;
    p.shape = std::move(shape);
    p.numel = 1;
    for (auto s : p.shape) p.numel *= (size_t)s;
    p.offset = L.total;
    p.decay = decay;
    p.precision = prec;
    // 16-float alignment keeps every tensor on its own 64-byte line boundary.
    L.total += (p.numel + 15) / 16 * 16;
    L.info.push_back(p);
    return (int)L.info.size() - 1;
  };
  auto linear = [&](const std::string& module, int64_t out, int64_t in) {
    return add(module + ".weight", {out, in}, true, cfg.precision_of(module));
  };
  L.embed = add("model.embed_tokens.weight", {cfg.vocab_size, d}, true, cfg.precision_of("model.embed_tokens"));
  for (int l = 0; l < cfg.num_hidden_layers; ++l) {
    const std::string p = cat("model.layers.", l, ".");
    LayerParamIndex x;
    x.input_norm = add(p + "input_layernorm.weight", {d}, false, Precision::F32);
    x.q = linear(p + "self_attn.q_proj", d, d);
    x.k = linear(p + "self_attn.k_proj", kvd, d);
    x.v = linear(p + "self_attn.v_proj", kvd, d);
    x.o = linear(p + "self_attn.o_proj", d, d);
    if (cfg.qk_norm) {
      x.q_norm = add(p + "self_attn.q_norm.weight", {hd}, false, Precision::F32);
      x.k_norm = add(p + "self_attn.k_norm.weight", {hd}, false, Precision::F32);
    }
    if (cfg.sub_ln) x.attn_sub_norm = add(p + "self_attn.attn_sub_norm.weight", {d}, false, Precision::F32);
    x.post_norm = add(p + "post_attention_layernorm.weight", {d}, false, Precision::F32);
    x.gate = linear(p + "mlp.gate_proj", ff, d);
    x.up = linear(p + "mlp.up_proj", ff, d);
    x.down = linear(p + "mlp.down_proj", d, ff);
    if (cfg.sub_ln) x.ffn_sub_norm = add(p + "mlp.ffn_sub_norm.weight", {ff}, false, Precision::F32);
    L.layers.push_back(x);
  }
  L.final_norm = add("model.norm.weight", {d}, false, Precision::F32);
  L.lm_head = cfg.tie_word_embeddings ? L.embed : linear("lm_head", cfg.vocab_size, d);
  return L;
}

void init_params(const ParamLayout& layout, const ModelConfig& cfg, uint64_t seed, float* out) {
  const float out_scale = 1.0f / std::sqrt(2.0f * cfg.num_hidden_layers);
  for (size_t i = 0; i < layout.info.size(); ++i) {
    const ParamInfo& p = layout.info[i];
    float* w = out + p.offset;
    if (p.shape.size() == 1) {
      for (size_t j = 0; j < p.numel; ++j) w[j] = 1.0f;
      continue;
    }
    Rng rng(mix_seed(seed, i));
    const bool is_out = p.name.find("o_proj") != std::string::npos || p.name.find("down_proj") != std::string::npos;
    const float std = 0.02f * (is_out ? out_scale : 1.0f);
    for (size_t j = 0; j < p.numel; ++j) w[j] = std * rng.normal();
  }
}

}  // namespace onebit::model
