#pragma once
// Helpers shared by the Network<T> implementation files (not part of any interface).
#include "onebit/kernels/kernels.h"
#include "onebit/model/config.h"

namespace onebit::model::detail {

inline bool takes_int8_input(kernels::WeightQuant q) {
  return q == kernels::WeightQuant::Ternary || q == kernels::WeightQuant::Binary || q == kernels::WeightQuant::Int8;
}

inline kernels::GatedAct to_gated(HiddenAct a) {
  switch (a) {
    case HiddenAct::SwiGLU:
      return kernels::GatedAct::SwiGLU;
    case HiddenAct::ReLU2:
      return kernels::GatedAct::ReLU2;
    case HiddenAct::GELU:
      return kernels::GatedAct::GELU;
  }
  return kernels::GatedAct::SwiGLU;
}

// Layer indices of the 7 linears of a block, in lin_[l] order.
enum { kQ, kK, kV, kO, kGate, kUp, kDown };
inline constexpr int kEmbedId = -1, kHeadId = -2;

// The dropout sites of a layer (config "dropout" applies to all of them and to the embedding output,
// as nanoGPT's dropout does): Network::dropout_seed(layer, site) gives each its own mask seed.
enum DropoutSite { kDropAttnResidual, kDropMlpResidual, kDropAttnProbs, kNumDropoutSites };

}  // namespace onebit::model::detail
