#pragma once
// The device-agnostic kernel interface the model calls (llm.c style: raw pointers and sizes, no
// tensor objects). A backend implements Ops<T>; the CPU reference implements it for float and double
// (so whole-model gradient checks can run in f64), the fast CPU backend and (later) CUDA for float.
// Device-resident: every pointer passed to an Ops is memory obtained from that same Ops (alloc, or
// alloc_bytes for the few non-T values: token ids, quantization scales, loss sums, norms, code counts),
// and no kernel returns a value to the host. A caller crosses to the host only through upload/download,
// at the edges (a micro-batch's tokens in; the logged loss, grad norm and code counts out, once per
// step; weights and optimizer state for checkpoints). On a GPU each download is a synchronisation.
//
// Two storage types. T is the parameter type: master weights, their gradients, the AdamW state, norm
// weights, and the per-row statistics (rstd, log-sum-exp, per-row losses, RoPE tables); f32 on the fast
// CPU backend and on CUDA, f32 or f64 on the reference. A is the activation type: activations, their
// gradients and the effective (quantized) weights the matmuls read. The CPU backends use A = T (bitwise
// as before the split); CUDA uses A = bf16 with f32 accumulation (cuda/cuda_kernels.h). ParamOps<T> is
// the part that touches parameters only (memory, optimizer), which is all the trainer's optimizer and
// checkpoints need. Kernels never know about the model's types.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace onebit::kernels {

// How a weight tensor is quantized (DESIGN.md "Numerics"); per tensor, scales in QuantScale.
enum class WeightQuant { None, Ternary, Binary, Int8, BF16 };
// Gated MLP nonlinearity: out = act(gate) * up.
enum class GatedAct { SwiGLU, ReLU2, GELU };

// bf16 storage (the upper half of an f32), the CUDA backend's activation type. Host conversions:
// to_bf16 rounds to nearest even (NaN stays NaN), to_float is exact.
struct bf16 {
  uint16_t bits = 0;
};
inline bf16 to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  bf16 r;
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    r.bits = static_cast<uint16_t>((u >> 16) | 0x40u);
    return r;
  }
  u = u + 0x7fffu + ((u >> 16) & 1u);
  r.bits = static_cast<uint16_t>(u >> 16);
  return r;
}
inline float to_float(bf16 x) {
  const uint32_t u = static_cast<uint32_t>(x.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Per-tensor quantization parameters. Ternary: scale = mean|W| + 1e-5. Binary: center = mean(W),
// scale = mean|W - center|. Int8: scale = max|W| (codes are round(W * 127 / scale)). BF16/None: unused.
struct QuantScale {
  float center = 0.0f;
  float scale = 1.0f;
};

// Dropout mask shared by every backend so a recomputed (checkpointed) forward and any device draw the
// same mask: element i of a tensor is kept iff hash(seed, i) >= p. Returns 1/(1-p) or 0. constexpr so
// that CUDA device code calls this very function (the CUDA build compiles with --expt-relaxed-constexpr).
// Attention probabilities use i = ((b*H + h)*T + query)*T + key.
constexpr float dropout_factor(uint64_t seed, uint64_t i, float p) {
  uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  const float u = static_cast<float>(z >> 40) * (1.0f / 16777216.0f);
  return u >= p ? 1.0f / (1.0f - p) : 0.0f;
}

// Ternary weights packed by a backend for its integer Hard-phase forward (Ops::pack_ternary).
class PackedTernary {
 public:
  virtual ~PackedTernary() = default;
};

// One contiguous range of a flat parameter arena for adamw_step, and whether weight decay applies.
struct AdamWRange {
  size_t offset = 0;
  size_t numel = 0;
  bool decay = true;
};
// The scalars of one AdamW step (torch.optim.AdamW's formula; Ops::adamw_step). bias1 = 1 - beta1^t and
// bias2 = 1 - beta2^t for the step number t after this step, computed by the caller (host-known).
struct AdamWHyper {
  float lr = 0, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0.1f;
  float bias1 = 1, bias2 = 1;
};

// Untyped backend memory for the values that are not T (int32 token ids, int64 counts, f64 sums,
// QuantScale): the same memory as Ops<T>::alloc. DeviceBuffer<U> below is the typed, owning view.
class BackendMemory {
 public:
  virtual ~BackendMemory() = default;
  virtual void* alloc_bytes(size_t bytes) = 0;  // zero-initialised, aligned
  virtual void free_bytes(void* p) = 0;
  virtual void zero_bytes(void* p, size_t bytes) = 0;
  virtual void upload_bytes(void* dst, const void* host, size_t bytes) = 0;    // host -> backend
  virtual void download_bytes(void* host, const void* src, size_t bytes) = 0;  // backend -> host
  virtual void copy_bytes(void* dst, const void* src, size_t bytes) = 0;       // both in this backend
};

// n values of U in a backend's memory, freed with it.
template <typename U>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(BackendMemory& mem, size_t n) : mem_(&mem), n_(n), p_(static_cast<U*>(mem.alloc_bytes(n * sizeof(U)))) {}
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept : mem_(o.mem_), n_(o.n_), p_(o.p_) { o.p_ = nullptr, o.n_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      mem_ = o.mem_, n_ = o.n_, p_ = o.p_;
      o.p_ = nullptr, o.n_ = 0;
    }
    return *this;
  }
  void reset() {
    if (p_) mem_->free_bytes(p_);
    p_ = nullptr, n_ = 0;
  }
  U* get() const { return p_; }
  size_t size() const { return n_; }
  void zero() { mem_->zero_bytes(p_, n_ * sizeof(U)); }
  void upload(const U* host, size_t n) { mem_->upload_bytes(p_, host, n * sizeof(U)); }
  void download(U* host, size_t n) const { mem_->download_bytes(host, p_, n * sizeof(U)); }

 private:
  BackendMemory* mem_ = nullptr;
  size_t n_ = 0;
  U* p_ = nullptr;
};

