// Issue 17 end to end through the CLI: `onebit import hf` the tiny packed BitNet (2B4T layout, made by
// transformers), fine-tune it 50 steps in hard QAT on Shakespeare with `train --init-from
// --start-phase hard` (the loss falls), `export --format hf` it, and import the export again (the
// same Hard-phase model). Bad input to import/export/--init-from ends in one error line.
#include <gtest/gtest.h>

#include <sstream>

#include "cli_util.h"
#include "onebit/core/json_util.h"
#include "onebit/formats/safetensors.h"
#include "onebit/hfio/ternary_pack.h"

namespace onebit::test {
namespace {

fs::path packed_fixture() { return fs::path(ONEBIT_TEST_FIXTURES) / "hf_bitnet" / "bitnet_2b4t"; }

// Every ternary layer of two model dirs quantizes (transformers' rule, the Hard phase of model_type
// bitnet) to the same codes, at scales equal to f32 rounding; the other tensors are bitwise equal.
void expect_same_hard_model(const fs::path& a, const fs::path& b) {
  const formats::SafetensorsFile fa(a / "model.safetensors"), fb(b / "model.safetensors");
  ASSERT_EQ(fa.tensors().size(), fb.tensors().size());
  int ternary = 0;
  for (const formats::TensorInfo& t : fa.tensors()) {
    ASSERT_TRUE(fb.contains(t.name)) << t.name;
    std::vector<float> va(t.numel()), vb(t.numel());
    fa.read_f32(t.name, t.shape, va);
    fb.read_f32(t.name, t.shape, vb);
    if (t.shape.size() != 2 || t.name.rfind("model.layers.", 0) != 0) {
      EXPECT_EQ(va, vb) << t.name;
      continue;
    }
    std::vector<int8_t> ca, cb;
    const float ga = hfio::ternary_codes(va.data(), va.size(), ca), gb = hfio::ternary_codes(vb.data(), vb.size(), cb);
    EXPECT_EQ(ca, cb) << t.name;
    EXPECT_NEAR(gb / ga, 1.0, 1e-6) << t.name;
    ++ternary;
  }
  EXPECT_EQ(ternary, 14);
}

std::vector<json> metrics(const fs::path& run) {
  std::vector<json> out;
  std::istringstream in(read_file(run / "metrics.jsonl"));
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

TEST(HfFinetune, ImportTrainHardExportImport) {
  const fs::path d = cli_temp_dir("hf-finetune");
  const fs::path text = write_small_text(d, 200000);
  RunResult r = run({"import", "hf", packed_fixture().string(), (d / "imported").string()}, d);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("unpacked 14 ternary tensors"), std::string::npos) << r.out;

  r = run({"train", "--init-from", (d / "imported").string(), "--start-phase", "hard", "--data", text.string(),
           "--output-dir", (d / "run").string(), "--max-steps", "50", "--batch-size", "8", "--seq-len", "32",
           "--lr", "3e-3", "--warmup-steps", "5", "--eval-every", "0", "--final-eval-batches", "4", "--threads", "2"},
          d);
  ASSERT_EQ(r.status, 0) << r.err;
  const std::vector<json> m = metrics(d / "run");
  std::vector<double> losses;
  for (const json& row : m)
    if (row.contains("loss")) {
      EXPECT_EQ(row["phase"], "hard") << row.dump();  // straight into hard QAT
      losses.push_back(row["loss"].get<double>());
    }
  ASSERT_EQ(losses.size(), 50u);
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) first += losses[i] / 5, last += losses[losses.size() - 1 - i] / 5;
  std::printf("hard-QAT fine-tune of the imported packed model: mean loss of steps 1-5 %.4f, of 46-50 %.4f\n",
              first, last);
  EXPECT_LT(last, first - 0.5);
  // The fine-tune started from the imported weights, not from a fresh init: its config is the
  // import's (model_type bitnet, tied), and step 1's loss is the imported model's loss.
  EXPECT_EQ(read_json_file(d / "run" / "config.json"), read_json_file(d / "imported" / "config.json"));

