#pragma once
// The transformers-made fixtures of tests/fixtures/hf_bitnet (tools/make_hf_bitnet_fixtures.py):
// expected.safetensors' token ids and logits, and onebit's logits for a model dir.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "onebit/core/error.h"
#include "onebit/core/fs.h"
#include "onebit/formats/safetensors.h"
#include "onebit/infer/load_model.h"

namespace onebit::test {

inline fs::path hf_fixture(const std::string& name) { return fs::path(ONEBIT_TEST_FIXTURES) / "hf_bitnet" / name; }

inline fs::path hf_temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / cat("onebit-hfio-", name, "-", ::getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

struct Expected {
  std::vector<int32_t> ids;
  int B = 0, T = 0, V = 0;
  std::vector<float> logits;  // [B, T, V]
};

inline Expected read_expected(const fs::path& file, const std::string& logits_name = "logits") {
  formats::SafetensorsFile f(file);
  Expected e;
  const auto& ii = f.info("input_ids");
  EXPECT_EQ(ii.dtype, formats::DType::I32);
  e.B = (int)ii.shape.at(0);
  e.T = (int)ii.shape.at(1);
  e.ids.resize(ii.numel());
  std::memcpy(e.ids.data(), f.bytes("input_ids").data(), ii.numel() * 4);
  const auto& li = f.info(logits_name);
  e.V = (int)li.shape.at(2);
  e.logits.resize(li.numel());
  f.read_f32(logits_name, li.shape, e.logits);
  return e;
}

inline std::vector<float> onebit_logits(const fs::path& model_dir, const Expected& e, model::QuantPhase phase) {
  infer::LoadedModel lm = infer::load_model_dir(model_dir);
  lm.model->set_quant_state({phase, 0.0f});
  lm.model->set_training(false);
  std::vector<float> out((size_t)e.B * e.T * lm.model->config().vocab_size);
  lm.model->logits(e.ids.data(), e.B, e.T, out.data(), false);
  return out;
}

inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, (double)std::abs(a[i] - b[i]));
  return m;
}

}  // namespace onebit::test