// The parameter side of a backend: memory of T values and the optimizer over a flat arena.
template <typename T>
class ParamOps : public BackendMemory {
 public:
  virtual ~ParamOps() = default;
  virtual const char* name() const = 0;
  virtual void set_num_threads(int n) = 0;

  // ---- memory ----
  virtual T* alloc(size_t n) = 0;  // zero-initialised, aligned
  virtual void free(T* p) = 0;
  virtual void zero(T* p, size_t n) = 0;
  virtual void copy(T* dst, const T* src, size_t n) = 0;       // both in this Ops' memory
  virtual void upload(T* dst, const T* host, size_t n) = 0;    // host -> this Ops' memory
  virtual void download(T* host, const T* src, size_t n) = 0;  // this Ops' memory -> host
  virtual void axpy(T* y, T a, const T* x, size_t n) = 0;      // y += a * x

  // ---- optimizer (all in this Ops' memory) ----
  // *norm_sq = sum g^2 in f64 (the global gradient norm is its root), independent of the thread count.
  virtual void grad_norm_sq(double* norm_sq, const T* g, size_t n) = 0;
  // *factor = max_norm / (norm + 1e-6) where norm = sqrt(*norm_sq) is finite and above max_norm > 0,
  // else exactly 1 (no clipping): torch's clip_grad_norm_ factor, rounded to T.
  virtual void clip_factor(T* factor, const double* norm_sq, double max_norm) = 0;
  // Multi-tensor AdamW over the ranges of one flat arena, gradients read as grads[i] * *clip (clip
  // nullable: no clipping; the gradients are not modified):
  //   p = p * (1 - lr*wd if decay) - (lr/bias1) * m / (sqrt(v)/sqrt(bias2) + eps)
  // with m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2. Element-wise: the result does not depend on threads.
  virtual void adamw_step(T* params, const T* grads, T* m, T* v, const AdamWRange* ranges, size_t num_ranges,
                          const AdamWHyper& h, const T* clip) = 0;
};

