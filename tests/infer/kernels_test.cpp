// The runtime's packed kernels: every SIMD path this CPU runs, selected explicitly, against the
// scalar reference and against a plain sum over the unpacked codes, on fresh random shapes (sizes
// that are not multiples of any block or SIMD width included). Packing round trips every code.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "onebit/core/error.h"
#include "onebit/infer/kernels/dot.h"
#include "onebit/infer/kernels/gemm_amx.h"
#include "onebit/infer/kernels/half.h"
#include "onebit/infer/matmul.h"
#include "onebit/infer/packed_weights.h"
#include "onebit/kernels/cpu/thread_pool.h"
#include "test_seed.h"

using namespace onebit;
using namespace onebit::infer;

namespace {

struct Shape {
  int rows, cols, n;
};

// Random codes for a quantized format, packed; `codes` keeps them for the plain reference.
PackedMatrix random_matrix(PackedFormat f, int rows, int cols, std::mt19937_64& g, std::vector<int>& codes) {
  codes.resize((size_t)rows * cols);
  std::vector<int8_t> c8(codes.size());
  std::vector<float> fv(codes.size());
  for (size_t i = 0; i < codes.size(); ++i) {
    switch (f) {
      case PackedFormat::Ternary2:
      case PackedFormat::Ternary1_6:
        codes[i] = (int)(g() % 3) - 1;
        break;
      case PackedFormat::Binary1:
        codes[i] = g() % 2 ? 1 : -1;
        break;
      case PackedFormat::Q6:
        codes[i] = (int)(g() % 63) - 31;
        break;
      default:
        codes[i] = (int)(g() % 255) - 127;
    }
    c8[i] = (int8_t)codes[i];
  }
  const float scale = 0.01f + (float)(g() % 100) / 1000.0f;
  switch (f) {
    case PackedFormat::Ternary2:
    case PackedFormat::Ternary1_6:
      return pack_ternary(c8, rows, cols, scale, f);
    case PackedFormat::Binary1:
      return pack_binary(c8, rows, cols, scale);
    case PackedFormat::Q6:
      return pack_q6(c8, rows, cols, scale);
    default:
      return pack_int8(c8, rows, cols, scale);
  }
}

const PackedFormat kQuantFormats[] = {PackedFormat::Ternary2, PackedFormat::Ternary1_6, PackedFormat::Binary1,
                                      PackedFormat::Int8, PackedFormat::Q6};

}  // namespace

TEST(InferPacking, EveryCodeReadsBackAndBase3DigitsDecodeForAllBytes) {
  std::mt19937_64 g(onebit::test::test_seed());
  for (PackedFormat f : kQuantFormats) {
    for (int cols : {1, 31, 127, 128, 129, 160, 161, 255, 256, 257, 700}) {
      std::vector<int> codes;
      PackedMatrix m = random_matrix(f, 3, cols, g, codes);
      EXPECT_EQ(m.padded_cols % block_codes(f), 0);
      EXPECT_GE(m.padded_cols, cols);
      for (int r = 0; r < 3; ++r)
        for (int c = 0; c < cols; ++c) ASSERT_EQ(code_at(m, r, c), codes[(size_t)r * cols + c]) << to_string(f);
    }
  }
  // Base 3: each of the 243 five-digit values survives the fixed-point byte and the digit decode.
  for (int v = 0; v < 243; ++v) {
    std::vector<int8_t> codes(160, 0);
    int rest = v;
    for (int i = 4; i >= 0; --i, rest /= 3) codes[32 * i] = (int8_t)(rest % 3 - 1);
    PackedMatrix m = pack_ternary(codes, 1, 160, 1.0f, PackedFormat::Ternary1_6);
    for (int i = 0; i < 5; ++i) ASSERT_EQ(code_at(m, 0, 32 * i), codes[32 * i]) << v;
  }
  // Bytes: 2 bits per weight, 1.6, 1, 6.
  std::vector<int> codes;
  EXPECT_EQ(random_matrix(PackedFormat::Ternary2, 1, 1280, g, codes).row_bytes, 320u);
  EXPECT_EQ(random_matrix(PackedFormat::Ternary1_6, 1, 1280, g, codes).row_bytes, 256u);
  EXPECT_EQ(random_matrix(PackedFormat::Binary1, 1, 1280, g, codes).row_bytes, 160u);
  EXPECT_EQ(random_matrix(PackedFormat::Q6, 1, 1280, g, codes).row_bytes, 960u);
  EXPECT_THROW(pack_ternary(std::vector<int8_t>{2}, 1, 1, 1.0f, PackedFormat::Ternary2), Error);
}

