#include "onebit/infer/runtime.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "onebit/core/error.h"
#include "onebit/infer/forward_profile.h"
#include "onebit/kernels/cpu/reference.h"
#include "onebit/kernels/cpu/thread_pool.h"
#include "onebit/model/param_layout.h"

namespace onebit::infer {

const char* to_string(HeadType h) {
  switch (h) {
    case HeadType::Model:
      return "model";
    case HeadType::BF16:
      return "bf16";
    case HeadType::Int8:
      return "int8";
    case HeadType::Q6:
      return "q6";
  }
  return "?";
}

namespace {

using model::Precision;

bool quantized_precision(Precision p) {
  return p == Precision::Ternary || p == Precision::Binary || p == Precision::Int8;
}

// The ternary scale rule of the model's architecture (the training network's quant_scale): a
// model_type "bitnet" model quantizes with transformers' max(mean|W|, 1e-5).
TernaryScaleRule ternary_rule(const model::ModelConfig& cfg) {
  return cfg.architecture == model::Architecture::BitNet ? TernaryScaleRule::ClampedMean
                                                         : TernaryScaleRule::MeanPlusEps;
}

// The effective (quantized, then dequantized) f32 values the training network uses for a tensor
// whose input is not quantized (the embedding, act-none models): DESIGN.md's quantizers, verbatim.
std::vector<float> effective_values(WeightTensor& t, Precision p, TernaryScaleRule rule) {
  if (t.is_ternary_codes()) {
    std::vector<float> out(t.ternary_codes.size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = (float)t.ternary_codes[i] * t.ternary_scale;
    return out;
  }
  const kernels::WeightQuant q = model::to_weight_quant(p);
  if (q == kernels::WeightQuant::None) return std::move(t.values);
  const kernels::QuantScale s = q == kernels::WeightQuant::Ternary && rule == TernaryScaleRule::ClampedMean
                                    ? kernels::ref::ternary_scale_clamped(t.values.data(), t.values.size())
                                    : kernels::ref::weight_quant_scale(t.values.data(), t.values.size(), q);
  std::vector<float> out(t.values.size());
  kernels::ref::weight_quantize(out.data(), t.values.data(), out.size(), q, s, 0.0f);
  return out;
}

PackedMatrix pack_linear(WeightTensor t, const std::string& name, Precision p, bool int8_input, PackedFormat ternary,
                         TernaryScaleRule rule, const std::string& source) {
  const int rows = (int)t.shape[0], cols = (int)t.shape[1];
  if (t.is_ternary_codes() && p != Precision::Ternary)
    fail(source, ": tensor \"", printable(name), "\" holds ternary codes but the config makes it ", model::to_string(p));
  if (!int8_input) {
    if (p == Precision::BF16) return pack_bf16(t.values, rows, cols);
    return pack_f32(effective_values(t, p, rule), rows, cols);
  }
  if (t.is_ternary_codes()) return pack_ternary(t.ternary_codes, rows, cols, t.ternary_scale, ternary);
  std::vector<int8_t> codes(t.values.size());
  switch (p) {
    case Precision::Ternary: {
      const float g = ternary_codes(t.values, codes, rule);
      return pack_ternary(codes, rows, cols, g, ternary);
    }
    case Precision::Binary: {
      const float b = binary_signs(t.values, codes);
      return pack_binary(codes, rows, cols, b);
    }
    default: {
      const float s = int8_codes(t.values, codes);
      return pack_int8(codes, rows, cols, s);
    }
  }
}

enum { kQ, kK, kV, kO, kGate, kUp, kDown };

struct Layer {
  PackedMatrix lin[7];
  // q/k/v and gate/up stacked into one matrix each where their formats allow (can_stack_rows): one
  // GEMV over the shared activation and one thread-pool job; their lin[] entries are then empty.
  PackedMatrix qkv, gate_up;
  std::vector<float> input_norm, post_norm, q_norm, k_norm, attn_sub_norm, ffn_sub_norm;
};

// Calls f(r) for rows [0, rows) of `width` values, spread over the pool in chunks of at least ~16K
// values. Prefill's per-row passes (norms, RoPE, the gated activation, residual adds, cache stores)
// would otherwise run on one thread beside multi-threaded GEMMs and cap prefill's scaling (Amdahl);
// decode's single row stays on the calling thread. Each row is computed as before: same bits.
template <typename F>
void for_rows(int rows, size_t width, F&& f) {
  const int64_t min_rows = std::max<int64_t>(1, 16384 / (int64_t)std::max<size_t>(width, 1));
  kernels::cpu::parallel_ranges(rows, min_rows, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) f((int)r);
  });
}

void rmsnorm(float* out, const float* x, const float* w, int rows, int C, float eps) {
  for_rows(rows, (size_t)C, [&](int n) {
    const float* xr = x + (size_t)n * C;
    // The sum of squares in double, as the numerics contract says, in SIMD lanes (decode runs this
    // alone between parallel GEMVs); the order differs from a sequential sum only far below f32.
    double ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int c = 0; c < C; ++c) ss += (double)xr[c] * xr[c];
    const float r = (float)(1.0 / std::sqrt(ss / C + eps));
    float* o = out + (size_t)n * C;
#pragma omp simd
    for (int c = 0; c < C; ++c) o[c] = xr[c] * r * w[c];
  });
}

