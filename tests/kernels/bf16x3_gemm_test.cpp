// The AMX-BF16 Hard-phase backward (bf16x3_gemm.h): the bf16x3 split, then both products (dx, and dW
// accumulated) against a double reference on fresh random shapes off every block edge (32 rows, 32
// columns, 32 k), next to the f32 GEMM on the same inputs. The packers, blocking and epilogue run on any
// AVX-512 machine through a scalar emulation of the tile instructions (amx_tile_emulator.h); the same
// checks on the real tile units run where AMX-BF16 is usable and are skipped elsewhere.
//
// Tolerance: per output, e = |got - ref| / S with S = Σ_k |a_k·b_k| (+ |beta·c| for the accumulated
// input), the scale every f32 summation error is proportional to. The f32 GEMM's own max e on the same
// case, e_f32, is the yardstick: bf16x3 adds three exact products per k and (for dW) one f32 rounding of
// dy·f, so its error is the same kind and size; we require e <= 8·e_f32 + 8·2^-24 (over many seeds the
// largest seen was 0.6 of half that). Dropping the third part (error ~2^-17 per term), a misplaced
// element or a wrong scale is orders of magnitude above that.
#include <gtest/gtest.h>

#include <cstdlib>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "amx_tile_emulator.h"
#include "kernel_test_util.h"
#include "test_seed.h"
#include "onebit/kernels/cpu/bf16x3.h"
#include "onebit/kernels/cpu/bf16x3_gemm.h"
#include "onebit/kernels/cpu/thread_pool.h"
#include "onebit/kernels/kernels.h"

