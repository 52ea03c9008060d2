// The 2B4T ternary layout (hfio/ternary_pack.h) against transformers' own packing: the packed
// fixture's bytes were written by integrations/bitnet.py pack_weights.
#include <gtest/gtest.h>

#include <random>

#include "hf_fixture.h"
#include "onebit/hfio/ternary_pack.h"

namespace onebit::test {
namespace {

TEST(TernaryPack, RoundTripsAndMatchesTransformersBytes) {
  std::mt19937 rng(7);
  const int64_t out = 12, in = 5;
  std::vector<int8_t> codes(out * in);
  for (auto& c : codes) c = (int8_t)((int)(rng() % 3) - 1);
  const std::vector<uint8_t> packed = hfio::pack_ternary_rows(codes.data(), out, in);
  ASSERT_EQ(packed.size(), (size_t)(out / 4 * in));
  // Row k*R + i sits in byte row i at bits 2k..2k+1 (R = out/4 = 3): check one by hand.
  EXPECT_EQ((packed[1 * in + 2] >> 4) & 3, codes[(2 * 3 + 1) * in + 2] + 1);
  EXPECT_EQ(hfio::unpack_ternary_rows(packed.data(), out, in, "t"), codes);

  // transformers' bytes: repacking what we unpack gives back the very bytes pack_weights wrote.
  formats::SafetensorsFile f(hf_fixture("bitnet_packed") / "model.safetensors");
  const std::string name = "model.layers.1.mlp.down_proj.weight";  // [32, 64] -> uint8 [8, 64]
  const auto b = f.bytes(name);
  const std::vector<int8_t> t = hfio::unpack_ternary_rows(b.data(), 32, 64, name);
  EXPECT_EQ(hfio::pack_ternary_rows(t.data(), 32, 64), std::vector<uint8_t>(b.begin(), b.end()));
  int zeros = 0;
  for (int8_t c : t) zeros += c == 0;
  EXPECT_GT(zeros, 0);
  EXPECT_LT(zeros, (int)t.size());
}

TEST(TernaryPack, MasterFromCodesRequantizesToTheSameCodesAndScale) {
  std::vector<int8_t> codes = {1, 0, -1, 0, 0, 1, -1, -1};  // 5 of 8 non-zero
  const float g = 0.37f;
  const std::vector<float> w = hfio::master_from_codes(codes, g);
  std::vector<int8_t> again;
  const float g2 = hfio::ternary_codes(w.data(), w.size(), again);
  EXPECT_EQ(again, codes);
  EXPECT_NEAR(g2, g, 1e-7);
  EXPECT_EQ(hfio::master_from_codes(std::vector<int8_t>(4, 0), g), std::vector<float>(4, 0.0f));
}

}  // namespace
}  // namespace onebit::test