// out[t, :ff] = act(gate[t, :]) * up[t, :] for rows t < C (gate and up rows ld_in apart). Decode's
// single row sits alone between two parallel GEMVs, so it is split by columns over the pool (element
// by element: the same bits as one pass); prefill's rows are split as for_rows does.
void gated_rows(float* out, const float* gate, const float* up, size_t ld_in, int C, int ff, kernels::GatedAct act) {
  if (C == 1) {
    kernels::cpu::parallel_ranges(ff, 1024, [&](int64_t lo, int64_t hi) {
      kernels::ref::gated_act_forward(out + lo, gate + lo, up + lo, (size_t)(hi - lo), act);
    });
    return;
  }
  for_rows(C, 2 * (size_t)ff, [&](int t) {
    kernels::ref::gated_act_forward(out + (size_t)t * ff, gate + t * ld_in, up + t * ld_in, ff, act);
  });
}

// Prefill's attention is split into at most this many blocks of positions per head.
constexpr int kMaxAttnBlocks = 16;

// x[t, :] += scale * y[t, :] for rows t of width C.
void add_scaled(float* x, const float* y, float scale, int rows, int C) {
  for_rows(rows, (size_t)C, [&](int t) {
    float* xr = x + (size_t)t * C;
    const float* yr = y + (size_t)t * C;
    for (int c = 0; c < C; ++c) xr[c] += scale * yr[c];
  });
}

}  // namespace

struct Runtime::Impl {
  model::ModelConfig cfg;
  RuntimeOptions opt;
  const DotKernels* k = nullptr;
  int ctx = 0, pos = 0;
  std::shared_ptr<PackedMatrix> embed, head;
  std::vector<float> final_norm;
  std::vector<Layer> layers;
  KvCache cache;
  std::vector<float> rope_cos, rope_sin;  // [ctx, head_dim / 2]
  // Scratch, sized once for prefill_chunk tokens.
  std::vector<float> x, h, q, kbuf, vbuf, att, tmp, gate, up, act, scores, fused;
  QuantizedActs xq;