namespace onebit::kernels {
namespace {

namespace bx = cpu::bf16x3;
using testing::randn;
using Vec = std::vector<float>;

uint64_t seed() {  // fresh inputs every run; ONEBIT_TEST_SEED replays, the seed is printed on failure
  static uint64_t s = onebit::test::test_seed();
  return ++s;
}

bool avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}

float from_bits(uint32_t u) { return bx::bits_f32(u); }

// ---------------------------------------------------------------- the split

void expect_split_matches_scalar(const Vec& a) {
  std::vector<uint16_t> h(a.size()), m(a.size()), l(a.size());
  cpu::bf16x3_split(a.data(), a.size(), h.data(), m.data(), l.data());
  for (size_t i = 0; i < a.size(); ++i) {
    const bx::Split s = bx::split(a[i]);
    ASSERT_EQ(h[i], s.h) << "a = " << a[i] << " bits " << std::hex << bx::f32_bits(a[i]);
    ASSERT_EQ(m[i], s.m) << "a = " << a[i] << " bits " << std::hex << bx::f32_bits(a[i]);
    ASSERT_EQ(l[i], s.l) << "a = " << a[i] << " bits " << std::hex << bx::f32_bits(a[i]);
  }
}

TEST(Bf16x3Split, ExactForEveryNormalExponentAndProductsExact) {
  if (!avx512()) GTEST_SKIP() << "no AVX-512 (the vector split)";
  const uint64_t s = seed();
  SCOPED_TRACE(::testing::Message() << "seed " << s);
  std::mt19937_64 g(s);
  Vec a;
  for (int e = -103; e <= 127; ++e)  // every exponent where the parts stay normal, random significands
    for (int r = 0; r < 40; ++r) {
      const uint32_t sign = (uint32_t)(g() & 1) << 31, mant = (uint32_t)(g() & 0x7fffff);
      a.push_back(from_bits(sign | (uint32_t)(e + 127) << 23 | mant));
    }
  a.push_back(from_bits(0x7f7f7fffu));  // just below the largest bf16's rounding boundary
  a.push_back(from_bits(0x7f7f8000u));  // would round to inf: truncated instead
  a.push_back(std::numeric_limits<float>::max());
  a.push_back(-std::numeric_limits<float>::max());
  a.push_back(0.0f);
  a.push_back(-0.0f);
  expect_split_matches_scalar(a);
  std::uniform_int_distribution<int> code(-128, 127);
  for (float x : a) {
    const bx::Split sp = bx::split(x);
    const double sum = (double)bx::bf16_value(sp.h) + bx::bf16_value(sp.m) + bx::bf16_value(sp.l);
    ASSERT_EQ(sum, (double)x) << "a = " << x << " bits " << std::hex << bx::f32_bits(x);
    ASSERT_TRUE(std::isfinite(bx::bf16_value(sp.h))) << x;
    // part x code, as the tile unit multiplies it, is exact in f32 (unless it overflows: not at |a| < 2^120)
    if (std::fabs(x) < 0x1p120f)
      for (uint16_t p : {sp.h, sp.m, sp.l}) {
        const int c = code(g);
        ASSERT_EQ((double)(bx::bf16_value(p) * (float)c), (double)bx::bf16_value(p) * c) << x << " code " << c;
      }
  }
}

TEST(Bf16x3Split, NonFiniteAndSubnormal) {
  if (!avx512()) GTEST_SKIP() << "no AVX-512 (the vector split)";
  const Vec special = {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                       from_bits(0x7f800001u), from_bits(0xffffffffu), from_bits(0x7fc00000u),
                       std::numeric_limits<float>::denorm_min(), from_bits(0x80012345u), 0x1p-110f,
                       std::numeric_limits<float>::min()};
  expect_split_matches_scalar(special);
  for (float x : {special[0], special[1]}) {
    const bx::Split s = bx::split(x);
    EXPECT_EQ(bx::bf16_value(s.h), x);
    EXPECT_EQ(s.m, 0);
    EXPECT_EQ(s.l, 0);
  }
  for (int i = 2; i < 5; ++i) {
    const bx::Split s = bx::split(special[i]);
    EXPECT_TRUE(std::isnan(bx::bf16_value(s.h))) << i;
    EXPECT_EQ(s.m, 0);
    EXPECT_EQ(s.l, 0);
  }
  // f32 subnormals keep only bf16's subnormal grid (2^-133): off by at most half a step. Normal values
  // below 2^-103 (here powers of two) stay exact. (The tile unit reads denormal parts as 0 anyway.)
  for (int i = 5; i < 9; ++i) {
    const bx::Split s = bx::split(special[i]);
    const double sum = (double)bx::bf16_value(s.h) + bx::bf16_value(s.m) + bx::bf16_value(s.l);
    if (std::fpclassify(special[i]) == FP_SUBNORMAL)
      EXPECT_LE(std::fabs(sum - special[i]), 0x1p-134) << special[i];
    else
      EXPECT_EQ(sum, (double)special[i]);
  }
}

// ---------------------------------------------------------------- the products

struct Case {
  int N, out, in;
};

struct Operands {
  Vec dy, weff, xq;
  float g = 1;
};

Operands make(const Case& c, uint64_t s, Ops<float>& ops) {
  Operands o;
  o.dy = randn<float>((size_t)c.N * c.out, s, 1.0);
  for (int n = 0; n < c.N; ++n)  // rows of different magnitudes: the split sees many exponents
    for (int j = 0; j < c.out; ++j) o.dy[(size_t)n * c.out + j] *= std::ldexp(1.0f, n % 9 - 4);
  Vec w = randn<float>((size_t)c.out * c.in, s + 1, 0.02);
  QuantScale qs;
  ops.weight_quant_scale(&qs, w.data(), w.size(), WeightQuant::Ternary);
  o.weff.resize(w.size());
  ops.weight_quantize(o.weff.data(), w.data(), w.size(), WeightQuant::Ternary, &qs, 0.0f);
  o.g = qs.scale;
  Vec x = randn<float>((size_t)c.N * c.in, s + 2, 1.5);
  if (c.N > 2) std::fill(x.begin() + c.in, x.begin() + 2 * c.in, 0.0f);  // an all-zero row: f = 0
  o.xq.resize(x.size());
  ops.act_quant_int8(o.xq.data(), x.data(), c.N, c.in);
  return o;
}

// max over outputs of |got - ref| / S (module comment); ref and S in double.
double max_err(const Vec& got, const std::vector<double>& ref, const std::vector<double>& scale) {
  double e = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    e = std::max(e, std::fabs(got[i] - ref[i]) / std::max(scale[i], 1e-300));
  }
  return e;
}

constexpr double kFloor = 8.0 * 0x1p-24;

