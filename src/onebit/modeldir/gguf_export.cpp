#include "onebit/modeldir/gguf_export.h"

#include <cstring>

#include "onebit/core/error.h"
#include "onebit/formats/gguf/half.h"
#include "onebit/formats/gguf/ternary_blocks.h"
#include "onebit/formats/gguf/writer.h"
#include "onebit/formats/safetensors.h"
#include "onebit/kernels/kernels.h"
#include "onebit/model/param_layout.h"
#include "onebit/modeldir/gguf_tokenizer.h"
#include "onebit/modeldir/weights.h"

namespace onebit::modeldir {

namespace gg = formats::gguf;

GgufWeightType gguf_weight_type_from_string(const std::string& s, const std::string& flag) {
  if (s == "tq2_0") return GgufWeightType::TQ2_0;
  if (s == "tq1_0") return GgufWeightType::TQ1_0;
  if (s == "f16") return GgufWeightType::F16;
  fail(flag, " must be tq2_0, tq1_0 or f16 (got \"", printable(s), "\")");
}

namespace {

bool is_ternary_type(GgufWeightType t) { return t != GgufWeightType::F16; }

std::vector<uint8_t> f16_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t h = gg::f32_to_f16(v[i]);
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
  return out;
}

std::vector<uint8_t> f32_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * 4);
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

// llama.cpp's "llama" graph rotates interleaved pairs (2i, 2i+1); onebit rotates halves (i, i+hd/2).
// Row h*hd + 2i + j of the result is row h*hd + j*hd/2 + i of w (convert_hf_to_gguf's permute).
std::vector<float> permute_rows_for_interleaved_rope(const std::vector<float>& w, int heads, int hd, int64_t in) {
  std::vector<float> out(w.size());
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < hd / 2; ++i)
      for (int j = 0; j < 2; ++j) {
        const size_t dst = static_cast<size_t>(h * hd + 2 * i + j), src = static_cast<size_t>(h * hd + j * (hd / 2) + i);
        std::memcpy(out.data() + dst * in, w.data() + src * in, static_cast<size_t>(in) * sizeof(float));
      }
  return out;
}

// Ternary codes (as -1/0/1 floats) and the per-tensor scale, from the training kernels' Hard phase.
std::pair<std::vector<float>, float> ternary_codes(const std::vector<float>& w, model::Architecture arch) {
  auto& ops = kernels::cpu_ops();
  kernels::QuantScale s;
  // The model's own scale rule, as the trainer's Network::quant_scale picks it.
  if (arch == model::Architecture::BitNet)
    ops.ternary_scale_clamped(&s, w.data(), w.size());
  else
    ops.weight_quant_scale(&s, w.data(), w.size(), kernels::WeightQuant::Ternary);
  std::vector<float> eff(w.size());
  ops.weight_quantize(eff.data(), w.data(), w.size(), kernels::WeightQuant::Ternary, &s, 0.0f);
  for (auto& x : eff) x = x > 0 ? 1.0f : x < 0 ? -1.0f : 0.0f;  // eff = g * t exactly
  return {std::move(eff), s.scale};
}

}  // namespace

