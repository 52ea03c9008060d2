#include "onebit/model/linear.h"

#include <algorithm>

namespace onebit::model {

template <typename T, typename A>
void linear_forward(kernels::Ops<T, A>& ops, const A* x, const A* w_eff, int N, int in, int out, A* y,
                    const kernels::PackedTernary* packed) {
  if (packed) {
    ops.ternary_linear_forward(y, x, N, *packed);
    return;
  }
  ops.gemm(false, true, N, out, in, T(1), x, in, w_eff, in, T(0), y, out);
}

template <typename T, typename A>
void linear_backward(kernels::Ops<T, A>& ops, const A* dy, int out, const A* w_eff, const A* x, int in, int N, A* dx,
                     T dx_beta, T* dw, const kernels::PackedTernary* packed) {
  if (packed && ops.ternary_linear_backward(dx, dx_beta, dw, dy, x, N, *packed)) return;
  ops.gemm(false, false, N, in, out, T(1), dy, out, w_eff, in, dx_beta, dx, in);
  ops.gemm_acc(true, false, out, in, N, T(1), dy, out, x, in, T(1), dw, in);
}

template <typename T, typename A>
void lm_head_loss(kernels::Ops<T, A>& ops, const A* x, const A* w_eff, const int32_t* targets, int N, int d, int V,
                  int chunk_rows, T dscale, bool want_grad, A* logit_chunk, T* row_loss, double* loss_sum, A* dx,
                  T* dw, const kernels::PackedTernary* packed) {
  for (int r0 = 0; r0 < N; r0 += chunk_rows) {
    const int R = std::min(chunk_rows, N - r0);
    linear_forward(ops, x + (size_t)r0 * d, w_eff, R, d, V, logit_chunk, packed);
    ops.cross_entropy(logit_chunk, row_loss + r0, loss_sum, targets + r0, R, V, dscale, want_grad);
    if (want_grad)  // logit_chunk now holds dL/dlogits for these rows
      linear_backward(ops, logit_chunk, V, w_eff, x + (size_t)r0 * d, d, R, dx + (size_t)r0 * d, T(0), dw, packed);
  }
}

#define ONEBIT_INSTANTIATE_LINEAR(T, A)                                                                         \
  template void linear_forward<T, A>(kernels::Ops<T, A>&, const A*, const A*, int, int, int, A*,                  \
                                     const kernels::PackedTernary*);                                              \
  template void linear_backward<T, A>(kernels::Ops<T, A>&, const A*, int, const A*, const A*, int, int, A*, T, T*, \
                                      const kernels::PackedTernary*);                                             \
  template void lm_head_loss<T, A>(kernels::Ops<T, A>&, const A*, const A*, const int32_t*, int, int, int, int, T,  \
                                   bool, A*, T*, double*, A*, T*, const kernels::PackedTernary*);
ONEBIT_INSTANTIATE_LINEAR(float, float)
ONEBIT_INSTANTIATE_LINEAR(double, double)
ONEBIT_INSTANTIATE_LINEAR(float, kernels::bf16)
#undef ONEBIT_INSTANTIATE_LINEAR

}  // namespace onebit::model
