#pragma once
// Deterministic RNG whose whole state is four words, so it can be saved in trainer_state.json and
// restored bit-exactly on resume (std::mt19937's state is 2.5 KB and its distributions are not
// specified bit-exactly across standard libraries).
#include <array>
#include <cstdint>
#include <string>

namespace onebit {

class Rng {  // xoshiro256**
 public:
  explicit Rng(uint64_t seed = 0) { seed_with(seed); }
  void seed_with(uint64_t seed);
  uint64_t next_u64();
  // Uniform in [0, n) without modulo bias.
  uint64_t uniform_int(uint64_t n);
  // Uniform in [0, 1) with 24 random bits (exact in float).
  float uniform_float() { return static_cast<float>(next_u64() >> 40) * (1.0f / 16777216.0f); }
  double uniform_double() { return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0); }
  // Standard normal (Box-Muller, no cached second value so state is just s_).
  float normal();
  // Serialized as 64 hex chars.
  std::string state_string() const;
  void set_state_string(const std::string& s);
  std::array<uint64_t, 4> state() const { return s_; }

 private:
  std::array<uint64_t, 4> s_{};
};

// splitmix64: derives independent seeds (per layer, per step) from one seed.
uint64_t mix_seed(uint64_t a, uint64_t b = 0);

}  // namespace onebit