  void build(ModelWeights& w);
  void run_chunk(const int32_t* tokens, int C, float* logits, bool all_logits);
  const float* xq_src = nullptr;  // the rows xq holds the quantization of (reset when they change)
  ForwardProfile prof;
  bool decoding = false;  // the forward call is one token (for the profile's decode / prefill split)
  // The linear of role `part`; the passes since the previous lap are counted as norms and the like.
  void linear(const PackedMatrix& W, const float* in, int C, float* out, FwdPart part) {
    prof.lap(FwdPart::Norms);
    if (takes_int8_input(W.format) && xq_src != in) {
      xq.quantize(in, C, W.cols, W.cols);
      xq_src = in;
      prof.lap(FwdPart::Quant);
    }
    matmul(W, in, W.cols, &xq, C, out, W.rows, *k);
    prof.lap(part, W.bytes());
  }
  void rope(float* v, int C, int heads) {
    const int hd = cfg.head_dim(), half = hd / 2;
    for_rows(C, (size_t)heads * hd, [&](int t) {
      const float* cs = rope_cos.data() + (size_t)(pos + t) * half;
      const float* sn = rope_sin.data() + (size_t)(pos + t) * half;
      for (int hh = 0; hh < heads; ++hh) {
        float* r = v + ((size_t)t * heads + hh) * hd;
        for (int i = 0; i < half; ++i) {
          const float a = r[i], b = r[i + half];
          r[i] = a * cs[i] - b * sn[i];
          r[i + half] = b * cs[i] + a * sn[i];
        }
      }
    });
  }
};

void Runtime::Impl::build(ModelWeights& w) {
  const std::string& src = w.source;
  const auto layout = model::build_param_layout(cfg);
  const bool act_int8 = cfg.quantization.activation_bits == model::ActBits::Int8;
  const TernaryScaleRule rule = ternary_rule(cfg);
  auto norm = [&](int idx) {
    if (idx < 0) return std::vector<float>();
    const auto& p = layout.info[idx];
    WeightTensor t = w.take(p.name, p.shape);
    if (t.is_ternary_codes()) fail(src, ": norm weight \"", printable(p.name), "\" must be f32, not ternary codes");
    return std::move(t.values);
  };
  for (int l = 0; l < cfg.num_hidden_layers; ++l) {
    const auto& P = layout.layers[l];
    Layer L;
    const int idx[7] = {P.q, P.k, P.v, P.o, P.gate, P.up, P.down};
    for (int j = 0; j < 7; ++j) {
      const auto& p = layout.info[idx[j]];
      const bool int8_in = quantized_precision(p.precision) && act_int8;
      L.lin[j] = pack_linear(w.take(p.name, p.shape), p.name, p.precision, int8_in, opt.ternary, rule, src);
    }
    const PackedMatrix* qkv[3] = {&L.lin[kQ], &L.lin[kK], &L.lin[kV]};
    if (can_stack_rows(qkv)) {
      L.qkv = stack_rows(qkv);
      for (int j : {kQ, kK, kV}) L.lin[j] = PackedMatrix();
    }
    const PackedMatrix* gu[2] = {&L.lin[kGate], &L.lin[kUp]};
    if (can_stack_rows(gu)) {
      L.gate_up = stack_rows(gu);
      for (int j : {kGate, kUp}) L.lin[j] = PackedMatrix();
    }
    L.input_norm = norm(P.input_norm);
    L.post_norm = norm(P.post_norm);
    L.q_norm = norm(P.q_norm);
    L.k_norm = norm(P.k_norm);
    L.attn_sub_norm = norm(P.attn_sub_norm);
    L.ffn_sub_norm = norm(P.ffn_sub_norm);
    layers.push_back(std::move(L));
  }
  final_norm = norm(layout.final_norm);
  const auto& E = layout.info[layout.embed];
  const auto& Hd = layout.info[layout.lm_head];
  const int V = cfg.vocab_size, d = cfg.hidden_size;
  const Precision ep = cfg.precision_of("model.embed_tokens"), hp = cfg.precision_of("lm_head");
  const bool tied = layout.lm_head == layout.embed;
  WeightTensor et = w.take(E.name, E.shape);
  const bool head_int8_in = quantized_precision(hp) && act_int8;
  // A tied f32 head is the embedding's matrix itself; otherwise it is packed from its own copy.
  const bool shared = tied && opt.head == HeadType::Model && hp == ep && !head_int8_in;
  if (!shared) {
    WeightTensor ht = tied ? et : w.take(Hd.name, Hd.shape);
    if (opt.head == HeadType::Model) {
      head = std::make_shared<PackedMatrix>(
          pack_linear(std::move(ht), Hd.name, hp, head_int8_in, opt.ternary, rule, src));
    } else {
      std::vector<float> v = effective_values(ht, hp, rule);
      head = std::make_shared<PackedMatrix>(opt.head == HeadType::BF16   ? pack_bf16(v, V, d)
                                            : opt.head == HeadType::Int8 ? pack_int8_rows(v, V, d)
                                                                         : pack_q6_rows(v, V, d));
    }
  }
  embed = std::make_shared<PackedMatrix>(ep == Precision::BF16 && !et.is_ternary_codes()
                                             ? pack_bf16(et.values, V, d)
                                             : pack_f32(effective_values(et, ep, rule), V, d));
  if (!head) head = embed;
}

