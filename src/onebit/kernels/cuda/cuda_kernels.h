#pragma once
// The CUDA training kernels (issue 14), callable from plain C++: this header needs no CUDA headers.
// Everything is device-resident: every pointer below is device memory (from device_alloc), scalar
// results (quantization scales, losses, norms, code counts) are written to device buffers, and no
// launch synchronises with the host. Launches go to the given stream in order.
//
// Storage types: activations and their gradients are bf16 (`bf16`, raw bits); master weights, their
// gradients, AdamW state, norm weights and softmax statistics are f32. All math is f32 or wider.
// Numerics follow src/onebit/kernels/cpu/reference.h (DESIGN.md "Numerics"); tests/cuda checks each
// kernel against it.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "onebit/kernels/kernels.h"

struct CUstream_st;  // = cudaStream_t's pointee, so a cudaStream_t converts without a cast

namespace onebit::kernels::cuda {

using Stream = CUstream_st*;  // nullptr: the legacy default stream

// bf16 storage and its host conversions are kernels.h's (the activation type A of Ops<float, bf16>).
using kernels::bf16;
using kernels::to_bf16;
using kernels::to_float;

// ---- device and memory ----
bool device_available();  // a CUDA device is visible and usable
int device_count();       // visible CUDA devices (0 when none is usable)
std::string device_name();  // of the current device
// Makes device `index` current for this thread and the ones the backend starts (cudaSetDevice).
void set_device(int index);
int current_device();
void* device_alloc(size_t bytes);  // zero-initialised
void device_free(void* p);
void upload(void* dst, const void* host, size_t bytes, Stream s = nullptr);    // synchronous
void download(void* host, const void* src, size_t bytes, Stream s = nullptr);  // synchronous
void device_zero(void* p, size_t bytes, Stream s = nullptr);
void synchronize(Stream s = nullptr);
void check_last_launch(const char* what);  // throws onebit::Error if a launch failed

// Holds the cuBLASLt handle, its workspace, the per-shape algorithm cache and a scratch buffer for
// deterministic two-stage reductions. One context per stream (kernels using the scratch buffer on
// one context must run in stream order).
class Context {
 public:
  explicit Context(Stream stream = nullptr, size_t workspace_bytes = size_t{32} << 20);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  Stream stream() const;
  // Scratch memory owned by the context, grown on demand to exactly the largest request (the old
  // contents are dropped; growth happens in a run's first step, so no headroom is kept).
  void* scratch(size_t bytes);
  size_t scratch_capacity() const;  // bytes scratch() returns without growing
  // A second stream for launches that may overlap the main stream's: fork() makes it wait for all
  // work queued on the main stream so far and returns it; join() makes the main stream wait for all
  // work queued on it. Callers keep stream order by pairing the two around independent launches.
  Stream fork();
  void join();
  // Device bytes the context holds (workspace and scratch), and a callback told of every
  // growth, so CudaOps counts them in the peak it reports.
  size_t held_bytes() const;
  void on_growth(std::function<void(size_t)> grew);
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// ---- 1. matmul (cuBLASLt, bf16 inputs, f32 accumulation) ----
enum class OutType { BF16, F32 };
// Row-major C[M,N] = alpha * op(A)[M,K] op(B)[K,N] + beta * C, like Ops::gemm. A and B are bf16; C is
// bf16 or f32 (out). beta != 0 reads C.
void matmul(Context& ctx, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const bf16* A, int lda,
            const bf16* B, int ldb, float beta, void* C, int ldc, OutType out);
// The three training products of a linear layer with x[N,in], W[out,in], y[N,out]:
void linear_forward(Context& ctx, bf16* y, const bf16* x, const bf16* W, int N, int in, int out);  // y = x Wᵀ
void linear_backward_input(Context& ctx, bf16* dx, const bf16* dy, const bf16* W, int N, int in, int out);  // dx = dy W
// dW += dyᵀ x (f32 accumulation into the f32 gradient)
void linear_backward_weight(Context& ctx, float* dW, const bf16* dy, const bf16* x, int N, int in, int out);

// The operand the int8 product below reads, written by the per-row int8 quantizers (rmsnorm_forward's
// out_q, act_quant_int8, gated_act_quant_forward) beside their bf16 value q / s when asked: codes[N, C]
// the codes q, factor[N] one code step of each row, max(absmax, 1e-5) / 127 (= 1 / s up to rounding).
// Null members are not written.
struct Int8Rows {
  int8_t* codes = nullptr;
  float* factor = nullptr;
};
// The Hard-phase forward of a ternary linear on int8 tensor cores (int8_gemm.cu), where
// int8_gemm_available() (sm_90a code in the build, a compute capability 9.0 device):
// y[M,N] = bf16(float((xc · wcᵀ)[m][n]) · (xf[m] · *g)) with xc[M,K] and xf[M] an Int8Rows, wc[N,K] the
// weight's ternary codes and g its scale (device f32): exact int32 sums, one f32 rounding of each row's
// factor product and one of each scaling, then bf16 (round to nearest even). K % 16 == 0, N even, xc and
// wc 16-byte aligned.
bool int8_gemm_available();
void int8_linear_forward(Context& ctx, bf16* y, const int8_t* xc, const float* xf, const int8_t* wc, const float* g,
                         int M, int N, int K);
// The same product for up to kInt8GroupMax linears that read one input (Q, K, V; gate, up) in one launch: wc is
// their codes stacked, [N, K] with N the sum of the widths, and output s takes the next `width` columns of the
// product into its own y[M, width] (row-major), scaled by its own *g: bitwise each linear's int8_linear_forward.
// A tile of the product belongs to one output, so every width but the last is a multiple of the 256-column
// tile; every width is a multiple of 8 and every y 16-byte aligned (TMA stores). int8_group_fits says whether
// outputs meet that (int8_linear_forward_group fails with a message where they do not).
constexpr int kInt8GroupMax = 3;
struct Int8GroupOut {
  bf16* y;
  const float* g;
  int width;
};
bool int8_group_fits(const Int8GroupOut* outs, int count);
void int8_linear_forward_group(Context& ctx, const Int8GroupOut* outs, int count, const int8_t* xc, const float* xf,
                               const int8_t* wc, int M, int K);
// t = sign(w_eff) as int8 (-1, 0, +1): the codes of a Hard ternary weight w_eff = g · t; any alignment.
void ternary_codes(Context& ctx, int8_t* t, const bf16* w_eff, size_t n);
// The same for several weights, up to 8 a launch (a layer's weights: the conversion is bound by launches).
struct TernaryCodesJob {
  int8_t* t;
  const bf16* w_eff;
  size_t n;
};
void ternary_codes_many(Context& ctx, const TernaryCodesJob* jobs, size_t njobs);

// ---- 2. weight quantization ----
// Per-tensor parameters on the device: {center, scale} as QuantScale (kernels.h).
// The scale alone (absmean + 1e-5 for ternary, mean and mean |w - mean| for binary, max |w| for int8;
// the default QuantScale for None/BF16), a deterministic two-stage reduction:
void weight_quant_scale(Context& ctx, QuantScale* scale, const float* w, size_t n, WeightQuant q);
// The ternary scale as transformers' BitNet computes it: max(mean|W|, 1e-5) (model_type "bitnet").
void ternary_scale_clamped(Context& ctx, QuantScale* scale, const float* w, size_t n);
// out = quantize(w) as bf16 at the scale already in *scale (nullable for None/BF16: a plain cast).
void weight_quantize_scaled(Context& ctx, bf16* out, const QuantScale* scale, const float* w, size_t n,
                            WeightQuant q, float soft_k);
// counts[0..2] += number of hard codes -1, 0, +1 at *scale (ternary and binary; others add nothing).
void weight_code_counts(Context& ctx, int64_t* counts, const float* w, size_t n, WeightQuant q,
                        const QuantScale* scale);
// Ops::weight_quantize_many's job. weight_quantize_many does the ternary jobs with their scale and the
// plain casts (q None, no scale) in three launches per 64 tensors, the same bits as the per-tensor
// calls; many_fast_kind(job) == 0 marks the others, which the caller runs per tensor.
struct ManyQuantJob {
  const float* w = nullptr;
  size_t n = 0;
  WeightQuant q = WeightQuant::None;
  QuantScale* scale = nullptr;
  bool with_scale = false, clamped = false;
  bf16* out = nullptr;
  float soft_k = 0.0f;
};
int many_fast_kind(const ManyQuantJob& j);
void weight_quantize_many(Context& ctx, const ManyQuantJob* jobs, size_t njobs, int64_t* counts);
// Both in one call: computes the scale of w (absmean for ternary, mean and mean |w - mean| for binary, max |w| for int8)
// into *scale, then writes the effective weight out = quantize(w) as bf16 in one more pass. soft_k > 0:
// soft ternary / binary. counts (nullable): counts[0..2] += number of hard codes -1, 0, +1.
void weight_quantize(Context& ctx, bf16* out, QuantScale* scale, int64_t* counts, const float* w, size_t n,
                     WeightQuant q, float soft_k);

// ---- 3. RMSNorm (QK-norm is the same kernel with C = head_dim) ----
// out = x * rstd * w (bf16), rstd[N] f32. out_q (nullable): per-row absmax int8 quantization of out
// (computed from the f32 value), written as its effective value q/s in bf16, and, where `codes` asks, as
// codes and row factors (Int8Rows).
void rmsnorm_forward(Context& ctx, bf16* out, bf16* out_q, float* rstd, const bf16* x, const float* w, int N, int C,
                     float eps, Int8Rows codes = {});
// dx += d/dx (bf16, accumulated in f32 then rounded), dw += d/dw (f32; summed over rows in a fixed
// order: the result does not depend on scheduling). Rows of C <= 1024 (C % 8 == 0, 16-byte aligned) are held
// in registers by lane groups; rows_by_block gives them the wider rows' kernel instead (a block a row, the
// next row's loads issued before this row's block sum; CudaOps chooses it for rows of 512 and more).
void rmsnorm_backward(Context& ctx, bf16* dx, float* dw, const bf16* dout, const bf16* x, const float* w,
                      const float* rstd, int N, int C, bool rows_by_block = false);
// Per-row absmax int8 activation quantization on its own (out = q/s, bf16); may run in place.
void act_quant_int8(Context& ctx, bf16* out, const bf16* x, int N, int C, Int8Rows codes = {});
// QK-norm and RoPE fused (head_dim a power of two in [16, 256], 16-byte aligned rows): out = rope(x *
// rstd * w) over the [B, T, H, hd] rows, rotating the f32 normalised values (one bf16 rounding);
// the backward takes the gradient of the rotated output, rotates it back in registers and
// OVERWRITES dx (dw accumulates), so neither a zeroing pass nor a separate RoPE pass is needed.
bool qk_norm_rope_fusable(int hd);
void qk_norm_rope_forward(Context& ctx, bf16* out, float* rstd, const bf16* x, const float* w, const float* cos,
                          const float* sin, int B, int T, int H, int hd, float eps);
// ld_dx: dx's token rows (H heads of hd) are ld_dx elements apart (a multiple of 8; 0: H * hd).
void qk_norm_rope_backward(Context& ctx, bf16* dx, float* dw, const bf16* dout, const bf16* x, const float* w,
                           const float* rstd, const float* cos, const float* sin, int B, int T, int H, int hd,
                           int ld_dx = 0);

// ---- 4. flash attention: causal, GQA (H % KV == 0), scale 1/sqrt(hd); tensor-core kernels for head_dim
// 64 and 128, a warp-per-row kernel for any other head_dim up to 256 (attention_generic.cuh) ----
// Generations of the tensor-core kernels, all kept selectable and tested, chosen by measurement
// (docs/benchmarks.md): V2 (cp.async double buffering, ldmatrix, 128-row tiles at hd 64); V1 (the
// first ones); V3 (V2's forward; the backward's dK/dV pass writes dS once and the dQ pass is dQ = dS K
// instead of recomputing S and dP: faster with attention dropout, slower without); V4 (Hopper's
// warpgroup MMA at hd 64 where attention_wgmma_available(): without dropout a TMA-fed, warp-specialised
// forward (1.46x V2's) and dK/dV pass (with V2's dQ pass: 1.15x V2's backward), with dropout V3's
// backward with its dK/dV pass on wgmma; V2's forward and V3's backward elsewhere). Auto, the default:
// V4's forward; V3's backward with attention dropout, else V4's where its dK/dV pass runs, else V2's. The process default is $ONEBIT_CUDA_ATTENTION, read once:
// attention_kernels_from(getenv(...)).
enum class AttentionKernels { V1, V2, V3, V4, Auto };
// "v1".."v4" -> V1..V4, "auto", unset or empty -> Auto; anything else is an error naming
// ONEBIT_CUDA_ATTENTION.
AttentionKernels attention_kernels_from(const char* value);
AttentionKernels default_attention_kernels();
const char* attention_kernels_name(AttentionKernels k);  // "v1" .. "v4", "auto"
// Whether V4's wgmma kernels can run: the build holds sm_90a code (CMAKE_CUDA_ARCHITECTURES with 90a,
// the default) and the device is compute capability 9.0.
bool attention_wgmma_available();
// q/o[B,T,H,hd], k/v[B,T,KV,hd] bf16; lse[B,H,T] f32 (natural-log log-sum-exp of the scaled scores).
// Attention dropout p in [0, 1) with the shared mask (kernels.h Ops::attention_forward); p = 0: none.
// `kernels` picks the generation for head_dim 64 and 128; other head dims take the generic kernels.
void attention_forward(Context& ctx, bf16* o, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T,
                       int H, int KV, int hd, float p, uint64_t seed,
                       AttentionKernels kernels = default_attention_kernels());
// Overwrites dq, dk, dv. Deterministic (no atomics): dk/dv and dq are separate passes (v3: dQ from the
// dS the dK/dV pass wrote to the context's scratch). p, seed: the forward's. ld_dv: dv's token rows are
// ld_dv elements apart (0: KV * hd, contiguous; at head_dim 64 / 128 a multiple of 8), so dv can be a
// column block of the fused Q/K/V gradient.
void attention_backward(Context& ctx, bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,
                        const bf16* v, const bf16* o, const float* lse, int B, int T, int H, int KV, int hd, float p,
                        uint64_t seed, AttentionKernels kernels = default_attention_kernels(), int ld_dv = 0);

// ---- 5. fused cross-entropy ----
// logits[N,V] bf16: losses[N] = lse - logit[target] (f32; 0 where target < 0); if want_grad, logits
// are overwritten by dscale * (softmax - onehot) (zero rows where target < 0). loss_sum (nullable):
// *loss_sum = sum of losses (f32, fixed-order reduction). targets are device int32.
void cross_entropy(Context& ctx, bf16* logits, float* losses, float* loss_sum, const int32_t* targets, int N, int V,
                   float dscale, bool want_grad);
// The LM head and the loss together, chunk_rows rows at a time so only a [chunk_rows, V] bf16 logits
// buffer exists: logits = hidden Wᵀ, loss, dhidden = dlogits W (overwrites), dW += dlogitsᵀ hidden.
// hidden[N,C], W[V,C] bf16; dW[V,C] f32 (nullable with dhidden when !want_grad).
void lm_head_cross_entropy(Context& ctx, float* losses, float* loss_sum, bf16* dhidden, float* dW,
                           const bf16* hidden, const bf16* W, const int32_t* targets, int N, int C, int V,
                           float dscale, bool want_grad, int chunk_rows);

// ---- 6. elementwise ----
// RoPE (rotate_half) in place on x[B,T,H,hd] with f32 cos/sin[T, hd/2]; inverse: the backward.
void rope(Context& ctx, bf16* x, const float* cos, const float* sin, int B, int T, int H, int hd, bool inverse);
void gated_act_forward(Context& ctx, bf16* out, const bf16* gate, const bf16* up, size_t n, GatedAct act);
// The gated activation of [N, C] rows with the per-row absmax int8 quantization of its f32 value in one
// pass: out_q = quant(act(gate) * up); out (nullable, or equal to out_q) also gets the unquantized
// value. Rows of C % 8 == 0 up to 16384 wide, 16-byte aligned: returns false (nothing launched) otherwise.
bool gated_act_quant_forward(Context& ctx, bf16* out, bf16* out_q, const bf16* gate, const bf16* up, int N, int C,
                             GatedAct act, Int8Rows codes = {});
void gated_act_backward(Context& ctx, bf16* dgate, bf16* dup, const bf16* dout, const bf16* gate, const bf16* up,
                        size_t n, GatedAct act);
// The same over [N, C] rows with dgate's and dup's rows ld elements apart (dout, gate, up contiguous):
// the two column blocks of the fused gate/up gradient. Same values as gated_act_backward.
void gated_act_backward_rows(Context& ctx, bf16* dgate, bf16* dup, int ld, const bf16* dout, const bf16* gate,
                             const bf16* up, int N, int C, GatedAct act);
// The MLP's gated activation and sub-layer norm in one pass each way (rows of C % 8 == 0 up to 4096, 16-byte
// aligned: sub_norm_fusable; null pointers are not checked). The forward: rmsnorm_forward(out, out_q, rstd,
// act(gate) * up, w, ...) without storing the product (the backward recomputes it), up to the f32 order of the
// row's sum of squares.
bool sub_norm_fusable(int N, int C, std::initializer_list<const void*> rows);
void gated_sub_norm_forward(Context& ctx, bf16* out, bf16* out_q, float* rstd, const bf16* gate, const bf16* up,
                            const float* w, int N, int C, float eps, GatedAct act, Int8Rows codes = {});
// The MLP's sub-layer norm backward followed by the gated activation's backward, in one pass: the same
// values as zeroing dn, rmsnorm_backward(dn, dw, dout, act(gate) * up, w, rstd) and
// gated_act_backward_rows(dgate, dup, ld, dn, gate, up) up to the f32 order of the row sums (the norm's input
// is recomputed from gate and up as gated_act_forward rounds it, so it is not an argument). dw accumulates;
// dgate, dup must not overlap dout. Rows of C % 8 == 0 up to 4096, ld % 8 == 0, 16-byte aligned: returns
// false (nothing launched) otherwise.
bool sub_norm_gated_backward(Context& ctx, bf16* dgate, bf16* dup, int ld, float* dw, const bf16* dout, const float* w,
                             const float* rstd, const bf16* gate, const bf16* up, int N, int C, GatedAct act);
// out = x + scale * dropout(y), the mask from kernels::dropout_factor(seed, i, p) (same as the CPU).
void residual_forward(Context& ctx, bf16* out, const bf16* x, const bf16* y, float scale, float p, uint64_t seed,
                      size_t n);
// dy = scale * mask * dout (overwrites dy).
void residual_backward(Context& ctx, bf16* dy, const bf16* dout, float scale, float p, uint64_t seed, size_t n);

// ---- 7. what CudaOps needs besides (ops_support.cu) ----
// out[n,:] = table[tokens[n],:] (a token outside [0, V) poisons its row with NaN; the host checks ids).
void embedding_forward(Context& ctx, bf16* out, const int32_t* tokens, const bf16* table, int N, int C, int V);
// dtable[tokens[n],:] += dout[n,:], deterministic: the rows of each token summed in position order.
void embedding_backward(Context& ctx, float* dtable, const bf16* dout, const int32_t* tokens, int N, int C);
void axpy(Context& ctx, float* y, float a, const float* x, size_t n);      // y += a x
void scale(Context& ctx, bf16* y, float a, const bf16* x, size_t n);      // y = a x
// *norm_sq = sum g^2 in f64, in a fixed order (the same bits on every run).
void grad_norm_sq(Context& ctx, double* norm_sq, const float* g, size_t n);
// *factor = max_norm / (norm + 1e-6) when the norm is finite and above max_norm > 0, else exactly 1.
void clip_factor(Context& ctx, float* factor, const double* norm_sq, double max_norm);
// Ops::adamw_step over the ranges of one flat arena (kernels.h), gradients read as g * *clip.
void adamw_step(Context& ctx, float* params, const float* grads, float* m, float* v, const AdamWRange* ranges,
                size_t num_ranges, const AdamWHyper& h, const float* clip);
void add_to_f64(Context& ctx, double* dst, const float* src);  // *dst += *src

}  // namespace onebit::kernels::cuda
