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
  EXPECT_EQ(c["quantization_config"]["linear_class"], "autobitlinear");  // as microsoft/bitnet-b1.58-2B-4T
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

// transformers loaded onebit's exports of an onebit-trained model (make_hf_bitnet_fixtures.py
// check-export); onebit's Hard-phase logits of the same model equal its logits, and so do those of
// today's export of it imported back (export -> import against transformers' numbers).
TEST(ExportHf, TransformersRunsTheExportLikeOnebit) {
  const fs::path model = hf_fixture("onebit_trained");
  for (auto [weights, file] : {std::pair{hfio::HfWeights::Packed, "transformers_packed.safetensors"},
                               std::pair{hfio::HfWeights::Master, "transformers_master.safetensors"}}) {
    const fs::path d = hf_temp_dir("oracle");
    hfio::export_hf(model, d / "hf", weights);
    const Expected e = read_expected(model / file);
    // onebit on its own model, and on the re-import of what transformers loaded.
    const double own = max_abs_diff(onebit_logits(model, e, QuantPhase::Hard), e.logits);
    hfio::import_hf(d / "hf", d / "again");
    const double again = max_abs_diff(onebit_logits(d / "again", e, QuantPhase::Hard), e.logits);
    std::printf("%s: max |onebit - transformers| logit %.3g (re-imported: %.3g)\n", file, own, again);
    EXPECT_LT(own, 5e-5) << file;
    EXPECT_LT(again, 5e-5) << file;
    fs::remove_all(d);
  }
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