// Every kernel table this machine runs: one per supported path, and the AVX-512 table with each of
// its two decode GEMVs explicitly.
struct NamedTable {
  std::string name;
  const DotKernels* k;
};
std::vector<NamedTable> kernel_tables() {
  std::vector<NamedTable> out;
  for (KernelPath p : supported_paths()) out.push_back({to_string(p), &dot_kernels(p)});
#if defined(__x86_64__)
  if (path_supported(KernelPath::Avx512Vnni)) {  // both decode GEMVs, whichever is this CPU's default
    out.push_back({"avx512vnni-shifted", &avx512vnni_shifted_kernels()});
    out.push_back({"avx512vnni-masked", &avx512vnni_masked_kernels()});
  }
#endif
  return out;
}

TEST(InferKernels, EveryPathMatchesThePlainIntegerSumOnRandomShapes) {
  std::mt19937_64 g(onebit::test::test_seed(1));
  const std::vector<KernelPath> paths = supported_paths();
  std::printf("kernel paths on this CPU:");
  for (KernelPath p : paths) std::printf(" %s", to_string(p));
  std::printf("; seed %llu (ONEBIT_TEST_SEED replays it)\n", (unsigned long long)onebit::test::test_seed());
  kernels::cpu::set_pool_threads(2);
  for (int trial = 0; trial < 12; ++trial) {
    // Mostly ragged sizes: columns not a multiple of 8, 32, 64, 128, 160 or 256; rows odd; 1..9 tokens,
    // and every third trial a prefill-sized 16..85 (the amx path's tile products, ragged in tokens too).
    const int tokens = trial % 3 == 2 ? 16 + (int)(g() % 70) : 1 + (int)(g() % 9);
    const Shape s{1 + (int)(g() % 70), 1 + (int)(g() % 900), tokens};
    std::vector<float> x((size_t)s.n * s.cols);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (float& v : x) v = nd(g);
    QuantizedActs xq;
    xq.reserve(s.n, s.cols);
    xq.quantize(x.data(), s.n, s.cols, s.cols);
    for (PackedFormat f : kQuantFormats) {
      std::vector<int> codes;
      PackedMatrix W = random_matrix(f, s.rows, s.cols, g, codes);
      // The plain reference: integer sums of code * activation code, then the two scales.
      std::vector<float> want((size_t)s.n * s.rows);
      for (int n = 0; n < s.n; ++n)
        for (int r = 0; r < s.rows; ++r) {
          int64_t acc = 0;
          for (int c = 0; c < s.cols; ++c) acc += (int64_t)codes[(size_t)r * s.cols + c] * xq.row(n)[c];
          want[(size_t)n * s.rows + r] = (float)acc * (W.scale * xq.inv_scale(n));
        }
      for (const NamedTable& t : kernel_tables()) {
        std::vector<float> got((size_t)s.n * s.rows, NAN);
        matmul(W, x.data(), s.cols, &xq, s.n, got.data(), s.rows, *t.k);
        for (size_t i = 0; i < got.size(); ++i)
          ASSERT_EQ(got[i], want[i]) << to_string(f) << " on " << t.name << " shape " << s.rows << "x" << s.cols
                                     << " n=" << s.n << " at " << i;
        // Decode (one token: the four-row GEMV where the path has one) on the first token.
        std::vector<float> one(s.rows, NAN);
        matmul(W, x.data(), s.cols, &xq, 1, one.data(), s.rows, *t.k);
        for (int r = 0; r < s.rows; ++r)
          ASSERT_EQ(one[r], want[r]) << to_string(f) << " decode on " << t.name << " row " << r;
      }
    }
  }
}