int auto_prefill_chunk(int threads) { return std::clamp(32 * threads, 64, kMaxAutoPrefillChunk); }

Runtime::Runtime(ModelWeights weights, const RuntimeOptions& opt) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.cfg = weights.config;
  m.cfg.validate(weights.source + " (config)");
  m.opt = opt;
  OB_CHECK(opt.ternary == PackedFormat::Ternary2 || opt.ternary == PackedFormat::Ternary1_6,
           "runtime: the ternary layout must be ternary-2bit or ternary-1.6bit, not ", to_string(opt.ternary));
  OB_CHECK(opt.prefill_chunk >= 0, "runtime: prefill_chunk must be >= 0 (0 = auto)");
  const model::ModelConfig& c = m.cfg;
  if (opt.context < 0) fail("--ctx-size must be >= 0 (got ", opt.context, "; 0 = the model's)");
  if (opt.context > c.max_position_embeddings)
    fail("--ctx-size ", opt.context, " exceeds the model's max_position_embeddings (", c.max_position_embeddings, ")");
  m.ctx = opt.context > 0 ? opt.context : c.max_position_embeddings;
  m.k = &dot_kernels(opt.kernel ? *opt.kernel : default_path());
  m.build(weights);
  const int hd = c.head_dim(), half = hd / 2, d = c.hidden_size, kvd = c.num_key_value_heads * hd;
  m.cache = KvCache(c.num_hidden_layers, c.num_key_value_heads, hd, m.ctx, opt.kv);
  // RoPE tables as the training network builds them: in double, then cast.
  m.rope_cos.resize((size_t)m.ctx * half);
  m.rope_sin.resize((size_t)m.ctx * half);
  for (size_t t = 0; t < (size_t)m.ctx; ++t)
    for (int i = 0; i < half; ++i) {
      const double inv = std::pow((double)c.rope_theta, -2.0 * (double)i / (double)hd);
      m.rope_cos[t * half + i] = (float)std::cos(t * inv);
      m.rope_sin[t * half + i] = (float)std::sin(t * inv);
    }
  const size_t C = (size_t)std::min(opt.prefill_chunk > 0 ? opt.prefill_chunk : kMaxAutoPrefillChunk, m.ctx),
               ff = c.intermediate_size;
  for (auto* v : {&m.x, &m.h, &m.q, &m.att, &m.tmp}) v->assign(C * d, 0.0f);
  m.kbuf.assign(C * kvd, 0.0f);
  m.vbuf.assign(C * kvd, 0.0f);
  for (auto* v : {&m.gate, &m.up, &m.act}) v->assign(C * ff, 0.0f);
  m.fused.assign(C * std::max((size_t)d + 2 * kvd, 2 * ff), 0.0f);
  m.scores.assign((size_t)c.num_attention_heads * kMaxAttnBlocks * m.ctx, 0.0f);
  m.xq.reserve((int)C, std::max(d, (int)ff));
}

Runtime::~Runtime() = default;