// The whole kernel interface: parameters in T, activations in A (see the top of this file).
template <typename T, typename A = T>
class Ops : public ParamOps<T> {
 public:
  // ---- activation memory (bytes of A; the same memory as alloc) ----
  A* alloc_act(size_t n) { return static_cast<A*>(this->alloc_bytes(n * sizeof(A))); }
  void free_act(A* p) { this->free_bytes(p); }
  void zero_act(A* p, size_t n) {
    if constexpr (std::is_same_v<A, T>)
      this->zero(p, n);
    else
      this->zero_bytes(p, n * sizeof(A));
  }
  void copy_act(A* dst, const A* src, size_t n) {
    if constexpr (std::is_same_v<A, T>)
      this->copy(dst, src, n);
    else
      this->copy_bytes(dst, src, n * sizeof(A));
  }
  // y = a * x over activations. A = T: zero then axpy, the CPU backends' arithmetic as it always was.
  virtual void scale_act(A* y, T a, const A* x, size_t n) {
    if constexpr (std::is_same_v<A, T>) {
      this->zero(y, n);
      this->axpy(y, a, x, n);
    } else {
      (void)y, (void)a, (void)x, (void)n;
      throw std::logic_error(std::string(this->name()) + ": scale_act not implemented");
    }
  }
  // Rows of logits a backend prefers to hold at once is chosen from this budget (elements of A).
  virtual size_t logits_chunk_elems() const { return size_t{8} << 20; }
  // ... rounded down to a multiple of this many rows (where the budget holds that many): the matmuls'
  // row tile, so no chunk ends in a partly empty tile row.
  virtual int logits_chunk_row_multiple() const { return 1; }