#if defined(__x86_64__)
// The amx path's two layouts, checked on any AVX-512 machine (the tile product itself needs AMX and is
// covered by the test above where the CPU has it): decode_rows gives every code's signed value, and
// pack_acts puts token n's codes k..k+3 at group k / 4, column n, with zero tokens past N.
TEST(InferKernels, AmxDecodedRowsAndTokenLayoutHoldEveryCode) {
  if (!path_supported(KernelPath::Avx512Vnni)) GTEST_SKIP() << "the amx decoder uses AVX-512 BW/VL";
  std::mt19937_64 g(onebit::test::test_seed(5));
  for (PackedFormat f : kQuantFormats) {
    const int rows = 1 + (int)(g() % amx::kRows), cols = 1 + (int)(g() % 900);
    std::vector<int> codes;
    const PackedMatrix W = random_matrix(f, rows, cols, g, codes);
    const int k64 = (W.padded_cols + 63) / 64 * 64;
    std::vector<int8_t> dec((size_t)amx::kRows * k64, 99);
    const amx::Codes c = f == PackedFormat::Ternary2     ? amx::Codes::Ternary2
                         : f == PackedFormat::Ternary1_6 ? amx::Codes::Ternary1_6
                         : f == PackedFormat::Binary1    ? amx::Codes::Binary1
                         : f == PackedFormat::Q6         ? amx::Codes::Q6
                                                         : amx::Codes::Int8;
    amx::decode_rows(c, W.row(0), W.row_bytes, W.padded_cols / block_codes(f), rows, k64, dec.data());
    for (int r = 0; r < amx::kRows; ++r)
      for (int k = 0; k < k64; ++k) {
        const int got = dec[(size_t)r * k64 + k];
        if (r >= rows || k >= W.padded_cols) {
          ASSERT_EQ(got, 0) << to_string(f) << " padding at row " << r << " code " << k;
        } else if (k < cols) {
          ASSERT_EQ(got, codes[(size_t)r * cols + k]) << to_string(f) << " row " << r << " code " << k;
        }
      }
  }
  const int N = 1 + (int)(g() % 40), k64 = 64 * (1 + (int)(g() % 5)), npad = 64;
  std::vector<int8_t> x((size_t)N * (k64 + 64));
  for (int8_t& v : x) v = (int8_t)(g() % 256);
  std::vector<int8_t> xv((size_t)k64 * npad, 99);
  amx::pack_acts(x.data(), k64 + 64, N, npad, k64, xv.data(), 0, 17);
  amx::pack_acts(x.data(), k64 + 64, N, npad, k64, xv.data(), 17, npad);
  for (int k = 0; k < k64; ++k)
    for (int n = 0; n < npad; ++n)
      ASSERT_EQ(xv[(size_t)(k / 4) * npad * 4 + n * 4 + k % 4], n < N ? x[(size_t)n * (k64 + 64) + k] : 0)
          << "token " << n << " code " << k;
}
#endif

// The activation codes are the training's act_quant_int8 codes: nearbyint (ties to even) of x * 127 /
// absmax, clamped; the runtime's vectorized rounding must agree on every value, ties included, and a
// non-finite activation must be a clear error rather than a garbage code.
TEST(InferKernels, ActivationCodesRoundTiesToEvenAndRejectNonFinite) {
  std::mt19937_64 g(onebit::test::test_seed(7));
  QuantizedActs xq;
  // Ties: absmax 127 makes the factor 1, so x * s is x itself.
  const std::vector<float> ties = {127.0f, 0.5f, -0.5f, 1.5f, -1.5f, 2.5f, -2.5f, 126.5f, -126.5f, 3.49999f, 0.0f};
  xq.reserve(1, (int)ties.size());
  xq.quantize(ties.data(), 1, (int)ties.size(), ties.size());
  const int want_ties[] = {127, 0, 0, 2, -2, 2, -2, 126, -126, 3, 0};
  for (size_t c = 0; c < ties.size(); ++c) EXPECT_EQ(xq.row(0)[c], want_ties[c]) << "x = " << ties[c];
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int trial = 0; trial < 20; ++trial) {
    const int rows = 1 + (int)(g() % 5), cols = 1 + (int)(g() % 3000);
    std::vector<float> x((size_t)rows * cols);
    for (float& v : x) v = nd(g) * (trial % 4 == 0 ? 1e-7f : 3.0f);  // tiny rows hit the 1e-5 floor
    xq.reserve(rows, cols);
    xq.quantize(x.data(), rows, cols, cols);
    for (int r = 0; r < rows; ++r) {
      float m = 0;
      for (int c = 0; c < cols; ++c) m = std::max(m, std::abs(x[(size_t)r * cols + c]));
      const float s = 127.0f / std::max(m, 1e-5f);
      int32_t sum = 0;
      for (int c = 0; c < cols; ++c) {
        const int want = (int)std::clamp(std::nearbyint(x[(size_t)r * cols + c] * s), -128.0f, 127.0f);
        ASSERT_EQ(xq.row(r)[c], want) << "row " << r << " col " << c;
        sum += want;
      }
      EXPECT_EQ(xq.sums()[r], sum);
      EXPECT_EQ(xq.inv_scale(r), 1.0f / s);
    }
  }
  for (float bad : {INFINITY, -INFINITY, NAN}) {
    std::vector<float> x(37, 0.25f);
    x[20] = bad;
    xq.reserve(1, 37);
    try {
      xq.quantize(x.data(), 1, 37, 37);
      ADD_FAILURE() << "no error for an activation of " << bad;
    } catch (const onebit::Error& e) {
      EXPECT_NE(std::string(e.what()).find("activation"), std::string::npos) << e.what();
    }
  }
}

