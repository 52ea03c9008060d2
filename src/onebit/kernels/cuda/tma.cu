// Tensor maps for TMA copies (tma.cuh). cuTensorMapEncodeTiled is a driver API function: it is reached
// through the runtime's entry-point query, so the backend links the runtime only (as elsewhere) and needs
// no libcuda at build time, where CI has no driver.
#include <cudaTypedefs.h>

#include "onebit/kernels/cuda/common.cuh"
#include "onebit/kernels/cuda/tma.cuh"

namespace onebit::kernels::cuda {
namespace {

PFN_cuTensorMapEncodeTiled_v12000 encode_tiled() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult found{};
    OB_CUDA(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &found));
    OB_CHECK(found == cudaDriverEntryPointSuccess && p, "CUDA: the driver has no cuTensorMapEncodeTiled (TMA)");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
  }();
  return fn;
}

}  // namespace

CUtensorMap swizzled_tile_map(const void* base, CUtensorMapDataType type, uint64_t rows, uint64_t cols,
                              uint64_t row_bytes, uint32_t box_rows, uint32_t box_cols) {
  CUtensorMap map;
  const cuuint64_t dims[2] = {cols, rows};
  const cuuint64_t strides[1] = {row_bytes};
  const cuuint32_t box[2] = {box_cols, box_rows};
  const cuuint32_t steps[2] = {1, 1};
  const CUresult r = encode_tiled()(&map, type, 2, const_cast<void*>(base), dims, strides, box, steps,
                                    CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                    CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  OB_CHECK(r == CUDA_SUCCESS, "CUDA: cuTensorMapEncodeTiled failed (error ", (int)r, ") for a ", rows, " x ", cols,
           " matrix, ", row_bytes, "-byte rows, ", box_rows, " x ", box_cols, " boxes");
  return map;
}

}  // namespace onebit::kernels::cuda
