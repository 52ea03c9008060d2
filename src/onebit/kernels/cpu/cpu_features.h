#pragma once
// Which AMX tile units this process may use: the CPUID bits and Linux's per-process permission for the
// 8 KiB tile data state, asked once. The one place that decides it, for training (bf16x3_gemm) and
// inference (infer/kernels/dot.cpp). ONEBIT_AMX=off in the environment turns every AMX path off (A/B
// timing); the callers then take their AVX-512 paths.

namespace onebit::kernels::cpu {

// CPUID leaf 7 sub-leaf 0, EDX bits 24 (AMX-TILE) and 25 (AMX-INT8) or 22 (AMX-BF16), the permission
// granted, and no ONEBIT_AMX=off. False on other architectures.
bool amx_int8_usable();
bool amx_bf16_usable();

}  // namespace onebit::kernels::cpu