// The 2-bit decode GEMV (the four-row kernel where the path has one) on rows of 262,144 codes and
// more, against the plain integer sum, with random codes and with extreme ones (rows of all +1 / all
// -1 weights against activations all 127), where an int32 accumulator overflow would show.
TEST(InferKernels, TernaryDecodeGemvHoldsOnLongRowsAndExtremeCodes) {
  std::mt19937_64 g(onebit::test::test_seed(11));
  kernels::cpu::set_pool_threads(2);
  for (const NamedTable& t : kernel_tables()) {
    for (int cols : {2 * 1024 * 128, 2 * 1024 * 128 + 256, 2 * 1024 * 128 + 128}) {
      for (int mode = 0; mode < 2; ++mode) {
        std::vector<int> codes;
        PackedMatrix W = random_matrix(PackedFormat::Ternary2, 5, cols, g, codes);
        std::vector<float> x(cols);
        for (float& v : x) v = std::normal_distribution<float>()(g);
        if (mode == 0) {  // extremes: rows of all +1 / all -1 / all 0 codes against activations all 127
          std::vector<int8_t> c8((size_t)5 * cols);
          for (int r = 0; r < 5; ++r)
            for (int c = 0; c < cols; ++c) c8[(size_t)r * cols + c] = (int8_t)(r == 4 ? 0 : r % 2 ? -1 : 1);
          codes.assign(c8.begin(), c8.end());
          W = pack_ternary(c8, 5, cols, 0.5f, PackedFormat::Ternary2);
          std::fill(x.begin(), x.end(), 3.0f);
        }
        QuantizedActs xq;
        xq.reserve(1, cols);
        xq.quantize(x.data(), 1, cols, cols);
        std::vector<float> got(5, NAN);
        matmul(W, x.data(), cols, &xq, 1, got.data(), 5, *t.k);
        for (int r = 0; r < 5; ++r) {
          int64_t acc = 0;
          for (int c = 0; c < cols; ++c) acc += (int64_t)codes[(size_t)r * cols + c] * xq.row(0)[c];
          ASSERT_EQ(got[r], (float)acc * (W.scale * xq.inv_scale(0))) << t.name << " cols " << cols << " row " << r;
        }
      }
    }
  }
}

