// Which flash-attention kernels run (cuda_kernels.h AttentionKernels): $ONEBIT_CUDA_ATTENTION, so the
// v1 kernels stay selectable at run time for comparison and as a fallback.
#include <cstdlib>
#include <cstring>

#include "onebit/kernels/cuda/common.cuh"

namespace onebit::kernels::cuda {

AttentionKernels attention_kernels_from(const char* value) {
  if (!value || !*value || std::strcmp(value, "v2") == 0) return AttentionKernels::V2;
  if (std::strcmp(value, "v1") == 0) return AttentionKernels::V1;
  fail("ONEBIT_CUDA_ATTENTION must be v1 or v2 (got \"", printable(value, 40), "\")");
}

AttentionKernels default_attention_kernels() {
  static const AttentionKernels k = attention_kernels_from(std::getenv("ONEBIT_CUDA_ATTENTION"));
  return k;
}

const char* attention_kernels_name(AttentionKernels k) { return k == AttentionKernels::V1 ? "v1" : "v2"; }

}  // namespace onebit::kernels::cuda
