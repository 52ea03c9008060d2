#pragma once
// ONEBIT_INFER_PROFILE=1: where a forward's wall time goes. run_chunk marks the end of each part
// (lap); the time since the previous mark is added to that part, kept apart for decode (one-token)
// and prefill passes. At exit the table goes to stderr, with the weight bytes each linear role read
// per second, so a decode far from the memory-bandwidth limit shows which part holds it back. A
// diagnostic: off by default, and then each lap is one predictable branch.
#include <chrono>
#include <cstddef>

namespace onebit::infer {

enum class FwdPart { Embed, Norms, Quant, Qkv, Attention, O, GateUp, Act, Down, Head, kCount };

class ForwardProfile {
 public:
  static bool on() { return enabled_; }
  // Starts a forward pass, of a decode step (one token in the forward call) or of a prompt (whose last
  // chunk may also be one token).
  void start(bool decode) {
    if (!enabled_) return;
    decode_ = decode;
    last_ = std::chrono::steady_clock::now();
  }
  // The time since the previous mark was spent in `p`, which read `bytes` of weights.
  void lap(FwdPart p, size_t bytes = 0) {
    if (enabled_) record(p, bytes);
  }
  ~ForwardProfile();

 private:
  void record(FwdPart p, size_t bytes);
  static const bool enabled_;
  bool decode_ = true;
  std::chrono::steady_clock::time_point last_;
  struct Total {
    double seconds = 0, bytes = 0;
    long calls = 0;
  };
  Total totals_[2][(int)FwdPart::kCount];  // [prefill, decode]
  long passes_[2] = {0, 0};
};

}  // namespace onebit::infer