TEST(InferKernels, StackedRowsKeepEachPartsScaleAndCodes) {
  std::mt19937_64 g(onebit::test::test_seed(3));
  for (PackedFormat f : kQuantFormats) {
    const int cols = 1 + (int)(g() % 600);
    std::vector<int> ca, cb, cc;
    const PackedMatrix a = random_matrix(f, 1 + (int)(g() % 9), cols, g, ca);
    const PackedMatrix b = random_matrix(f, 1 + (int)(g() % 9), cols, g, cb);
    const PackedMatrix c = random_matrix(f, 1 + (int)(g() % 9), cols, g, cc);
    const PackedMatrix* parts[3] = {&a, &b, &c};
    ASSERT_TRUE(can_stack_rows(parts));
    const PackedMatrix s = stack_rows(parts);
    ASSERT_EQ(s.rows, a.rows + b.rows + c.rows);
    int r0 = 0;
    for (const PackedMatrix* m : parts) {
      for (int r = 0; r < m->rows; ++r) {
        EXPECT_EQ(s.scale_of(r0 + r), m->scale);
        for (int k = 0; k < cols; ++k) ASSERT_EQ(code_at(s, r0 + r, k), code_at(*m, r, k)) << to_string(f);
      }
      r0 += m->rows;
    }
  }
  std::vector<int> codes;
  const PackedMatrix t = random_matrix(PackedFormat::Ternary2, 4, 100, g, codes);
  const PackedMatrix i8 = random_matrix(PackedFormat::Int8, 4, 100, g, codes);
  const PackedMatrix wide = random_matrix(PackedFormat::Ternary2, 4, 300, g, codes);
  const PackedMatrix f32 = pack_f32(std::vector<float>(400, 1.0f), 4, 100);
  const PackedMatrix* mixed[2] = {&t, &i8};
  const PackedMatrix* widths[2] = {&t, &wide};
  const PackedMatrix* floats[2] = {&f32, &f32};
  EXPECT_FALSE(can_stack_rows(mixed));
  EXPECT_FALSE(can_stack_rows(widths));
  EXPECT_FALSE(can_stack_rows(floats));
  EXPECT_THROW(stack_rows(mixed), Error);
}

TEST(InferKernels, FloatDotsAndAttentionAgreeAcrossPaths) {
  std::mt19937_64 g(onebit::test::test_seed(2));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int trial = 0; trial < 8; ++trial) {
    const Shape s{1 + (int)(g() % 40), 1 + (int)(g() % 300), 1 + (int)(g() % 6)};
    std::vector<float> w((size_t)s.rows * s.cols), x((size_t)s.n * s.cols);
    for (float& v : w) v = nd(g);
    for (float& v : x) v = nd(g);
    for (bool bf16 : {false, true}) {
      PackedMatrix W = bf16 ? pack_bf16(w, s.rows, s.cols) : pack_f32(w, s.rows, s.cols);
      std::vector<double> want((size_t)s.n * s.rows);
      for (int n = 0; n < s.n; ++n)
        for (int r = 0; r < s.rows; ++r) {
          double acc = 0, mag = 0;
          for (int c = 0; c < s.cols; ++c) {
            acc += (double)value_at(W, r, c) * x[(size_t)n * s.cols + c];
            mag += std::abs((double)value_at(W, r, c) * x[(size_t)n * s.cols + c]);
          }
          want[(size_t)n * s.rows + r] = acc;
          (void)mag;
        }
      for (KernelPath p : supported_paths()) {
        std::vector<float> got((size_t)s.n * s.rows);
        matmul(W, x.data(), s.cols, nullptr, s.n, got.data(), s.rows, dot_kernels(p));
        for (size_t i = 0; i < got.size(); ++i)
          ASSERT_NEAR(got[i], want[i], 1e-5 * s.cols) << (bf16 ? "bf16" : "f32") << " on " << to_string(p);
      }
    }
    // One head of attention over n positions, f16 and f32 caches, against a double softmax (head
    // sizes of 64 and 128 take the register-accumulating path; the others the general one).
    const int hd = trial % 4 == 0 ? 64 : trial % 4 == 1 ? 128 : 1 + (int)(g() % 80), n = 1 + (int)(g() % 50);
    std::vector<float> q(hd), kf((size_t)n * hd), vf((size_t)n * hd);
    std::vector<uint16_t> kh(kf.size()), vh(vf.size());
    for (float& v : q) v = nd(g);
    for (size_t i = 0; i < kf.size(); ++i) {
      kh[i] = f32_to_f16(nd(g));
      vh[i] = f32_to_f16(nd(g));
      kf[i] = f16_to_f32(kh[i]);
      vf[i] = f16_to_f32(vh[i]);
    }
    const float scale = 1.0f / std::sqrt((float)hd);
    std::vector<double> sc(n), want(hd, 0.0);
    double mx = -INFINITY, sum = 0;
    for (int j = 0; j < n; ++j) {
      double d = 0;
      for (int i = 0; i < hd; ++i) d += (double)q[i] * kf[(size_t)j * hd + i];
      sc[j] = d * scale;
      mx = std::max(mx, sc[j]);
    }
    for (int j = 0; j < n; ++j) sum += sc[j] = std::exp(sc[j] - mx);
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < hd; ++i) want[i] += sc[j] / sum * vf[(size_t)j * hd + i];
    // An int8 cache of the same rows (random codes and row scales; the reference reads them back).
    std::vector<int8_t> k8(kf.size()), v8(vf.size());
    std::vector<float> ks(n), vs(n);
    for (int j = 0; j < n; ++j) {
      ks[j] = 0.005f + 0.02f * (float)(g() % 100) / 100.0f;
      vs[j] = 0.005f + 0.02f * (float)(g() % 100) / 100.0f;
    }
    for (size_t i = 0; i < k8.size(); ++i) {
      k8[i] = (int8_t)((int)(g() % 255) - 127);
      v8[i] = (int8_t)((int)(g() % 255) - 127);
    }
    std::vector<double> sc8(n), want8(hd, 0.0);
    double mx8 = -INFINITY, sum8 = 0;
    for (int j = 0; j < n; ++j) {
      double d = 0;
      for (int i = 0; i < hd; ++i) d += (double)q[i] * k8[(size_t)j * hd + i] * ks[j];
      sc8[j] = d * scale;
      mx8 = std::max(mx8, sc8[j]);
    }
    for (int j = 0; j < n; ++j) sum8 += sc8[j] = std::exp(sc8[j] - mx8);
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < hd; ++i) want8[i] += sc8[j] / sum8 * v8[(size_t)j * hd + i] * vs[j];
    for (KernelPath p : supported_paths()) {
      std::vector<float> scratch(n), o16(hd), o32(hd), o8(hd);
      dot_kernels(p).attend_f16(q.data(), kh.data(), vh.data(), n, hd, scale, scratch.data(), o16.data());
      dot_kernels(p).attend_f32(q.data(), kf.data(), vf.data(), n, hd, scale, scratch.data(), o32.data());
      dot_kernels(p).attend_i8(q.data(), k8.data(), ks.data(), v8.data(), vs.data(), n, hd, scale, scratch.data(),
                               o8.data());
      for (int i = 0; i < hd; ++i) {
        ASSERT_NEAR(o16[i], want[i], 1e-4) << to_string(p);
        ASSERT_NEAR(o32[i], want[i], 1e-4) << to_string(p);
        ASSERT_NEAR(o8[i], want8[i], 1e-4) << to_string(p) << " int8 cache, hd " << hd;
      }
    }
  }
}

