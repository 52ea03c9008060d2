#pragma once
// The runtime's inner kernels, one table per instruction set, chosen at run time in one binary (CPUID
// on x86-64, getauxval(AT_HWCAP) on AArch64; the SIMD files are compiled with their own target flags,
// nothing needs -march=native):
//   scalar      the obvious loops, the reference every other path is tested against
//   avx2        AVX2 + FMA + F16C (maddubs on unsigned codes, llama.cpp TQ2_0 style)       x86-64
//   avx512vnni  AVX-512 BW/VL + VNNI (vpdpbusd on two blocks per 512-bit register)          x86-64
//   amx         avx512vnni's table, and prefill's products of 16+ tokens on the AMX-INT8 tile
//               units (gemm_amx.h; Sapphire Rapids and later, with Linux's permission)      x86-64
//   neon        AdvSIMD + dotprod (vdotq_s32 on the codes, ARMv8.2-A and later)             AArch64
// ONEBIT_INFER_KERNEL=scalar|avx2|avx512vnni|amx|neon selects a path explicitly (tests run every path the
// machine supports).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace onebit::infer {

enum class KernelPath { Scalar, Avx2, Avx512Vnni, Amx, Neon };
const char* to_string(KernelPath p);
bool path_supported(KernelPath p);
KernelPath best_path();
std::vector<KernelPath> supported_paths();
// Error naming `where` unless `name` is a path this machine runs.
KernelPath path_from_string(const std::string& name, const std::string& where);
// ONEBIT_INFER_KERNEL when set (an unknown or unsupported value is an error naming it), else best_path().
KernelPath default_path();

// out[j] = sum_k code(w, k) * x[j * x_stride + k] over nblocks blocks of the format, for j < nx
// (1 <= nx <= DotKernels::max_rows activation rows share one decode of the weights). xsum[j] is the sum of row j of x
// over the same span (the kernels store codes with an offset and take it back out with it).
using DotFn = void (*)(const uint8_t* w, int nblocks, const int8_t* x, size_t x_stride, const int32_t* xsum, int nx,
                       int32_t* out);
// Decode (one token): out[r] = sum_k code(w + r * row_bytes, k) * x[k] for r < 4, four weight rows
// sharing each activation load and one call's overhead. nullptr where a path has none (matmul then
// calls DotFn per row). xsum is the sum of x (the stored codes' offset).
using Dot4RowsFn = void (*)(const uint8_t* w, size_t row_bytes, int nblocks, const int8_t* x, int32_t xsum,
                            int32_t* out);
// out[j] = sum_k w[k] * x[j * x_stride + k], k < n (f32 or bf16 weights, f32 activations), nx <= 4.
using DotF32Fn = void (*)(const float* w, int n, const float* x, size_t x_stride, int nx, float* out);
using DotBf16Fn = void (*)(const uint16_t* w, int n, const float* x, size_t x_stride, int nx, float* out);
// One head of attention over n cached positions (k, v: n rows of hd values, f16 bits or f32):
// out = sum_j softmax_j(scale * q.k_j) v_j; scores is scratch for n floats.
using AttendF16Fn = void (*)(const float* q, const uint16_t* k, const uint16_t* v, int n, int hd, float scale,
                             float* scores, float* out);
using AttendF32Fn = void (*)(const float* q, const float* k, const float* v, int n, int hd, float scale,
                             float* scores, float* out);
// The same over an int8 cache: row j of k is k_codes[j] * k_scales[j], likewise v.
using AttendI8Fn = void (*)(const float* q, const int8_t* k, const float* k_scales, const int8_t* v,
                            const float* v_scales, int n, int hd, float scale, float* scores, float* out);

struct DotKernels {
  KernelPath path;
  int max_rows;  // activation rows one integer dot call takes (registers: 4 on AVX2, 8 on AVX-512 and NEON)
  DotFn ternary2, ternary1_6, binary1, int8, q6;
  Dot4RowsFn ternary2_4rows;
  DotF32Fn f32;
  DotBf16Fn bf16;
  AttendF16Fn attend_f16;
  AttendF32Fn attend_f32;
  AttendI8Fn attend_i8;
};

const DotKernels& dot_kernels(KernelPath p);

// The tables of each file (dot_scalar.cpp, dot_avx2.cpp, dot_avx512.cpp; dot_neon.cpp, built on
// AArch64 only).
const DotKernels& scalar_kernels();
const DotKernels& avx2_kernels();
const DotKernels& avx512vnni_kernels();
// avx512vnni_kernels() is one of these two, by CPU vendor: the 2-bit decode GEMV with each digit shifted
// down and masked, or masked in place (dot_avx512.cpp ternary2_4rows_masked: the same integers, one
// vector operation fewer per digit). Tests and benchmarks run both.
const DotKernels& avx512vnni_shifted_kernels();
const DotKernels& avx512vnni_masked_kernels();
const DotKernels& neon_kernels();

}  // namespace onebit::infer
