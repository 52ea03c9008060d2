// Which flash-attention kernels run (cuda_kernels.h AttentionKernels): $ONEBIT_CUDA_ATTENTION, so the
// v1 kernels stay selectable at run time for comparison and as a fallback.
#include <cstdlib>
#include <cstring>

#include "onebit/kernels/cuda/common.cuh"

namespace onebit::kernels::cuda {

AttentionKernels attention_kernels_from(const char* value) {
  if (!value || !*value || std::strcmp(value, "auto") == 0) return AttentionKernels::Auto;
  if (std::strcmp(value, "v2") == 0) return AttentionKernels::V2;
  if (std::strcmp(value, "v1") == 0) return AttentionKernels::V1;
  if (std::strcmp(value, "v3") == 0) return AttentionKernels::V3;
  if (std::strcmp(value, "v4") == 0) return AttentionKernels::V4;
  fail("ONEBIT_CUDA_ATTENTION must be auto, v1, v2, v3 or v4 (got \"", printable(value, 40), "\")");
}

bool attention_wgmma_available() {
#if defined(ONEBIT_CUDA_SM90A)
  static const bool ok = [] {
    int d = 0, major = 0, minor = 0;
    if (cudaGetDevice(&d) != cudaSuccess || cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, d) ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, d))
      return false;
    return major == 9 && minor == 0;  // sm_90a code runs on compute capability 9.0 alone
  }();
  return ok;
#else
  return false;  // no sm_90a code in this build
#endif
}

AttentionKernels default_attention_kernels() {
  static const AttentionKernels k = attention_kernels_from(std::getenv("ONEBIT_CUDA_ATTENTION"));
  return k;
}

const char* attention_kernels_name(AttentionKernels k) {
  switch (k) {
    case AttentionKernels::V1: return "v1";
    case AttentionKernels::V2: return "v2";
    case AttentionKernels::V3: return "v3";
    case AttentionKernels::V4: return "v4";
    case AttentionKernels::Auto: return "auto";
  }
  return "?";
}

}  // namespace onebit::kernels::cuda
