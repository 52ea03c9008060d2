#pragma once
// Causal GQA attention for any head_dim up to 256 without tensor cores: the path for head dims the
// flash kernels do not specialise (64 and 128 do). One warp per query row (forward, dq) or per key
// row and kv head (dk, dv), online softmax in f32, no atomics: deterministic. O(T^2 hd) per head, so
// it is meant for the small test and toy models that use such head dims. Attention dropout (p > 0)
// as the flash kernels: kernels::dropout_factor on index ((b*H + h)*T + query)*T + key.
#include "onebit/kernels/cuda/common.cuh"

namespace onebit::kernels::cuda {

inline constexpr int kGenericMaxHeadDim = 256;

void attention_forward_generic(Context& ctx, bf16* o, float* lse, const bf16* q, const bf16* k, const bf16* v, int B,
                               int T, int H, int KV, int hd, float p, uint64_t seed);
// D[B,H,T] = rowsum(dout * o), as the flash backward's delta kernel writes it.
void attention_backward_generic(Context& ctx, bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q,
                                const bf16* k, const bf16* v, const float* lse, const float* D, int B, int T, int H,
                                int KV, int hd, float p, uint64_t seed, int ld_dv);

}  // namespace onebit::kernels::cuda
