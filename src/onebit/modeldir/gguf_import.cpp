#include "onebit/modeldir/gguf_import.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/formats/gguf/reader.h"
#include "onebit/formats/safetensors.h"
#include "onebit/kernels/kernels.h"
#include "onebit/model/param_layout.h"
#include "onebit/modeldir/gguf_tokenizer.h"

namespace onebit::modeldir {

namespace gg = formats::gguf;

namespace {

model::ModelConfig config_from_gguf(const gg::GgufReader& r, const std::string& arch) {
  const std::string a = arch + ".";
  auto get_int = [&](const std::string& key, int64_t fallback) {
    return r.has(a + key) ? r.get_int(a + key) : fallback;
  };
  model::ModelConfig c;
  const gg::TensorEntry& embd = r.tensor("token_embd.weight");
  OB_CHECK(embd.ne.size() == 2, r.path().string(), ": tensor \"token_embd.weight\" must have 2 dimensions");
  c.hidden_size = static_cast<int>(r.get_int(a + "embedding_length"));
  c.vocab_size = static_cast<int>(get_int("vocab_size", embd.ne[1]));
  c.num_hidden_layers = static_cast<int>(r.get_int(a + "block_count"));
  c.num_attention_heads = static_cast<int>(r.get_int(a + "attention.head_count"));
  c.num_key_value_heads = static_cast<int>(get_int("attention.head_count_kv", c.num_attention_heads));
  c.intermediate_size = static_cast<int>(r.get_int(a + "feed_forward_length"));
  c.max_position_embeddings = static_cast<int>(get_int("context_length", 2048));
  c.rope_theta = r.has(a + "rope.freq_base") ? static_cast<float>(r.get_float(a + "rope.freq_base")) : 10000.0f;
  c.rms_norm_eps = static_cast<float>(r.get_float(a + "attention.layer_norm_rms_epsilon"));
  c.qk_norm = false;
  c.sub_ln = arch == "bitnet";
  c.residual_scale = 1.0f;
  c.tie_word_embeddings = r.find_tensor("output.weight") == nullptr;
  c.hidden_act = model::HiddenAct::SwiGLU;  // llama.cpp's bitnet and llama graphs: silu(gate) * up
  c.validate(r.path().string());
  if (r.has(a + "rope.dimension_count"))
    OB_CHECK(r.get_int(a + "rope.dimension_count") == c.head_dim(), r.path().string(), ": metadata \"", a,
             "rope.dimension_count\" is ", r.get_int(a + "rope.dimension_count"), ", onebit rotates whole heads of ",
             c.head_dim());
  return c;
}

// The GGUF tensor name of a onebit parameter, or "" for one GGUF does not hold (a tied LM head).
std::string gguf_name(const std::string& hf) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  static const std::pair<const char*, const char*> kLayer[] = {
      {"input_layernorm.weight", "attn_norm.weight"},   {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},     {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.o_proj.weight", "attn_output.weight"}, {"self_attn.attn_sub_norm.weight", "attn_sub_norm.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"}, {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},          {"mlp.down_proj.weight", "ffn_down.weight"},
      {"mlp.ffn_sub_norm.weight", "ffn_sub_norm.weight"}};
  const std::string pre = "model.layers.";
  const size_t dot = hf.find('.', pre.size());
  const std::string layer = hf.substr(pre.size(), dot - pre.size()), rest = hf.substr(dot + 1);
  for (const auto& [ours, theirs] : kLayer)
    if (rest == ours) return cat("blk.", layer, ".", theirs);
  fail("no GGUF name for parameter ", hf);
}

// Inverse of the export's permutation: row h*hd + j*hd/2 + i of the result is row h*hd + 2i + j.
std::vector<float> unpermute_rows(const std::vector<float>& w, int heads, int hd, int64_t in) {
  std::vector<float> out(w.size());
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < hd / 2; ++i)
      for (int j = 0; j < 2; ++j) {
        const size_t src = static_cast<size_t>(h * hd + 2 * i + j), dst = static_cast<size_t>(h * hd + j * (hd / 2) + i);
        std::memcpy(out.data() + dst * in, w.data() + src * in, static_cast<size_t>(in) * sizeof(float));
      }
  return out;
}

// onebit's ternary scale of w, computed by the training kernels (the Hard-phase forward's own number).
float kernel_scale(const std::vector<float>& w) {
  kernels::QuantScale s;
  kernels::cpu_ops().weight_quant_scale(&s, w.data(), w.size(), kernels::WeightQuant::Ternary);
  return s.scale;
}

// If every value is 0 or ±a for one a > 0, replaces v by master weights whose onebit ternary
// quantization is exactly those codes at exactly scale a, and returns true. Magnitudes start at
// (a - 1e-5) / p; the kernels' scale (f32 block sums added in f64) is not continuous in them, and one
// ulp of every magnitude can move it by more than one ulp of a, so: find m with scale(m) <= a <=
// scale(next m), then give the first j nonzero weights next(m) and the rest m, with j found by
// bisection (the scale rises with j in steps far below an ulp of a, so it passes a exactly).
bool synthesize_ternary_master(std::vector<float>& v) {
  float a = 0.0f;
  size_t nonzero = 0;
  for (float x : v) {
    if (x == 0.0f) continue;
    const float m = std::fabs(x);
    if (a == 0.0f) a = m;
    if (m != a || !std::isfinite(m)) return false;
    ++nonzero;
  }
  if (nonzero == 0) return true;  // all zero: quantizes to zero codes as it is
  const double p = static_cast<double>(nonzero) / static_cast<double>(v.size());
  float lo = static_cast<float>((static_cast<double>(a) - 1e-5) / p);
  if (!(lo > 0.5f * a)) return true;  // a scale near the quantizer's epsilon: keep t * a
  std::vector<float> sign(v.size());
  for (size_t i = 0; i < v.size(); ++i) sign[i] = v[i] > 0 ? 1.0f : v[i] < 0 ? -1.0f : 0.0f;
  // The first j nonzero weights at magnitude hi, the others at lo.
  auto apply = [&](float mlo, float mhi, size_t j) {
    size_t seen = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      if (sign[i] == 0.0f) continue;
      v[i] = sign[i] * (seen++ < j ? mhi : mlo);
    }
  };
  auto scale_at = [&](float mlo, float mhi, size_t j) {
    apply(mlo, mhi, j);
    return kernel_scale(v);
  };
  for (int step = 0; step < 256; ++step) {  // bracket: scale(lo) <= a <= scale(next(lo))
    const float g = scale_at(lo, lo, 0);
    if (g == a) return true;
    if (g > a) {
      lo = std::nextafter(lo, 0.0f);
      continue;
    }
    const float hi = std::nextafter(lo, INFINITY);
    const float g_hi = scale_at(hi, hi, 0);
    if (g_hi == a) return true;
    if (g_hi < a) {
      lo = hi;
      continue;
    }
    size_t j_lo = 0, j_hi = nonzero;  // scale(j_lo) < a < scale(j_hi)
    while (j_hi - j_lo > 1) {
      const size_t mid = j_lo + (j_hi - j_lo) / 2;
      const float g_mid = scale_at(lo, hi, mid);
      if (g_mid == a) return true;
      (g_mid < a ? j_lo : j_hi) = mid;
    }
    apply(lo, hi, j_lo);  // no j gives a exactly (not seen in practice): the closest from below
    return true;
  }
  apply(lo, lo, 0);
  return true;
}

}  // namespace

