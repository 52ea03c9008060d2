// `onebit export --format hf` round trips: export -> import gives the same model (master: the same
// weights bit for bit; packed: the same codes and scales, so the same Hard-phase logits), and
// transformers' logits of an exported onebit model (tools/make_hf_bitnet_fixtures.py check-export,
// committed) equal onebit's.
#include <gtest/gtest.h>

#include "hf_fixture.h"
#include "onebit/core/json_util.h"
#include "onebit/hfio/export_hf.h"
#include "onebit/hfio/import_hf.h"

namespace onebit::test {
namespace {

using model::QuantPhase;

std::vector<float> all_params(const fs::path& dir) {
  return infer::load_model_dir(dir).model->download_params();
}

TEST(ExportHf, MasterRoundTripIsBitExact) {
  const fs::path d = hf_temp_dir("master");
  hfio::import_hf(hf_fixture("bitnet_master"), d / "onebit");
  hfio::export_hf(d / "onebit", d / "hf", hfio::HfWeights::Master);
  const json c = read_json_file(d / "hf" / "config.json");
  EXPECT_EQ(c["model_type"], "bitnet");
  EXPECT_EQ(c["architectures"][0], "BitNetForCausalLM");
  EXPECT_EQ(c["quantization_config"]["quant_method"], "bitnet");
  EXPECT_EQ(c["quantization_config"]["linear_class"], "autobitlinear");
  EXPECT_EQ(c["quantization_config"]["quantization_mode"], "online");
  hfio::import_hf(d / "hf", d / "again");
  EXPECT_EQ(all_params(d / "onebit"), all_params(d / "again"));
  fs::remove_all(d);
}

TEST(ExportHf, PackedRoundTripKeepsTheLogits) {
  const fs::path d = hf_temp_dir("packed");
  hfio::import_hf(hf_fixture("bitnet_master"), d / "onebit");
  hfio::export_hf(d / "onebit", d / "hf", hfio::HfWeights::Packed);
  const json c = read_json_file(d / "hf" / "config.json");
  EXPECT_EQ(c["quantization_config"]["linear_class"], "bitlinear");
  EXPECT_EQ(c["quantization_config"]["quantization_mode"], "offline");
  formats::SafetensorsFile f(d / "hf" / "model.safetensors");
  EXPECT_EQ(f.info("model.layers.0.mlp.gate_proj.weight").dtype, formats::DType::U8);
  EXPECT_EQ(f.info("model.layers.0.mlp.gate_proj.weight").shape, (std::vector<int64_t>{16, 32}));
  EXPECT_EQ(f.info("model.layers.0.mlp.gate_proj.weight_scale").shape, (std::vector<int64_t>{1}));
  const hfio::ImportSummary s = hfio::import_hf(d / "hf", d / "again");
  EXPECT_EQ(s.packed_tensors, 14u);
  const Expected e = read_expected(hf_fixture("bitnet_master") / "expected.safetensors");
  const double diff = max_abs_diff(onebit_logits(d / "onebit", e, QuantPhase::Hard),
                                   onebit_logits(d / "again", e, QuantPhase::Hard));
  EXPECT_LT(diff, 1e-4);
  std::printf("packed export -> import: max logit change %.3g\n", diff);
  fs::remove_all(d);
}

TEST(ExportHf, RefusesWhatTransformersCannotRun) {
  const fs::path d = hf_temp_dir("refuse");
  hfio::import_hf(hf_fixture("llama"), d / "llama");
  try {
    hfio::export_hf(d / "llama", d / "hf", hfio::HfWeights::Packed);
    ADD_FAILURE() << "a model_type onebit model was exported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"model_type\""), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(d / "hf"));
  fs::remove_all(d);
}

}  // namespace
}  // namespace onebit::test
