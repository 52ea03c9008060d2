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

CUtensorMap tile_map(const void* base, CUtensorMapDataType type, uint64_t rows, uint64_t cols, uint64_t row_bytes,
                     uint32_t box_rows, uint32_t box_cols, CUtensorMapSwizzle swizzle) {
  CUtensorMap map;
  const cuuint64_t dims[2] = {cols, rows};
  const cuuint64_t strides[1] = {row_bytes};
  const cuuint32_t box[2] = {box_cols, box_rows};
  const cuuint32_t steps[2] = {1, 1};
  const CUresult r = encode_tiled()(&map, type, 2, const_cast<void*>(base), dims, strides, box, steps,
                                    CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                    CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  OB_CHECK(r == CUDA_SUCCESS, "CUDA: cuTensorMapEncodeTiled failed (error ", (int)r, ") for a ", rows, " x ", cols,
           " matrix, ", row_bytes, "-byte rows, ", box_rows, " x ", box_cols, " boxes");
  return map;
}

}  // namespace

CUtensorMap swizzled_tile_map(const void* base, CUtensorMapDataType type, uint64_t rows, uint64_t cols,
                              uint64_t row_bytes, uint32_t box_rows, uint32_t box_cols) {
  return tile_map(base, type, rows, cols, row_bytes, box_rows, box_cols, CU_TENSOR_MAP_SWIZZLE_128B);
}

CUtensorMap plain_tile_map(const void* base, CUtensorMapDataType type, uint64_t rows, uint64_t cols,
                           uint64_t row_bytes, uint32_t box_rows, uint32_t box_cols) {
  return tile_map(base, type, rows, cols, row_bytes, box_rows, box_cols, CU_TENSOR_MAP_SWIZZLE_NONE);
}

CUtensorMap swizzled_head_map(const void* base, int B, int T, int heads, uint32_t box_rows) {
  CUtensorMap map;
  constexpr uint64_t kRowBytes = 64 * 2;  // one head's 64 bf16: one 128-byte swizzle row
  const cuuint64_t dims[4] = {64, (cuuint64_t)heads, (cuuint64_t)T, (cuuint64_t)B};
  const cuuint64_t strides[3] = {kRowBytes, kRowBytes * heads, kRowBytes * heads * T};  // bytes, dims 1..3
  const cuuint32_t box[4] = {64, 1, box_rows, 1};
  const cuuint32_t steps[4] = {1, 1, 1, 1};
  const CUresult r = encode_tiled()(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 4, const_cast<void*>(base), dims, strides,
                                    box, steps, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                    CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  OB_CHECK(r == CUDA_SUCCESS, "CUDA: cuTensorMapEncodeTiled failed (error ", (int)r, ") for heads [", B, ", ", T,
           ", ", heads, ", 64], ", box_rows, "-position boxes");
  return map;
}

}  // namespace onebit::kernels::cuda
