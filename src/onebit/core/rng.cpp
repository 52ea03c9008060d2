#include "onebit/core/rng.h"

#include <cmath>
#include <cstdio>

#include "onebit/core/error.h"

namespace onebit {
namespace {
inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
inline uint64_t splitmix(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
}  // namespace

uint64_t mix_seed(uint64_t a, uint64_t b) {
  uint64_t x = a ^ (b * 0xd1b54a32d192ed03ULL);
  return splitmix(x);
}

void Rng::seed_with(uint64_t seed) {
  uint64_t x = seed;
  for (auto& w : s_) w = splitmix(x);
}

uint64_t Rng::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

uint64_t Rng::uniform_int(uint64_t n) {
  OB_CHECK(n > 0, "Rng::uniform_int: n must be positive");
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t r;
  do r = next_u64(); while (r >= limit);
  return r % n;
}

float Rng::normal() {
  double u1 = (static_cast<double>(next_u64() >> 11) + 1.0) * (1.0 / 9007199254740993.0);
  double u2 = uniform_double();
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

std::string Rng::state_string() const {
  char buf[80];
  std::snprintf(buf, sizeof buf, "%016llx%016llx%016llx%016llx", (unsigned long long)s_[0],
                (unsigned long long)s_[1], (unsigned long long)s_[2], (unsigned long long)s_[3]);
  return buf;
}

void Rng::set_state_string(const std::string& s) {
  if (s.size() != 64) fail("RNG state: expected 64 hex characters, got ", s.size());
  for (int i = 0; i < 4; ++i) {
    std::string part = s.substr(16 * i, 16);
    char* end = nullptr;
    s_[i] = std::strtoull(part.c_str(), &end, 16);
    if (end != part.c_str() + 16) fail("RNG state: not hexadecimal: ", s);
  }
}

}  // namespace onebit
