#pragma once
// The gated MLP activations' value and derivative (reference.h's formulas in f32), shared by the
// elementwise kernels (elementwise.cu) and the fused sub-layer-norm + gated backward (rmsnorm.cu).
#include "onebit/kernels/cuda/common.cuh"

namespace onebit::kernels::cuda {

// f = act(g), df = act'(g).
__device__ inline void gated_value(float g, GatedAct act, float& f, float& df) {
  switch (act) {
    case GatedAct::SwiGLU: {
      // __frcp_rn is 1.0f / x (both the correctly rounded reciprocal) without the general division's
      // sequence: the same bits, fewer instructions in the gated kernels, which issue-bound passes run.
      const float sg = __frcp_rn(1.0f + expf(-g));
      f = g * sg;
      df = sg * (1.0f + g * (1.0f - sg));
      return;
    }
    case GatedAct::ReLU2: {
      const float r = g > 0.0f ? g : 0.0f;
      f = r * r;
      df = 2.0f * r;
      return;
    }
    case GatedAct::GELU: {
      const float c = 0.7978845608028654f, a = 0.044715f;
      const float th = tanhf(c * (g + a * g * g * g));
      f = 0.5f * g * (1.0f + th);
      df = 0.5f * (1.0f + th) + 0.5f * g * (1.0f - th * th) * c * (1.0f + 3.0f * a * g * g);
      return;
    }
  }
}

}  // namespace onebit::kernels::cuda
