// Issue 17 end to end through the CLI: `onebit import hf` the tiny packed BitNet (2B4T layout, made by
// transformers), fine-tune it 50 steps in hard QAT on Shakespeare with `train --init-from
// --start-phase hard` (the loss falls), `export --format hf` it, and import the export again (the
// same Hard-phase model). Bad input to import/export/--init-from ends in one error line.
#include <gtest/gtest.h>

#include <sstream>

#include "cli_util.h"
#include "onebit/core/json_util.h"

namespace onebit::test {
namespace {

fs::path packed_fixture() { return fs::path(ONEBIT_TEST_FIXTURES) / "hf_bitnet" / "bitnet_2b4t"; }

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
  // The round trip keeps the Hard-phase model: eval's loss on the same text agrees closely.
  auto eval_loss = [&](const fs::path& model) {
    RunResult e = run({"eval", "--model", model.string(), "--data", text.string(), "--max-batches", "4", "--json",
                       "--threads", "2"},
                      d);
    EXPECT_EQ(e.status, 0) << e.err;
    return json::parse(e.out)["loss"].get<double>();
  };
  const double l1 = eval_loss(d / "run"), l2 = eval_loss(d / "again");
  std::printf("eval loss: fine-tuned %.6f, after export --format hf + import hf %.6f\n", l1, l2);
  EXPECT_NEAR(l1, l2, 1e-4);
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