// dx (beta 0 and 1) and dW (+=) through `kernel`, at 1 and 3 pool threads (bitwise equal), against the
// double reference, next to the f32 GEMM.
void check_products(const Case& c, const bx::TileKernel& kernel) {
  const uint64_t s = seed();
  SCOPED_TRACE(::testing::Message() << "seed " << s << " N " << c.N << " out " << c.out << " in " << c.in);
  Ops<float>& ops = cpu_ops();
  const Operands o = make(c, s, ops);
  const Vec dx0 = randn<float>((size_t)c.N * c.in, s + 3, 0.5), dw0 = randn<float>((size_t)c.out * c.in, s + 4, 0.5);
  cpu::Bf16x3Weights w;
  cpu::bf16x3_pack_weights(w, o.weff.data(), c.out, c.in, o.g);

  for (float beta : {0.0f, 1.0f}) {
    std::vector<double> ref((size_t)c.N * c.in), S(ref.size());
    for (int n = 0; n < c.N; ++n)
      for (int k = 0; k < c.in; ++k) {
        double r = beta * (double)dx0[(size_t)n * c.in + k], a = std::fabs(r);
        for (int j = 0; j < c.out; ++j) {
          const double t = (double)o.dy[(size_t)n * c.out + j] * o.weff[(size_t)j * c.in + k];
          r += t, a += std::fabs(t);
        }
        ref[(size_t)n * c.in + k] = r, S[(size_t)n * c.in + k] = a;
      }
    Vec f32 = dx0;
    ops.gemm(false, false, c.N, c.in, c.out, 1.0f, o.dy.data(), c.out, o.weff.data(), c.in, beta, f32.data(), c.in);
    Vec first;
    for (int threads : {1, 3}) {
      cpu::set_pool_threads(threads);
      Vec got = beta == 0.0f ? Vec(dx0.size(), NAN) : dx0;  // beta 0 must not read dx
      cpu::bf16x3_backward_dx(got.data(), beta, o.dy.data(), c.N, w, kernel);
      const double e = max_err(got, ref, S), e32 = max_err(f32, ref, S);
      EXPECT_LE(e, 8 * e32 + kFloor) << "dx beta " << beta << " threads " << threads << ": e " << e << " f32 " << e32;
      if (threads == 1)
        first = got;
      else
        EXPECT_EQ(std::memcmp(first.data(), got.data(), got.size() * 4), 0) << "dx depends on the thread count";
    }
  }

  std::vector<double> ref((size_t)c.out * c.in), S(ref.size());
  for (int j = 0; j < c.out; ++j)
    for (int k = 0; k < c.in; ++k) {
      double r = dw0[(size_t)j * c.in + k], a = std::fabs(r);
      for (int n = 0; n < c.N; ++n) {
        const double t = (double)o.dy[(size_t)n * c.out + j] * o.xq[(size_t)n * c.in + k];
        r += t, a += std::fabs(t);
      }
      ref[(size_t)j * c.in + k] = r, S[(size_t)j * c.in + k] = a;
    }
  Vec f32 = dw0;
  ops.gemm_acc(true, false, c.out, c.in, c.N, 1.0f, o.dy.data(), c.out, o.xq.data(), c.in, 1.0f, f32.data(), c.in);
  Vec first;
  for (int threads : {1, 3}) {
    cpu::set_pool_threads(threads);
    Vec got = dw0;
    cpu::bf16x3_backward_dw(got.data(), o.dy.data(), o.xq.data(), c.N, c.out, c.in, kernel);
    const double e = max_err(got, ref, S), e32 = max_err(f32, ref, S);
    EXPECT_LE(e, 8 * e32 + kFloor) << "dW threads " << threads << ": e " << e << " f32 " << e32;
    if (threads == 1)
      first = got;
    else
      EXPECT_EQ(std::memcmp(first.data(), got.data(), got.size() * 4), 0) << "dW depends on the thread count";
  }
  cpu::set_pool_threads(1);
}

// Fresh odd shapes around the block edges every run, plus fixed ones (a single element; exact multiples).
std::vector<Case> cases(int extra) {
  std::vector<Case> v = {{1, 1, 1}, {32, 32, 32}, {33, 31, 65}, {17, 70, 3}, {64, 96, 40}};
  std::mt19937_64 g(seed());
  std::uniform_int_distribution<int> d(1, 110);
  for (int i = 0; i < extra; ++i) v.push_back({d(g), d(g), d(g)});
  return v;
}

