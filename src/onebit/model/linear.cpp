#include "onebit/model/linear.h"

#include <algorithm>

namespace onebit::model {

template <typename T>
void linear_forward(kernels::Ops<T>& ops, const T* x, const T* w_eff, int N, int in, int out, T* y,
                    const kernels::PackedTernary* packed) {
  if (packed) {
    ops.ternary_linear_forward(y, x, N, *packed);
    return;
  }
  ops.gemm(false, true, N, out, in, T(1), x, in, w_eff, in, T(0), y, out);
}

template <typename T>
void linear_backward(kernels::Ops<T>& ops, const T* dy, int out, const T* w_eff, const T* x, int in, int N, T* dx,
                     T dx_beta, T* dw) {
  ops.gemm(false, false, N, in, out, T(1), dy, out, w_eff, in, dx_beta, dx, in);
  ops.gemm(true, false, out, in, N, T(1), dy, out, x, in, T(1), dw, in);
}

template <typename T>
void lm_head_loss(kernels::Ops<T>& ops, const T* x, const T* w_eff, const int32_t* targets, int N, int d, int V,
                  int chunk_rows, T dscale, bool want_grad, T* logit_chunk, T* row_loss, double* loss_sum, T* dx,
                  T* dw, const kernels::PackedTernary* packed) {
  for (int r0 = 0; r0 < N; r0 += chunk_rows) {
    const int R = std::min(chunk_rows, N - r0);
    linear_forward(ops, x + (size_t)r0 * d, w_eff, R, d, V, logit_chunk, packed);
    ops.cross_entropy(logit_chunk, row_loss + r0, loss_sum, targets + r0, R, V, dscale, want_grad);
    if (want_grad)  // logit_chunk now holds dL/dlogits for these rows
      linear_backward(ops, logit_chunk, V, w_eff, x + (size_t)r0 * d, d, R, dx + (size_t)r0 * d, T(0), dw);
  }
}

#define ONEBIT_INSTANTIATE_LINEAR(T)                                                                               \
  template void linear_forward<T>(kernels::Ops<T>&, const T*, const T*, int, int, int, T*,                           \
                                  const kernels::PackedTernary*);                      \
  template void linear_backward<T>(kernels::Ops<T>&, const T*, int, const T*, const T*, int, int, T*, T, T*);      \
  template void lm_head_loss<T>(kernels::Ops<T>&, const T*, const T*, const int32_t*, int, int, int, int, T, bool,   \
                                T*, T*, double*, T*, T*, const kernels::PackedTernary*);
ONEBIT_INSTANTIATE_LINEAR(float)
ONEBIT_INSTANTIATE_LINEAR(double)
#undef ONEBIT_INSTANTIATE_LINEAR

}  // namespace onebit::model