std::string gguf_architecture(const model::ModelConfig& cfg, const GgufExportOptions& opt, const std::string& where) {
  auto refuse = [&](const std::string& key, const std::string& why) {
    fail(where, ": cannot export to GGUF: ", key, " ", why);
  };
  if (cfg.qk_norm) refuse("\"qk_norm\"", "is true; llama.cpp's bitnet and llama graphs have no QK-norm");
  if (cfg.hidden_act == model::HiddenAct::ReLU2)
    refuse("\"hidden_act\"",
           "is \"relu2\" and no upstream llama.cpp graph runs relu2(gate) * up: its only BitNet graph, "
           "\"bitnet\" (src/models/bitnet.cpp, also what its converter writes for BitNetForCausalLM), is "
           "hard-wired to silu(gate) * up, and its relu2 graphs (arcee, nemotron, plm, jais2) have no gate "
           "and no sub-norms");
  if (cfg.hidden_act != model::HiddenAct::SwiGLU)
    refuse("\"hidden_act\"", "is not \"swiglu\"; llama.cpp's bitnet and llama graphs use SwiGLU");
  if (cfg.residual_scale != 1.0f) refuse("\"residual_scale\"", "is not 1");
  if (cfg.num_attention_heads * cfg.head_dim() != cfg.hidden_size)
    refuse("\"num_attention_heads\"", "does not divide hidden_size");
  const auto& q = cfg.quantization;
  if (q.attention != model::Precision::Ternary) refuse("\"quantization.weight_bits.attention\"", "is not \"ternary\"");
  if (q.mlp != model::Precision::Ternary) refuse("\"quantization.weight_bits.mlp\"", "is not \"ternary\"");
  for (const auto& [module, p] : q.overrides)
    if (p != model::Precision::Ternary)
      refuse(cat("\"quantization.precision_map.", printable(module), "\""), "is not \"ternary\"");
  if (q.embedding != model::Precision::F32 && q.embedding != model::Precision::BF16)
    refuse("\"quantization.weight_bits.embedding\"", "is quantized; GGUF export keeps it F16/F32");
  if (!cfg.tie_word_embeddings && q.lm_head != model::Precision::F32 && q.lm_head != model::Precision::BF16)
    refuse("\"quantization.weight_bits.lm_head\"", "is quantized; GGUF export keeps it F16/F32");
  if (is_ternary_type(opt.type)) {
    const int64_t rows[] = {cfg.hidden_size, cfg.intermediate_size};
    for (int64_t n : rows)
      if (n % gg::kQK_K != 0)
        refuse(n == cfg.hidden_size ? "\"hidden_size\"" : "\"intermediate_size\"",
               cat("is ", n, ", not a multiple of 256 (the TQ1_0/TQ2_0 block); use --type f16"));
  }
  if (cfg.sub_ln) {
    if (!cfg.tie_word_embeddings)
      refuse("\"tie_word_embeddings\"", "is false; llama.cpp's bitnet graph uses the embedding as the LM head");
    return "bitnet";
  }
  return "llama";
}