TEST(Bf16x3Gemm, EmulatedTilesMatchReference) {
  if (!avx512()) GTEST_SKIP() << "no AVX-512 (the packers)";
  for (const Case& c : cases(4)) check_products(c, testing::emulated_tile_kernel());
}

TEST(Bf16x3Gemm, AmxMatchesReference) {
  if (!cpu::bf16x3_available()) GTEST_SKIP() << "AMX-BF16 not usable here (CPU, kernel permission or ONEBIT_AMX=off)";
  for (const Case& c : cases(8)) check_products(c, bx::amx_tile_kernel());
  check_products({2048, 1408, 512}, bx::amx_tile_kernel());  // the 25m preset's gate/up shapes
}

// The hardware and the emulation add the same exact products in the same order; whether TDPBF16PS rounds
// after each of a pair's two additions (the SDM's pseudo-code) is what this reports. Not a pass condition.
TEST(Bf16x3Gemm, AmxAgainstEmulationReport) {
  if (!cpu::bf16x3_available()) GTEST_SKIP() << "AMX-BF16 not usable here";
  const Case c{100, 70, 130};
  const Operands o = make(c, seed(), cpu_ops());
  cpu::Bf16x3Weights w;
  cpu::bf16x3_pack_weights(w, o.weff.data(), c.out, c.in, o.g);
  Vec a((size_t)c.N * c.in), b(a.size());
  cpu::bf16x3_backward_dx(a.data(), 0.0f, o.dy.data(), c.N, w, bx::amx_tile_kernel());
  cpu::bf16x3_backward_dx(b.data(), 0.0f, o.dy.data(), c.N, w, testing::emulated_tile_kernel());
  size_t differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ += a[i] != b[i];
  std::printf("AMX vs emulated TDPBF16PS: %zu of %zu dx values differ\n", differ, a.size());
}

// The backend's entry point: used exactly where AMX-BF16 is, and then agrees with the two gemm calls.
TEST(Bf16x3Gemm, CpuOpsTernaryLinearBackward) {
  Ops<float>& ops = cpu_ops();
  setenv("ONEBIT_AMX_BACKWARD", "1", 1);  // the opt-in (bf16x3_gemm.h), read at every pack
  const Case c{45, 50, 70};
  const uint64_t s = seed();
  SCOPED_TRACE(::testing::Message() << "seed " << s);
  const Operands o = make(c, s, ops);
  QuantScale qs;
  qs.scale = o.g;
  std::unique_ptr<PackedTernary> packed;
  if (!ops.pack_ternary(packed, o.weff.data(), c.out, c.in, &qs)) GTEST_SKIP() << "no integer Hard-phase path here";
  Vec dx((size_t)c.N * c.in, 0.25f), dw((size_t)c.out * c.in, 0.5f);
  const bool used = ops.ternary_linear_backward(dx.data(), 1.0f, dw.data(), o.dy.data(), o.xq.data(), c.N, *packed);
  EXPECT_EQ(used, cpu::bf16x3_available());
  if (!used) {  // nothing written
    for (float v : dx) ASSERT_EQ(v, 0.25f);
    for (float v : dw) ASSERT_EQ(v, 0.5f);
    return;
  }
  Vec dx32((size_t)c.N * c.in, 0.25f), dw32((size_t)c.out * c.in, 0.5f);
  ops.gemm(false, false, c.N, c.in, c.out, 1.0f, o.dy.data(), c.out, o.weff.data(), c.in, 1.0f, dx32.data(), c.in);
  ops.gemm_acc(true, false, c.out, c.in, c.N, 1.0f, o.dy.data(), c.out, o.xq.data(), c.in, 1.0f, dw32.data(), c.in);
  for (size_t i = 0; i < dx.size(); ++i) ASSERT_NEAR(dx[i], dx32[i], 1e-5 * (1 + std::fabs(dx32[i]))) << i;
  for (size_t i = 0; i < dw.size(); ++i) ASSERT_NEAR(dw[i], dw32[i], 1e-5 * (1 + std::fabs(dw32[i]))) << i;
}

}  // namespace
}  // namespace onebit::kernels
