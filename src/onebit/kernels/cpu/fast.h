#pragma once
// The fast f32 CPU kernels: work split across the thread pool (thread_pool.h), loops written for gcc
// auto-vectorization, OpenBLAS single-threaded inside each block. Same contracts as Ops<float>.
#include <cstddef>
#include <cstdint>

#include "onebit/kernels/kernels.h"

namespace onebit::kernels::cpu {

// Threads used by every fast kernel; OpenBLAS itself is kept at one thread so that only the pool's
// threads ever run (two pools spinning on two cores would fight).
void set_threads(int n);
int threads();
// Elementwise work below this many elements per chunk is not worth handing to another thread.
inline constexpr int64_t kMinChunk = 1 << 14;

void gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
          float beta, float* C, int ldc);
// Single-threaded gemm, for use inside a pool item.
void gemm_serial(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
                 float beta, float* C, int ldc);

void axpy(float* y, float a, const float* x, size_t n);
void embedding_forward(float* out, const int32_t* tokens, const float* table, int N, int C, int vocab);
void embedding_backward(float* dtable, const float* dout, const int32_t* tokens, int N, int C);

void rmsnorm_forward(float* out, float* out_q, float* rstd, const float* x, const float* w, int N, int C, float eps);
void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, const float* rstd, int N,
                      int C);
void act_quant_int8(float* out, const float* x, int N, int C);

QuantScale weight_quant_scale(const float* w, size_t n, WeightQuant q);
QuantScale ternary_scale_clamped(const float* w, size_t n);  // max(mean|W|, 1e-5): transformers' BitNet
void weight_quantize(float* out, const float* w, size_t n, WeightQuant q, QuantScale s, float k);
void weight_code_counts(const float* w, size_t n, WeightQuant q, QuantScale s, int64_t counts[3]);

void rope(float* x, const float* cos, const float* sin, int B, int T, int H, int hd, bool inverse);

// Dropout on the probabilities when p > 0 (kernels.h attention_forward).
void attention_forward(float* y, float* lse, const float* q, const float* k, const float* v, int B, int T, int H,
                       int KV, int hd, float p, uint64_t seed);
void attention_backward(float* dq, float* dk, float* dv, const float* dy, const float* q, const float* k,
                        const float* v, const float* y, const float* lse, int B, int T, int H, int KV, int hd, float p,
                        uint64_t seed);

void gated_act_forward(float* out, const float* gate, const float* up, size_t n, GatedAct act);
void gated_act_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, size_t n,
                        GatedAct act);

void residual_forward(float* out, const float* x, const float* y, float scale, float p, uint64_t seed, size_t n);
void residual_backward(float* dy, const float* dout, float scale, float p, uint64_t seed, size_t n);

// Returns the sum of the losses (f64, row order).
double cross_entropy(float* logits, float* losses, const int32_t* targets, int N, int V, float dscale, bool want_grad);

// fast_optim.cpp: sum g^2 in f64 over fixed blocks (thread-count independent), torch's clip factor
// (1 when not clipping), AdamW over arena ranges reading grads * *clip.
double grad_norm_sq(const float* g, size_t n);
float clip_factor(double norm_sq, double max_norm);
void adamw_step(float* p, const float* g, float* m, float* v, const AdamWRange* ranges, size_t num_ranges,
                const AdamWHyper& h, const float* clip);

}  // namespace onebit::kernels::cpu