void export_gguf(const model::ModelConfig& cfg, const ParamReader& read, const std::string& tokenizer_json,
                 const fs::path& out, const GgufExportOptions& opt, const std::string& where) {
  const std::string arch = gguf_architecture(cfg, opt, where);
  const model::ParamLayout layout = model::build_param_layout(cfg);
  gg::GgufWriter w;
  w.set_string("general.architecture", arch);
  w.set_string("general.name", opt.name.empty() ? std::string("onebit") : opt.name);
  w.set_u32("general.quantization_version", 2);
  const uint32_t ftype = opt.type == GgufWeightType::TQ2_0 ? 37 : opt.type == GgufWeightType::TQ1_0 ? 36 : 1;
  w.set_u32("general.file_type", ftype);  // llama_ftype: MOSTLY_TQ2_0, MOSTLY_TQ1_0, MOSTLY_F16
  const std::string a = arch + ".";
  w.set_u32(a + "vocab_size", static_cast<uint32_t>(cfg.vocab_size));
  w.set_u32(a + "context_length", static_cast<uint32_t>(cfg.max_position_embeddings));
  w.set_u32(a + "embedding_length", static_cast<uint32_t>(cfg.hidden_size));
  w.set_u32(a + "block_count", static_cast<uint32_t>(cfg.num_hidden_layers));
  w.set_u32(a + "feed_forward_length", static_cast<uint32_t>(cfg.intermediate_size));
  w.set_u32(a + "attention.head_count", static_cast<uint32_t>(cfg.num_attention_heads));
  w.set_u32(a + "attention.head_count_kv", static_cast<uint32_t>(cfg.num_key_value_heads));
  w.set_u32(a + "rope.dimension_count", static_cast<uint32_t>(cfg.head_dim()));
  w.set_f32(a + "rope.freq_base", cfg.rope_theta);
  w.set_f32(a + "attention.layer_norm_rms_epsilon", cfg.rms_norm_eps);
  add_gguf_tokenizer(w, tokenizer_json, cfg.vocab_size, where + " tokenizer.json");

  const gg::GgmlType embed_type = opt.embedding_f32 ? gg::GgmlType::F32 : gg::GgmlType::F16;
  auto plain = [&](const std::string& name, int index, gg::GgmlType type) {
    const model::ParamInfo info = layout.info[static_cast<size_t>(index)];
    std::vector<int64_t> ne(info.shape.rbegin(), info.shape.rend());
    w.add_tensor(name, type, ne, [&read, info, type](std::vector<uint8_t>& b) {
      const auto v = read(info);
      b = type == gg::GgmlType::F32 ? f32_bytes(v) : f16_bytes(v);
    });
  };
  // Ternary tensor + its scale. The scale is known only after reading the weights; the producer of
  // the (later-written) scale tensor reads it from `scale`, filled by the weight's producer.
  auto ternary = [&](const std::string& base, int index, int permute_heads) {
    const model::ParamInfo info = layout.info[static_cast<size_t>(index)];
    auto scale = std::make_shared<float>(0.0f);
    const int hd = cfg.head_dim();
    const GgufWeightType type = opt.type;
    const gg::GgmlType gtype = type == GgufWeightType::TQ2_0   ? gg::GgmlType::TQ2_0
                               : type == GgufWeightType::TQ1_0 ? gg::GgmlType::TQ1_0
                                                               : gg::GgmlType::F16;
    const model::Architecture arch_rule = cfg.architecture;
    w.add_tensor(base + ".weight", gtype, {info.shape[1], info.shape[0]},
                 [&read, info, scale, permute_heads, hd, type, arch_rule](std::vector<uint8_t>& b) {
                   // The scale of the weights as the model holds them (a permutation would change
                   // the kernels' summation order, and with it the last bit of g).
                   auto [codes, g] = ternary_codes(read(info), arch_rule);
                   if (permute_heads > 0)
                     codes = permute_rows_for_interleaved_rope(codes, permute_heads, hd, info.shape[1]);
                   *scale = g;
                   if (type == GgufWeightType::F16) {
                     b = f16_bytes(codes);
                     return;
                   }
                   std::vector<int8_t> c(codes.size());
                   for (size_t i = 0; i < c.size(); ++i) c[i] = static_cast<int8_t>(codes[i]);
                   b.resize(gg::ggml_row_bytes(type == GgufWeightType::TQ2_0 ? gg::GgmlType::TQ2_0 : gg::GgmlType::TQ1_0,
                                               info.shape[1]) *
                            static_cast<size_t>(info.shape[0]));
                   if (type == GgufWeightType::TQ2_0)
                     gg::encode_codes_tq2_0(c, b);
                   else
                     gg::encode_codes_tq1_0(c, b);
                 });
    w.add_tensor(base + ".scale", gg::GgmlType::F32, {1}, [scale](std::vector<uint8_t>& b) {
      b.resize(4);
      std::memcpy(b.data(), scale.get(), 4);
    });
  };

  plain("token_embd.weight", layout.embed, embed_type);
  for (int l = 0; l < cfg.num_hidden_layers; ++l) {
    const auto& P = layout.layers[static_cast<size_t>(l)];
    const std::string b = cat("blk.", l, ".");
    const bool llama = arch == "llama";
    plain(b + "attn_norm.weight", P.input_norm, gg::GgmlType::F32);
    ternary(b + "attn_q", P.q, llama ? cfg.num_attention_heads : 0);
    ternary(b + "attn_k", P.k, llama ? cfg.num_key_value_heads : 0);
    ternary(b + "attn_v", P.v, 0);
    if (!llama) plain(b + "attn_sub_norm.weight", P.attn_sub_norm, gg::GgmlType::F32);
    ternary(b + "attn_output", P.o, 0);
    plain(b + "ffn_norm.weight", P.post_norm, gg::GgmlType::F32);
    ternary(b + "ffn_gate", P.gate, 0);
    ternary(b + "ffn_up", P.up, 0);
    if (!llama) plain(b + "ffn_sub_norm.weight", P.ffn_sub_norm, gg::GgmlType::F32);
    ternary(b + "ffn_down", P.down, 0);
  }
  plain("output_norm.weight", layout.final_norm, gg::GgmlType::F32);
  if (!cfg.tie_word_embeddings) plain("output.weight", layout.lm_head, embed_type);
  w.write(out);
}

void export_model_dir_gguf(const fs::path& dir, const fs::path& out, GgufExportOptions opt) {
  const model::ModelConfig cfg = model::load_model_config((dir / "config.json").string());
  const std::string where = (dir / "config.json").string();
  gguf_architecture(cfg, opt, where);  // refuse before reading anything else
  const formats::SafetensorsFile st(dir / "model.safetensors");
  check_weights_match(st, model::build_param_layout(cfg).info);
  const std::string tokenizer = read_file(dir / "tokenizer.json");
  if (opt.name.empty()) opt.name = fs::absolute(dir).lexically_normal().filename().string();
  export_gguf(
      cfg,
      [&st](const model::ParamInfo& info) {
        std::vector<float> v(info.numel);
        st.read_f32(info.name, info.shape, v);
        return v;
      },
      tokenizer, out, opt, where);
}

}  // namespace onebit::modeldir
