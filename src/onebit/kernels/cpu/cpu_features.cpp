#include "onebit/kernels/cpu/cpu_features.h"

#include <cstdlib>
#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace onebit::kernels::cpu {
namespace {

struct Amx {
  bool int8 = false, bf16 = false;
};

Amx detect() {
  Amx r;
#if defined(__x86_64__)
  const char* env = std::getenv("ONEBIT_AMX");
  if (env && std::strcmp(env, "off") == 0) return r;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return r;
  if (!(d & (1u << 24))) return r;  // AMX-TILE: without it neither product exists
  // Linux enables the tile data state per process on request (ARCH_REQ_XCOMP_PERM = 0x1023,
  // XFEATURE_XTILEDATA = 18); without it the first tile instruction faults. Refused (an older kernel, a
  // sandbox): no AMX path. Asking again is harmless, but one answer per process keeps every caller agreeing.
  if (syscall(SYS_arch_prctl, 0x1023, 18) != 0) return r;
  r.int8 = (d & (1u << 25)) != 0;
  r.bf16 = (d & (1u << 22)) != 0;
#endif
  return r;
}

const Amx& amx() {
  static const Amx a = detect();
  return a;
}

}  // namespace

bool amx_int8_usable() { return amx().int8; }
bool amx_bf16_usable() { return amx().bf16; }

}  // namespace onebit::kernels::cpu
