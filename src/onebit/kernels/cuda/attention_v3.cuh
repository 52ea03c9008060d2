#pragma once
// The v3 backward and the v4 kernels for head_dim 64 and 128 (attention_v3_backward.cu,
// attention_v4_forward.cu), called by attention_forward / attention_backward when AttentionKernels::V3
// or V4 is selected. Arguments as there; the caller has checked shape and alignment.
#include <cstddef>

#include "onebit/kernels/cuda/common.cuh"

namespace onebit::kernels::cuda {

// Hopper's wgmma at head_dim 64 where attention_wgmma_available(), else v2's kernel.
void attention_forward_v4(Context& ctx, bf16* o, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T,
                          int H, int KV, int hd, float p, uint64_t seed);
// The v4 dK/dV pass (attention_v4_dkdv.cu: TMA and wgmma, persistent): whether it runs for this call (head_dim
// 64, no dropout, T % 4 == 0 and lse 16-byte aligned for the TMA rows of lse and D, Hopper), and the pass
// itself on `stream` (D 16-byte aligned); the dQ pass beside it is v4's too (attention_v4_dq.cu, the same
// conditions; attention_backward_v2 with tma_dkdv runs both).
bool attention_dkdv_tma_runs(int hd, float p, int T, const float* lse);
void attention_dkdv_tma(cudaStream_t stream, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,
                        const bf16* v, const float* lse, const float* D, int B, int T, int H, int KV, int ld_dv);
void attention_dq_tma(cudaStream_t stream, bf16* dq, const bf16* dout, const bf16* q, const bf16* k, const bf16* v,
                      const float* lse, const float* D, int B, int T, int H, int KV);
// Bytes of the dS buffer one batch row needs (H heads, sequence length T).
size_t attention_v3_ds_bytes(int T, int H);
// D[B,H,T] = rowsum(dout ∘ o), as attention_backward's delta kernel writes it; ds: a buffer of
// chunk x attention_v3_ds_bytes(T, H) bytes; the batch runs in chunks of `chunk` rows. wgmma (v4): the
// dK/dV pass on Hopper's warpgroup MMA at head_dim 64 where attention_wgmma_available().
void attention_backward_v3(Context& ctx, bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,
                           const bf16* v, const float* lse, const float* D, bf16* ds, int chunk, int B, int T, int H,
                           int KV, int hd, float p, uint64_t seed, bool wgmma, int ld_dv);

}  // namespace onebit::kernels::cuda