TEST(InferKernels, HalfConversionRoundTripsAndRoundsToNearestEven) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32((uint16_t)h);
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), h) << h;
  }
  EXPECT_EQ(f32_to_f16(1.0f + 1.0f / 2048), 0x3C00);          // halfway, even stays
  EXPECT_EQ(f32_to_f16(1.0f + 3.0f / 2048), 0x3C02);          // halfway, odd rounds up
  EXPECT_EQ(f32_to_f16(70000.0f), 0x7C00);                    // overflow: infinity
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);       // half the smallest subnormal: even (0)
  EXPECT_EQ(f32_to_f16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(NAN))));
}

TEST(InferKernels, PathSelectionByNameAndItsErrors) {
  EXPECT_EQ(path_from_string("scalar", "test"), KernelPath::Scalar);
  try {
    path_from_string("sse9", "ONEBIT_INFER_KERNEL");
    ADD_FAILURE() << "accepted an unknown path";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ONEBIT_INFER_KERNEL"), std::string::npos);
  }
  for (KernelPath p : {KernelPath::Avx2, KernelPath::Avx512Vnni, KernelPath::Neon}) {
    if (!path_supported(p)) {
      EXPECT_THROW(path_from_string(to_string(p), "test"), Error);
    } else {
      EXPECT_EQ(path_from_string(to_string(p), "test"), p);
    }
  }
  EXPECT_EQ(supported_paths().front(), KernelPath::Scalar);
  EXPECT_EQ(best_path(), supported_paths().back());
  // A runner that knows the CPU (the qemu runs of tests/infer/aarch64: -cpu max has dotprod, a
  // Cortex-A53 has not) says which paths the detection must find, so a path that silently went
  // undetected cannot pass as "tested".
  if (const char* want = std::getenv("ONEBIT_EXPECT_KERNEL_PATHS")) {
    std::string got;
    for (KernelPath p : supported_paths()) got += std::string(got.empty() ? "" : " ") + to_string(p);
    EXPECT_EQ(got, want);
  }
}