void Runtime::Impl::run_chunk(const int32_t* tokens, int C, float* logits, bool all_logits) {
  const int d = cfg.hidden_size, ff = cfg.intermediate_size, H = cfg.num_attention_heads,
            KV = cfg.num_key_value_heads, hd = cfg.head_dim(), kvd = KV * hd;
  const float eps = cfg.rms_norm_eps, rs = cfg.residual_scale, scale = 1.0f / std::sqrt((float)hd);
  const int group = H / KV;
  prof.start(decoding);
  for_rows(C, (size_t)d, [&](int t) {
    for (int c = 0; c < d; ++c) x[(size_t)t * d + c] = value_at(*embed, tokens[t], c);
  });
  prof.lap(FwdPart::Embed);
  kernels::GatedAct act_kind = kernels::GatedAct::SwiGLU;
  if (cfg.hidden_act == model::HiddenAct::ReLU2) act_kind = kernels::GatedAct::ReLU2;
  if (cfg.hidden_act == model::HiddenAct::GELU) act_kind = kernels::GatedAct::GELU;
  for (int l = 0; l < cfg.num_hidden_layers; ++l) {
    Layer& L = layers[l];
    // Attention.
    rmsnorm(h.data(), x.data(), L.input_norm.data(), C, d, eps);
    xq_src = nullptr;
    if (L.qkv.rows) {
      linear(L.qkv, h.data(), C, fused.data(), FwdPart::Qkv);
      const size_t w = (size_t)d + 2 * kvd;
      for_rows(C, w, [&](int t) {
        const float* row = fused.data() + t * w;
        std::memcpy(q.data() + (size_t)t * d, row, d * sizeof(float));
        std::memcpy(kbuf.data() + (size_t)t * kvd, row + d, kvd * sizeof(float));
        std::memcpy(vbuf.data() + (size_t)t * kvd, row + d + kvd, kvd * sizeof(float));
      });
    } else {
      linear(L.lin[kQ], h.data(), C, q.data(), FwdPart::Qkv);
      linear(L.lin[kK], h.data(), C, kbuf.data(), FwdPart::Qkv);
      linear(L.lin[kV], h.data(), C, vbuf.data(), FwdPart::Qkv);
    }
    if (cfg.qk_norm) {
      rmsnorm(q.data(), q.data(), L.q_norm.data(), C * H, hd, eps);
      rmsnorm(kbuf.data(), kbuf.data(), L.k_norm.data(), C * KV, hd, eps);
    }
    rope(q.data(), C, H);
    rope(kbuf.data(), C, KV);
    for_rows(C, 2 * (size_t)kvd,
             [&](int t) { cache.store(l, pos + t, kbuf.data() + (size_t)t * kvd, vbuf.data() + (size_t)t * kvd); });
    prof.lap(FwdPart::Norms);
    // Jobs of (head, block of positions): prefill has more of them than heads (12-20 heads would
    // leave some of 16+ threads idle); each job has its own score row.
    const int tblocks = std::min({C, kMaxAttnBlocks, std::max(1, (4 * kernels::cpu::pool_threads() + H - 1) / H)});
    kernels::cpu::parallel_for((int64_t)H * tblocks, [&](int64_t job) {
      const int hh = (int)(job % H), b = (int)(job / H);
      float* sc = scores.data() + (size_t)job * ctx;
      const int kh = hh / group;
      for (int t = C * b / tblocks; t < C * (b + 1) / tblocks; ++t) {
        const float* qt = q.data() + (size_t)t * d + hh * hd;
        float* out = att.data() + (size_t)t * d + hh * hd;
        if (cache.type() == KvType::F16)
          k->attend_f16(qt, cache.keys_f16(l, kh), cache.values_f16(l, kh), pos + t + 1, hd, scale, sc, out);
        else if (cache.type() == KvType::Int8)
          k->attend_i8(qt, cache.keys_i8(l, kh), cache.key_scales(l, kh), cache.values_i8(l, kh),
                       cache.value_scales(l, kh), pos + t + 1, hd, scale, sc, out);
        else
          k->attend_f32(qt, cache.keys_f32(l, kh), cache.values_f32(l, kh), pos + t + 1, hd, scale, sc, out);
      }
    });
    prof.lap(FwdPart::Attention);
    const float* o_in = att.data();
    xq_src = nullptr;
    if (cfg.sub_ln) {
      rmsnorm(h.data(), att.data(), L.attn_sub_norm.data(), C, d, eps);
      o_in = h.data();
    }
    linear(L.lin[kO], o_in, C, tmp.data(), FwdPart::O);
    add_scaled(x.data(), tmp.data(), rs, C, d);
    // MLP.
    rmsnorm(h.data(), x.data(), L.post_norm.data(), C, d, eps);
    xq_src = nullptr;
    if (L.gate_up.rows) {
      linear(L.gate_up, h.data(), C, fused.data(), FwdPart::GateUp);
      gated_rows(act.data(), fused.data(), fused.data() + ff, 2 * (size_t)ff, C, ff, act_kind);
    } else {
      linear(L.lin[kGate], h.data(), C, gate.data(), FwdPart::GateUp);
      linear(L.lin[kUp], h.data(), C, up.data(), FwdPart::GateUp);
      gated_rows(act.data(), gate.data(), up.data(), (size_t)ff, C, ff, act_kind);
    }
    prof.lap(FwdPart::Act);
    const float* down_in = act.data();
    xq_src = nullptr;
    if (cfg.sub_ln) {
      rmsnorm(gate.data(), act.data(), L.ffn_sub_norm.data(), C, ff, eps);
      down_in = gate.data();
    }
    linear(L.lin[kDown], down_in, C, tmp.data(), FwdPart::Down);
    add_scaled(x.data(), tmp.data(), rs, C, d);
  }
  if (!logits) return;
  const int first = all_logits ? 0 : C - 1, rows = C - first;
  rmsnorm(h.data(), x.data() + (size_t)first * d, final_norm.data(), rows, d, eps);
  xq_src = nullptr;
  linear(*head, h.data(), rows, logits, FwdPart::Head);
  prof.lap(FwdPart::Norms);
}