  // ---- matrix multiply, row-major: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C ----
  // Activations out (C in A):
  virtual void gemm(bool trans_a, bool trans_b, int M, int N, int K, T alpha, const A* a, int lda, const A* b, int ldb,
                    T beta, A* c, int ldc) = 0;
  // A parameter gradient out (C in T, e.g. dW += dyᵀ x). A = T: the same product as gemm.
  virtual void gemm_acc(bool trans_a, bool trans_b, int M, int N, int K, T alpha, const A* a, int lda, const A* b,
                        int ldb, T beta, T* c, int ldc) {
    if constexpr (std::is_same_v<A, T>) {
      gemm(trans_a, trans_b, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
    } else {
      (void)trans_a, (void)trans_b, (void)M, (void)N, (void)K, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb;
      (void)beta, (void)c, (void)ldc;
      throw std::logic_error(std::string(this->name()) + ": gemm_acc not implemented");
    }
  }

  // ---- embedding: out[n,:] = table[tokens[n],:]; backward accumulates into dtable ----
  // table is the effective (A) weight: on CUDA a bf16 copy of the master table.
  virtual void embedding_forward(A* out, const int32_t* tokens, const A* table, int N, int C, int vocab) = 0;
  virtual void embedding_backward(T* dtable, const A* dout, const int32_t* tokens, int N, int C) = 0;

  // ---- RMSNorm over rows of C (computed in at least f32): out = x * rstd * w, rstd = 1/sqrt(mean(x^2)+eps).
  // If out_q is non-null it also receives the per-row int8 activation quantization of out.
  virtual void rmsnorm_forward(A* out, A* out_q, T* rstd, const A* x, const T* w, int N, int C, float eps) = 0;
  // dx += d/dx, dw += d/dw (accumulating, so residual streams and shared weights just add up).
  virtual void rmsnorm_backward(A* dx, T* dw, const A* dout, const A* x, const T* w, const T* rstd, int N, int C) = 0;

  // ---- quantizers (forward only: their backward is the identity, the STE) ----
  // Per-row absmax int8: s = 127/max(|x|,1e-5), out = clamp(round(x*s),-128,127)/s.
  virtual void act_quant_int8(A* out, const A* x, int N, int C) = 0;
  // *scale (one QuantScale in this Ops' memory) = the per-tensor scale of w; never read back by the model.
  virtual void weight_quant_scale(QuantScale* scale, const T* w, size_t n, WeightQuant q) = 0;
  // Effective (dequantized) weight, at the scale weight_quant_scale wrote. soft_k > 0 selects the soft
  // phase for ternary/binary: ternary g*q_soft(W/g) with q_soft(x) = 0.5*(tanh(k(x-0.5)) + tanh(k(x+0.5)));
  // binary b*tanh(k(W-a)/b).
  virtual void weight_quantize(A* out, const T* w, size_t n, WeightQuant q, const QuantScale* scale,
                               float soft_k) = 0;
  // weight_quant_scale's ternary scale as transformers' BitNet computes it (model_type "bitnet"):
  // scale = max(mean|W|, 1e-5) instead of mean|W| + 1e-5; weight_quantize and weight_code_counts then
  // use it as any ternary scale. Optional: a backend without it refuses BitNet models by name.
  virtual void ternary_scale_clamped(QuantScale* scale, const T* w, size_t n) {
    (void)scale, (void)w, (void)n;
    throw std::logic_error(std::string(this->name()) + ": no clamped (BitNet) ternary scale");
  }
  // counts[0..2] (int64 in this Ops' memory) += number of weights whose hard code is -1, 0, +1.
  virtual void weight_code_counts(int64_t* counts, const T* w, size_t n, WeightQuant q, const QuantScale* scale) = 0;

  // One tensor of weight_quantize_many: with_scale: first *scale = its per-tensor scale (clamped: the
  // BitNet ternary rule of ternary_scale_clamped); then, if out is set, out = weight_quantize(w) at it.
  struct QuantJob {
    const T* w = nullptr;
    size_t n = 0;
    WeightQuant q = WeightQuant::None;
    QuantScale* scale = nullptr;
    bool with_scale = false, clamped = false;
    A* out = nullptr;
    float soft_k = 0.0f;
  };
  // Every job in order, and counts (nullable) += the hard codes of the ternary/binary ones (as
  // weight_code_counts). The default is the per-tensor calls; a backend where a launch per tensor
  // costs more than the pass itself does all of them in a few launches.
  virtual void weight_quantize_many(const QuantJob* jobs, size_t njobs, int64_t* counts) {
    for (size_t i = 0; i < njobs; ++i) {
      const QuantJob& j = jobs[i];
      if (j.with_scale) {
        if (j.clamped)
          ternary_scale_clamped(j.scale, j.w, j.n);
        else
          weight_quant_scale(j.scale, j.w, j.n, j.q);
      }
      if (j.out) weight_quantize(j.out, j.w, j.n, j.q, j.scale, j.soft_k);
      if (counts && (j.q == WeightQuant::Ternary || j.q == WeightQuant::Binary))
        weight_code_counts(counts, j.w, j.n, j.q, j.scale);
    }
  }

  // ---- Hard-phase ternary linear as an exact integer product (optional) ----
  // Packs w_eff = g * t, t in {-1,0,+1} (weight_quantize's Hard ternary output, [out,in]; g = scale->scale,
  // read on the backend) for ternary_linear_forward, reusing `packed`'s storage when it is already this
  // backend's. Returns false,
  // leaving `packed` alone, where the backend has no integer path (the reference; CPUs without VNNI):
  // the caller then uses gemm, the same product in floating point.
  virtual bool pack_ternary(std::unique_ptr<PackedTernary>& packed, const A* w_eff, int out, int in,
                            const QuantScale* scale) {
    (void)packed, (void)w_eff, (void)out, (void)in, (void)scale;
    return false;
  }
  // y[N,out] = xq[N,in] · W_effᵀ, xq from act_quant_int8 (or rmsnorm_forward's out_q), `packed` from a
  // successful pack_ternary of this backend: exact int32 dot products of the codes, each scaled once
  // (so it differs from gemm at rounding level).
  virtual void ternary_linear_forward(A* y, const A* xq, int N, const PackedTernary& packed) {
    (void)y, (void)xq, (void)N, (void)packed;
    throw std::logic_error(std::string(this->name()) + ": ternary_linear_forward without a successful pack_ternary");
  }
  // The forwards of a projection group that reads one input (Q, K, V; gate, up) as one product where the backend
  // has one for these packs (CUDA's int8 tensor cores): ys[s] = ternary_linear_forward(ys[s], xq, N, *packs[s])
  // for s < count, bitwise. Returns false, having done nothing, where it has not (the CPU backends: always);
  // the caller then runs each member's ternary_linear_forward.
  virtual bool ternary_linear_forward_group(A* const* ys, const A* xq, int N, const PackedTernary* const* packs,
                                            int count) {
    (void)ys, (void)xq, (void)N, (void)packs, (void)count;
    return false;
  }
  // Its backward, where the backend has one for `packed` (else false, nothing written, and the caller runs
  // the two gemm calls): dx[N,in] = dx_beta·dx + dy[N,out] · W_eff and dw[out,in] += dyᵀ · xq, with the
  // same xq the forward read. Results differ from the gemm calls at rounding level (the CPU's AMX-BF16
  // path: bf16x3_gemm.h).
  virtual bool ternary_linear_backward(A* dx, T dx_beta, T* dw, const A* dy, const A* xq, int N,
                                       const PackedTernary& packed) {
    (void)dx, (void)dx_beta, (void)dw, (void)dy, (void)xq, (void)N, (void)packed;
    return false;
  }
  // Whether ternary_linear_backward takes `packed`'s backward. The network fuses a projection group's backward
  // (one dx and one dW product over adjacent effective weights) only where none of its members has one: the
  // CUDA backend has none, so its int8 Hard-phase forward leaves the backward fusable.
  virtual bool has_packed_backward(const PackedTernary& packed) const {
    (void)packed;
    return false;
  }

  // ---- RoPE ("rotate_half": pairs i and i+hd/2), in place on x[B,T,H,hd]; cos/sin are [T, hd/2].
  // inverse=true rotates by the negative angle (the backward).
  virtual void rope(A* x, const T* cos, const T* sin, int B, int Tn, int H, int hd, bool inverse) = 0;

  // ---- causal attention with GQA, flash style: q[B,T,H,hd], k/v[B,T,KV,hd], y[B,T,H,hd], scale 1/sqrt(hd).
  // The forward keeps only y and lse[B,H,T], the natural-log log-sum-exp of each row's scaled causal
  // scores, so the backward can recompute the probabilities P = exp(s - lse) tile by tile instead of
  // storing [B,H,T,T] (1 GiB per layer at B 16, T 1024, 16 heads in f32).
  // Attention dropout (nanoGPT's attn_dropout): y = (P ∘ Z) V with Z[b,h,i,j] = dropout_factor(seed,
  // ((b*H + h)*T + i)*T + j, p) in {0, 1/(1-p)}; lse stays that of the undropped scores. p = 0: no mask
  // (the code path and bits of attention without dropout).
  virtual void attention_forward(A* y, T* lse, const A* q, const A* k, const A* v, int B, int Tn, int H, int KV,
                                 int hd, float p, uint64_t seed) = 0;
  // Overwrites dq, dk, dv. y and lse are the forward's outputs (y gives D = rowsum(dy * y), which
  // equals rowsum(P * dP) as FlashAttention-2 uses it, with dropout too: dP = Z ∘ (dy Vᵀ),
  // dV = (P ∘ Z)ᵀ dy, dS = P ∘ (dP - D)). p and seed must be the forward's.
  virtual void attention_backward(A* dq, A* dk, A* dv, const A* dy, const A* q, const A* k, const A* v, const A* y,
                                  const T* lse, int B, int Tn, int H, int KV, int hd, float p, uint64_t seed) = 0;

  // ---- gated MLP activation: out = act(gate) * up; backward overwrites dgate, dup ----
  virtual void gated_act_forward(A* out, const A* gate, const A* up, size_t n, GatedAct act) = 0;
  virtual void gated_act_backward(A* dgate, A* dup, const A* dout, const A* gate, const A* up, size_t n,
                                  GatedAct act) = 0;

  // ---- fused sequences: defaults run the unfused calls (so the CPU backends compute exactly what they
  // did before); a backend overrides them where one pass over memory replaces several ----
  // QK-norm then RoPE over [B, Tn, H, hd] rows: out = rope(rmsnorm(x) * w).
  virtual void qk_norm_rope_forward(A* out, T* rstd, const A* x, const T* w, const T* cos, const T* sin, int B,
                                    int Tn, int H, int hd, float eps) {
    rmsnorm_forward(out, nullptr, rstd, x, w, B * Tn * H, hd, eps);
    rope(out, cos, sin, B, Tn, H, hd, false);
  }
  // Its backward: dout is the gradient of the rotated output (the default rotates it back in place, so
  // its contents are unspecified afterwards); dx is OVERWRITTEN, dw accumulates.
  virtual void qk_norm_rope_backward(A* dx, T* dw, A* dout, const A* x, const T* w, const T* rstd, const T* cos,
                                     const T* sin, int B, int Tn, int H, int hd) {
    rope(dout, cos, sin, B, Tn, H, hd, true);
    zero_act(dx, (size_t)B * Tn * H * hd);
    rmsnorm_backward(dx, dw, dout, x, w, rstd, B * Tn * H, hd);
  }
  // out = act(gate) * up over [N, C] rows, then out_q = its per-row int8 quantization. out and out_q
  // may be the same buffer (then only the quantized value is kept).
  virtual void gated_act_quant_forward(A* out, A* out_q, const A* gate, const A* up, int N, int C, GatedAct act) {
    gated_act_forward(out, gate, up, (size_t)N * C, act);
    act_quant_int8(out_q, out, N, C);
  }

  // ---- a projection group's output gradients as column blocks of one row-major matrix ----
  // The Q/K/V and gate/up projections read one input, so their weights side by side are one matrix
  // and one product gives the input's gradient (one dW product too) when the gradients of their
  // outputs are the column blocks of one [rows, ld] matrix. These write such a block: the calls above
  // with the named output at a row stride of ld elements (a row = a token). The defaults compute into
  // contiguous scratch and copy the rows; a backend whose kernels take the stride overrides them.
  // True where the network should use the fused products by default (CPU: false, so its bits stay).
  virtual bool prefers_fused_projections() const { return false; }
  // attention_backward with dv's token rows ld_dv elements apart (dq, dk contiguous as there).
  virtual void attention_backward_ld(A* dq, A* dk, A* dv, int ld_dv, const A* dy, const A* q, const A* k,
                                     const A* v, const A* y, const T* lse, int B, int Tn, int H, int KV, int hd,
                                     float p, uint64_t seed) {
    const int w = KV * hd;
    if (ld_dv == w) return attention_backward(dq, dk, dv, dy, q, k, v, y, lse, B, Tn, H, KV, hd, p, seed);
    A* tmp = alloc_act((size_t)B * Tn * w);
    attention_backward(dq, dk, tmp, dy, q, k, v, y, lse, B, Tn, H, KV, hd, p, seed);
    copy_rows(dv, ld_dv, tmp, w, B * Tn, w);
    free_act(tmp);
  }
  // qk_norm_rope_backward with dx's token rows (H heads of hd) ld_dx elements apart.
  virtual void qk_norm_rope_backward_ld(A* dx, int ld_dx, T* dw, A* dout, const A* x, const T* w, const T* rstd,
                                        const T* cos, const T* sin, int B, int Tn, int H, int hd) {
    const int width = H * hd;
    if (ld_dx == width) return qk_norm_rope_backward(dx, dw, dout, x, w, rstd, cos, sin, B, Tn, H, hd);
    A* tmp = alloc_act((size_t)B * Tn * width);
    qk_norm_rope_backward(tmp, dw, dout, x, w, rstd, cos, sin, B, Tn, H, hd);
    copy_rows(dx, ld_dx, tmp, width, B * Tn, width);
    free_act(tmp);
  }
  // The MLP's gated activation and sub-layer norm forward as one pass that does not store h = act(gate) * up,
  // where a backend has one for these shapes (CUDA): out, out_q and rstd as rmsnorm_forward(out, out_q, rstd,
  // h, w, N, C, eps) writes them. Returns false, having done nothing, where it has not (the CPU backends);
  // the caller then runs gated_act_forward and rmsnorm_forward. Where it ran, the backward must not read h:
  // sub_norm_gated_backward recomputes it, and where that declines the caller recomputes h first.
  virtual bool gated_sub_norm_forward(A* out, A* out_q, T* rstd, const A* gate, const A* up, const T* w, int N, int C,
                                      float eps, GatedAct act) {
    (void)out, (void)out_q, (void)rstd, (void)gate, (void)up, (void)w, (void)N, (void)C, (void)eps, (void)act;
    return false;
  }
  // The MLP's sub-layer norm backward (dn = the gradient of its input h = act(gate) * up, dw += its weight
  // gradient) and the gated backward of dn (dgate, dup at row stride ld, not overlapping dout) as one pass,
  // where a backend has one for these shapes (CUDA: one read of dout, gate and up instead of writing and
  // re-reading dn, h recomputed from gate and up): returns false, having done nothing, where it has not,
  // and the caller composes zero_act, rmsnorm_backward and gated_act_backward_ld (the CPU backends always).
  virtual bool sub_norm_gated_backward(A* dgate, A* dup, int ld, T* dw, const A* dout, const T* w, const T* rstd,
                                       const A* gate, const A* up, int N, int C, GatedAct act) {
    (void)dgate, (void)dup, (void)ld, (void)dw, (void)dout, (void)w, (void)rstd, (void)gate, (void)up, (void)N,
        (void)C, (void)act;
    return false;
  }
  // gated_act_backward over [N, C] rows with dgate's and dup's rows ld elements apart.
  virtual void gated_act_backward_ld(A* dgate, A* dup, int ld, const A* dout, const A* gate, const A* up, int N,
                                     int C, GatedAct act) {
    if (ld == C) return gated_act_backward(dgate, dup, dout, gate, up, (size_t)N * C, act);
    A* tg = alloc_act((size_t)N * C * 2);
    gated_act_backward(tg, tg + (size_t)N * C, dout, gate, up, (size_t)N * C, act);
    copy_rows(dgate, ld, tg, C, N, C);
    copy_rows(dup, ld, tg + (size_t)N * C, C, N, C);
    free_act(tg);
  }
  // dst[r, 0:cols] = src[r, 0:cols] for r < rows, rows ld_dst / ld_src elements apart.
  void copy_rows(A* dst, int ld_dst, const A* src, int ld_src, int rows, int cols) {
    for (int r = 0; r < rows; ++r)
      this->copy_bytes(dst + (size_t)r * ld_dst, src + (size_t)r * ld_src, (size_t)cols * sizeof(A));
  }

  // ---- residual branch: out = x + scale * dropout(y) (p = 0: no dropout) ----
  virtual void residual_forward(A* out, const A* x, const A* y, T scale, float p, uint64_t seed, size_t n) = 0;
  // dy = scale * dropout_mask * dout (overwrites dy; elementwise, so dy may be dout: the embedding dropout)
  virtual void residual_backward(A* dy, const A* dout, T scale, float p, uint64_t seed, size_t n) = 0;

  // ---- fused softmax cross-entropy over rows of logits[N,V]: losses[n] = lse - logit[target]
  // (0 where target < 0). If want_grad, logits are overwritten by dscale * (softmax - onehot)
  // (zero rows where target < 0). targets: int32 in this Ops' memory. loss_sum (nullable, one f64 in
  // this Ops' memory): *loss_sum += the sum of this call's losses (summed in f64 in row order).
  virtual void cross_entropy(A* logits, T* losses, double* loss_sum, const int32_t* targets, int N, int V, T dscale,
                             bool want_grad) = 0;

};

// The CPU backends. Each call returns a process-wide instance.
Ops<float>& cpu_ops();  // OpenBLAS + OpenMP + vectorized loops (the CUDA backend: kernels/backend.h)
template <typename T>
Ops<T>& reference_ops();  // plain loops; float and double
extern template Ops<float>& reference_ops<float>();
extern template Ops<double>& reference_ops<double>();

}  // namespace onebit::kernels
