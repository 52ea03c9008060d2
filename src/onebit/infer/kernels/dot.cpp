#include "onebit/infer/kernels/dot.h"

#include <cstdlib>

#if defined(__aarch64__)
#include <sys/auxv.h>
#endif

#include "onebit/core/error.h"
#include "onebit/infer/kernels/gemm_amx.h"
#include "onebit/kernels/cpu/cpu_features.h"

namespace onebit::infer {

namespace {
constexpr KernelPath kAllPaths[] = {KernelPath::Scalar, KernelPath::Avx2, KernelPath::Avx512Vnni, KernelPath::Amx,
                                    KernelPath::Neon};
}  // namespace

const char* to_string(KernelPath p) {
  switch (p) {
    case KernelPath::Scalar:
      return "scalar";
    case KernelPath::Avx2:
      return "avx2";
    case KernelPath::Avx512Vnni:
      return "avx512vnni";
    case KernelPath::Amx:
      return "amx";
    case KernelPath::Neon:
      return "neon";
  }
  return "?";
}

bool path_supported(KernelPath p) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  switch (p) {
    case KernelPath::Scalar:
      return true;
    case KernelPath::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case KernelPath::Avx512Vnni:
      return path_supported(KernelPath::Avx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512vnni");
    case KernelPath::Amx:
      return path_supported(KernelPath::Avx512Vnni) && amx::usable();
    case KernelPath::Neon:
      return false;
  }
  return false;
#elif defined(__aarch64__)
  // AdvSIMD is part of every AArch64 CPU; the dot product instructions (ARMv8.2-A's optional, v8.4-A's
  // required FEAT_DotProd) are what the kernels need, and the kernel reports them to user space.
  return p == KernelPath::Scalar || (p == KernelPath::Neon && (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0);
#else
  return p == KernelPath::Scalar;
#endif
}

std::vector<KernelPath> supported_paths() {
  std::vector<KernelPath> out;
  for (KernelPath p : kAllPaths)
    if (path_supported(p)) out.push_back(p);
  return out;
}

KernelPath best_path() { return supported_paths().back(); }

KernelPath path_from_string(const std::string& name, const std::string& where) {
  for (KernelPath p : kAllPaths) {
    if (name != to_string(p)) continue;
    if (!path_supported(p)) fail(where, ": kernel path \"", name, "\" needs instructions this CPU does not have");
    return p;
  }
  fail(where, ": unknown kernel path \"", printable(name), "\" (scalar, avx2, avx512vnni, amx or neon)");
}

KernelPath default_path() {
  const char* env = std::getenv("ONEBIT_INFER_KERNEL");
  if (env && *env) return path_from_string(env, "ONEBIT_INFER_KERNEL");
  return best_path();
}

const DotKernels& dot_kernels(KernelPath p) {
  OB_CHECK(path_supported(p), "kernel path ", to_string(p), " is not supported on this CPU");
#if defined(__x86_64__)
  if (p == KernelPath::Avx512Vnni) return avx512vnni_kernels();
  if (p == KernelPath::Amx) {
    static const DotKernels k = [] {
      DotKernels t = avx512vnni_kernels();
      t.path = KernelPath::Amx;  // matmul() sends prefill's products to the tile units
      return t;
    }();
    return k;
  }
  if (p == KernelPath::Avx2) return avx2_kernels();
#elif defined(__aarch64__)
  if (p == KernelPath::Neon) return neon_kernels();
#endif
  return scalar_kernels();
}

#if defined(__x86_64__)
namespace amx {
// The CPUID bits, the kernel's permission and ONEBIT_AMX=off are decided once for the whole program.
bool usable() { return kernels::cpu::amx_int8_usable(); }
}  // namespace amx
#endif

}  // namespace onebit::infer
