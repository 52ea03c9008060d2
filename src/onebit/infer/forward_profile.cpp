#include "onebit/infer/forward_profile.h"

#include <cstdio>
#include <cstdlib>

namespace onebit::infer {
namespace {
const char* part_name(int p) {
  static const char* names[] = {"embedding", "norms, rope, kv, adds", "int8 act quant", "qkv linear", "attention", "o linear",
                                "gate/up linear", "gated activation", "down linear", "lm head"};
  return names[p];
}
bool env_on() {
  const char* e = std::getenv("ONEBIT_INFER_PROFILE");
  return e && *e && *e != '0';
}
}  // namespace

const bool ForwardProfile::enabled_ = env_on();

void ForwardProfile::record(FwdPart p, size_t bytes) {
  const auto now = std::chrono::steady_clock::now();
  Total& t = totals_[decode_][(int)p];
  t.seconds += std::chrono::duration<double>(now - last_).count();
  t.bytes += (double)bytes;
  t.calls += 1;
  if (p == FwdPart::Embed) passes_[decode_] += 1;
  last_ = now;
}

ForwardProfile::~ForwardProfile() {
  if (!enabled_) return;
  for (int dec = 1; dec >= 0; --dec) {
    if (passes_[dec] == 0) continue;
    double all = 0;
    for (const Total& t : totals_[dec]) all += t.seconds;
    std::fprintf(stderr, "ONEBIT_INFER_PROFILE %s: %ld passes, %.2f ms per pass\n", dec ? "decode" : "prefill",
                 passes_[dec], 1e3 * all / passes_[dec]);
    std::fprintf(stderr, "  %-26s %9s %6s %10s %10s\n", "part", "ms/pass", "%", "us/call", "GB/s read");
    for (int p = 0; p < (int)FwdPart::kCount; ++p) {
      const Total& t = totals_[dec][p];
      if (t.calls == 0) continue;
      std::fprintf(stderr, "  %-26s %9.3f %5.1f%% %10.1f", part_name(p), 1e3 * t.seconds / passes_[dec],
                   100 * t.seconds / all, 1e6 * t.seconds / t.calls);
      if (t.bytes > 0) std::fprintf(stderr, " %10.1f", t.bytes / t.seconds / 1e9);
      std::fprintf(stderr, "\n");
    }
  }
}

}  // namespace onebit::infer
