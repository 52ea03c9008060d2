#pragma once
// The v2 flash-attention kernels for head_dim 64 and 128 (attention_v2_forward.cu,
// attention_v2_backward.cu), called by attention_forward / attention_backward when
// AttentionKernels::V2 is selected. Arguments as there; the caller has checked shape and alignment.
#include "onebit/kernels/cuda/common.cuh"

namespace onebit::kernels::cuda {

void attention_forward_v2(Context& ctx, bf16* o, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int T,
                          int H, int KV, int hd, float p, uint64_t seed);
// D[B,H,T] = rowsum(dout ∘ o), as attention_backward's delta kernel writes it. tma_dkdv: the dK/dV pass is
// v4's (attention_dkdv_tma; the caller has checked attention_dkdv_tma_runs), the dQ pass v2's.
void attention_backward_v2(Context& ctx, bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k,
                           const bf16* v, const float* lse, const float* D, int B, int T, int H, int KV, int hd,
                           float p, uint64_t seed, int ld_dv, bool tma_dkdv = false);

}  // namespace onebit::kernels::cuda