const model::ModelConfig& Runtime::config() const { return impl_->cfg; }
int Runtime::context() const { return impl_->ctx; }
int Runtime::position() const { return impl_->pos; }
void Runtime::reset() { impl_->pos = 0; }
void Runtime::truncate(int n) {
  OB_CHECK(n >= 0 && n <= impl_->pos, "truncate(", n, "): the cache holds ", impl_->pos, " positions");
  impl_->pos = n;
}
KernelPath Runtime::kernel_path() const { return impl_->k->path; }
size_t Runtime::kv_bytes() const { return impl_->cache.bytes(); }

size_t Runtime::weight_bytes_per_token() const {
  size_t n = impl_->head->bytes();
  for (const Layer& L : impl_->layers) {
    for (const PackedMatrix& m : L.lin) n += m.bytes();
    n += L.qkv.bytes() + L.gate_up.bytes();
  }
  return n;
}

size_t Runtime::weight_bytes() const {
  size_t n = weight_bytes_per_token();
  if (impl_->embed != impl_->head) n += impl_->embed->bytes();
  return n;
}

int Runtime::prefill_chunk() const {
  const int room = (int)impl_->q.size() / impl_->cfg.hidden_size;  // the scratch's tokens
  return impl_->opt.prefill_chunk > 0 ? room : std::min(room, auto_prefill_chunk(kernels::cpu::pool_threads()));
}

void Runtime::forward(std::span<const int32_t> tokens, float* logits, bool all_logits) {
  Impl& m = *impl_;
  const int n = (int)tokens.size();
  if (n == 0) return;
  if ((size_t)m.pos + tokens.size() > (size_t)m.ctx)
    fail("context is full: ", m.pos, " tokens in the cache + ", tokens.size(), " new ones exceed the context of ",
         m.ctx, " (--ctx-size)");
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= m.cfg.vocab_size)
      fail("token id ", tokens[i], " at position ", i, " is outside the model's vocabulary [0, ", m.cfg.vocab_size,
           ")");
  const int chunk = prefill_chunk();
  m.decoding = n == 1;
  for (int i = 0; i < n; i += chunk) {
    const int C = std::min(chunk, n - i);
    const bool last = i + C == n;
    float* out = all_logits ? logits + (size_t)i * m.cfg.vocab_size : (last ? logits : nullptr);
    m.run_chunk(tokens.data() + i, C, out, all_logits);
    m.pos += C;
  }
}

}  // namespace onebit::infer