GgufModel read_gguf_model(const fs::path& in, const std::string& tokenizer_path, bool read_tokenizer) {
  const gg::GgufReader r(in);
  const std::string file = r.path().string();
  GgufModel m;
  m.architecture = r.get_string("general.architecture");
  OB_CHECK(m.architecture == "bitnet" || m.architecture == "llama", file, ": general.architecture \"",
           printable(m.architecture), "\" cannot be imported (bitnet or llama)");
  m.config = config_from_gguf(r, m.architecture);
  const model::ModelConfig& cfg = m.config;
  if (read_tokenizer)
    m.tokenizer_json = tokenizer_path.empty() ? tokenizer_json_from_gguf(r)
                                              : read_file(fs::is_directory(tokenizer_path)
                                                              ? fs::path(tokenizer_path) / "tokenizer.json"
                                                              : fs::path(tokenizer_path));
  const model::ParamLayout layout = model::build_param_layout(cfg);
  // Every tensor is checked before the arena is allocated: a file whose metadata claims a huge model
  // with tensors that do not match costs no memory.
  for (const auto& info : layout.info) {
    const std::string name = gguf_name(info.name);
    const gg::TensorEntry& t = r.tensor(name);
    OB_CHECK(t.shape() == info.shape, file, ": tensor \"", name, "\" has shape ", formats::shape_string(t.shape()),
             ", the config implies ", formats::shape_string(info.shape));
  }
  m.params.resize(layout.total);
  m.layout = layout.info;
  for (const model::ParamInfo& info : layout.info) {
    const std::string name = gguf_name(info.name);
    std::vector<float> v = r.read_f32(r.tensor(name));
    if (info.shape.size() == 2 && name != "token_embd.weight" && name != "output.weight") {
      const std::string base = name.substr(0, name.size() - std::string(".weight").size());
      if (const gg::TensorEntry* s = r.find_tensor(base + ".scale")) {
        OB_CHECK(s->numel() == 1, file, ": tensor \"", base, ".scale\" must hold one value");
        const float scale = r.read_f32(*s)[0];
        for (float& x : v) x *= scale;
      }
      if (m.architecture == "llama" && (base.ends_with("attn_q") || base.ends_with("attn_k")))
        v = unpermute_rows(v, base.ends_with("attn_q") ? cfg.num_attention_heads : cfg.num_key_value_heads,
                           cfg.head_dim(), info.shape[1]);
      if (synthesize_ternary_master(v))
        ++m.ternary_tensors;
      else
        ++m.other_tensors;
    }
    std::copy(v.begin(), v.end(), m.params.begin() + static_cast<std::ptrdiff_t>(info.offset));
  }
  return m;
}

GgufModel import_gguf(const fs::path& in, const fs::path& out_dir, const std::string& tokenizer_path) {
  GgufModel m = read_gguf_model(in, tokenizer_path);
  formats::SafetensorsWriter w;
  for (const auto& info : m.layout) w.add_f32(info.name, info.shape, m.params.data() + info.offset);
  w.set_metadata("format", "pt");
  fs::create_directories(out_dir);
  write_json_atomic(out_dir / "config.json", m.config.to_json());
  w.write(out_dir / "model.safetensors");
  write_file_atomic(out_dir / "tokenizer.json", m.tokenizer_json);
  return m;
}

}  // namespace onebit::modeldir
