#pragma once
// The linear layers as Network runs them, as free functions so that tests check the very code the
// trainer runs (tests/model/linear_grad_test.cpp) rather than a copy of it.
// A BitLinear is one of these with quantized operands: x is the int8-quantized activation and W_eff
// the quantized weight; the backward uses the same W_eff and x, which is the straight-through estimator.
#include <cstdint>

#include "onebit/kernels/kernels.h"

namespace onebit::model {

// y[N,out] = x[N,in] · W_effᵀ (W_eff is [out,in], row-major like the checkpoint's weights). With
// `packed` (ops.pack_ternary of W_eff, Hard phase, x the int8-quantized activation) the backend's
// exact integer product runs instead of gemm.
// T is the backend's parameter type, A its activation type (kernels.h); x, W_eff and y are A.
template <typename T, typename A>
void linear_forward(kernels::Ops<T, A>& ops, const A* x, const A* w_eff, int N, int in, int out, A* y,
                    const kernels::PackedTernary* packed = nullptr);

// Backward of linear_forward: dx = dx_beta·dx + dy · W_eff (beta 0 overwrites, 1 adds a second
// consumer of x), dW += dyᵀ · x. Under the STE, W_eff's gradient is W's. With `packed` (the forward's;
// x the int8-quantized activation) the backend's ternary_linear_backward runs where it has one (same
// results to rounding level), else the two gemm calls.
template <typename T, typename A>
void linear_backward(kernels::Ops<T, A>& ops, const A* dy, int out, const A* w_eff, const A* x, int in, int N, A* dx,
                     T dx_beta, T* dw, const kernels::PackedTernary* packed = nullptr);

// The LM head fused with cross-entropy, in chunks of `chunk_rows` rows so that only [chunk_rows, V]
// logits exist at a time: logits = x · W_effᵀ, loss rows into row_loss[N], *loss_sum (one f64 in the
// backend's memory) += the summed loss, chunk by chunk; nothing is read back to the host.
// With want_grad, also dx[N,d] = dscale·dlogits · W_eff (overwritten) and dw[V,d] += dscale·dlogitsᵀ · x.
// logit_chunk holds chunk_rows·V scratch values; targets are int32 in the backend's memory. `packed` as
// for linear_forward (logits, and the backward where the backend has it).
template <typename T, typename A>
void lm_head_loss(kernels::Ops<T, A>& ops, const A* x, const A* w_eff, const int32_t* targets, int N, int d, int V,
                  int chunk_rows, T dscale, bool want_grad, A* logit_chunk, T* row_loss, double* loss_sum, A* dx,
                  T* dw, const kernels::PackedTernary* packed = nullptr);

}  // namespace onebit::model