  r = run({"export", "--format", "hf", (d / "run").string(), (d / "hf").string()}, d);
  ASSERT_EQ(r.status, 0) << r.err;
  const json c = read_json_file(d / "hf" / "config.json");
  EXPECT_EQ(c["architectures"][0], "BitNetForCausalLM");
  EXPECT_EQ(c["quantization_config"]["linear_class"], "autobitlinear");
  EXPECT_TRUE(fs::exists(d / "hf" / "tokenizer.json"));
  r = run({"import", "hf", (d / "hf").string(), (d / "again").string()}, d);
  ASSERT_EQ(r.status, 0) << r.err;
  // The round trip keeps the Hard-phase model exactly: the same ternary codes; the import's master
  // weights t * g / p requantize to g up to f32 rounding of their mean.
  expect_same_hard_model(d / "run", d / "again");
  // So eval's loss on the same text agrees closely, not bitwise: an ulp of a weight scale moves a
  // layer's outputs by an ulp, and over 4 batches x 8 x 32 tokens x every layer's inputs a few int8
  // activation codes of this trained model sit within that of a rounding tie and flip (the hfio
  // fixtures are chosen to have none; a trained model is not). Measured 1.0e-4 on an Intel Xeon.
  auto eval_loss = [&](const fs::path& model) {
    RunResult e = run({"eval", "--model", model.string(), "--data", text.string(), "--max-batches", "4", "--json",
                       "--threads", "2"},
                      d);
    EXPECT_EQ(e.status, 0) << e.err;
    return json::parse(e.out)["loss"].get<double>();
  };
  const double l1 = eval_loss(d / "run"), l2 = eval_loss(d / "again");
  std::printf("eval loss: fine-tuned %.6f, after export --format hf + import hf %.6f\n", l1, l2);
  EXPECT_NEAR(l1, l2, 5e-4);
  fs::remove_all(d);
}

TEST(HfFinetune, BadInputIsOneErrorLine) {
  const fs::path d = cli_temp_dir("hf-bad");
  expect_one_error_line(run({"import", "hf", (d / "nowhere").string(), (d / "o").string()}, d), "nowhere");
  fs::create_directories(d / "gpt2");
  write_file_atomic(d / "gpt2" / "config.json", R"({"model_type": "gpt2", "vocab_size": 10})");
  expect_one_error_line(run({"import", "hf", (d / "gpt2").string(), (d / "o").string()}, d), "\"model_type\"");
  expect_one_error_line(run({"export", "--format", "gguf2", packed_fixture().string(), (d / "o").string()}, d),
                        "--format");
  RunResult r = run({"import", "hf", (fs::path(ONEBIT_TEST_FIXTURES) / "hf_bitnet" / "llama").string(),
                     (d / "llama").string()},
                    d);
  ASSERT_EQ(r.status, 0) << r.err;
  expect_one_error_line(run({"export", "--format", "hf", (d / "llama").string(), (d / "o").string()}, d),
                        "\"model_type\"");
  expect_one_error_line(run({"export", "--format", "hf", "--hf-weights", "int4", (d / "llama").string(),
                             (d / "o").string()},
                            d),
                        "--hf-weights");
  expect_one_error_line(run({"train", "--init-from", (d / "llama").string(), "--model-config", "tiny", "--data",
                             write_small_text(d, 1000).string(), "--output-dir", (d / "run").string()},
                            d),
                        "--init-from", ErrorLines::AfterLogs);
  expect_one_error_line(run({"train", "--init-from", (d / "llama").string(), "--start-phase", "hard",
                             "--quant-warmup-steps", "3", "--data", write_small_text(d, 1000).string(),
                             "--output-dir", (d / "run").string()},
                            d),
                        "--start-phase", ErrorLines::AfterLogs);
  EXPECT_FALSE(fs::exists(d / "o"));
  fs::remove_all(d);
}

}  // namespace
}  // namespace onebit::test
