// The train / eval / generate / info commands through the real binary: --help covers every flag,
// the commands work on a small trained model, and bad input (missing or truncated data, corrupt
// checkpoints, bad or different configs, bad flags) gives a one-line error, a non-zero exit status,
// and leaves every file in the output dir unchanged.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "cli_util.h"
#include "onebit/core/json_util.h"
#include "onebit/data/token_file.h"
#include "onebit/data/tokenizer.h"
#include "onebit/train/metrics_log.h"
#include "onebit/train/train_options.h"

using namespace onebit;
using namespace onebit::test;

namespace {

const std::string kMicro = micro_config_path();

class Commands : public TrainedRunSuite<Commands> {
 public:
  static constexpr const char* kName = "commands";
  static constexpr size_t kTextBytes = 40000;
  static std::vector<std::string> train_args(const fs::path& out) {
    return {"train", "--data", data->string(), "--model-config", kMicro, "--output-dir", out.string(),
            "--max-steps", "6", "--save-every", "3", "--batch-size", "4", "--seq-len", "32", "--threads", "2",
            "--eval-batches", "2"};
  }

 protected:
  // The command fails with one error line holding `needle`, after progress logs at most, and leaves
  // every file under `protect` as it was.
  static void expect_error(std::vector<std::string> args, const std::string& needle, const fs::path& protect) {
    expect_error_leaving(args, *dir, needle, protect);
  }
  static fs::path copy_run(const std::string& name) { return copy_dir_fresh(*run_dir, *dir / name); }
};

}  // namespace

TEST_F(Commands, HelpExplainsEveryFlagAndTheRustAliases) {
  RunResult r = run({"train", "--help"}, *dir);
  EXPECT_EQ(r.status, 0);
  for (const char* f : {"--data", "--model-config", "--tokenizer", "--output-dir", "--batch-size", "--seq-len",
                        "--accumulation-steps", "--gradient-checkpointing-segments", "--save-every", "--max-steps",
                        "--lr", "--min-lr", "--warmup-steps", "--schedule", "--weight-decay", "--grad-clip",
                        "--quant-warmup-steps", "--quant-anneal-steps", "--seed", "--resume", "--threads",
                        "--eval-every", "--config", "--data-dir", "--keep-checkpoints", "--final-eval-batches"})
    EXPECT_NE(r.out.find(f), std::string::npos) << f;
  // Every option of the table, under each of its names, with its help text.
  for (const train::TrainOption& o : train::train_options()) {
    std::istringstream names(o.names);
    for (std::string name; std::getline(names, name, ',');) EXPECT_NE(r.out.find(name), std::string::npos) << name;
    EXPECT_NE(r.out.find(std::string(o.help).substr(0, 40)), std::string::npos) << o.key;
  }
  EXPECT_NE(r.out.find("checkpoints/latest"), std::string::npos);  // where things go is documented
  RunResult g = run({"generate", "--help"}, *dir);
  for (const char* f : {"--model-dir", "--prompt", "--max-tokens", "--max-new-tokens", "--temperature", "--top-k",
                        "--top-p", "--seed"})
    EXPECT_NE(g.out.find(f), std::string::npos) << f;
}

TEST_F(Commands, TrainWritesModelDirMetricsAndCheckpoints) {
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "metrics.jsonl", "checkpoints/latest",
                        "checkpoints/step-000006/optimizer.safetensors", "checkpoints/step-000006/trainer_state.json"})
    EXPECT_TRUE(fs::exists(*run_dir / f)) << f;
  json st = read_json_file(*run_dir / "checkpoints/step-000006/trainer_state.json");
  EXPECT_EQ(st["step"], 6);
  EXPECT_TRUE(st.contains("data") && st.contains("rng") && st.contains("quant"));
  int steps = 0, evals = 0;
  std::istringstream in(read_file(*run_dir / "metrics.jsonl"));
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line);
    if (j.contains("loss")) {
      ++steps;
      for (const char* k : {"lr", "grad_norm", "tokens_per_s", "phase", "k", "w_neg", "w_zero", "w_pos", "peak_rss_mb"})
        EXPECT_TRUE(j.contains(k)) << k;
      EXPECT_NEAR(j["w_neg"].get<double>() + j["w_zero"].get<double>() + j["w_pos"].get<double>(), 1.0, 1e-9);
    }
    if (j.contains("val_loss")) ++evals;
  }
  EXPECT_EQ(steps, 6);
  EXPECT_EQ(evals, 1);
}

TEST_F(Commands, InfoGenerateEval) {
  RunResult i = run({"info", "--json", run_dir->string()}, *dir);
  ASSERT_EQ(i.status, 0) << i.err;
  json j = json::parse(i.out);
  RunResult ic = run({"info", "--json", kMicro}, *dir);
  ASSERT_EQ(ic.status, 0) << ic.err;
  json jc = json::parse(ic.out);
  EXPECT_EQ(j["total_params"], jc["total_params"]);  // the model dir's tensors = the config's layout
  EXPECT_GT(j["quantized_params"].get<uint64_t>(), 0u);
  EXPECT_LT(j["packed_bytes"].get<double>(), j["f16_bytes"].get<double>());
  RunResult it = run({"info", kMicro}, *dir);
  EXPECT_NE(it.out.find("bits per weight"), std::string::npos) << it.out;
  // The training memory plan per data-parallel rank: ZeRO-1 splits only AdamW's m and v.
  RunResult m1 = run({"info", "--json", "8b", "--seq-len", "4096"}, *dir);
  RunResult m8 = run({"info", "--json", "8b", "--seq-len", "4096", "--ranks", "8"}, *dir);
  ASSERT_EQ(m8.status, 0) << m8.err;
  const json p1 = json::parse(m1.out)["training_memory_per_rank"], p8 = json::parse(m8.out)["training_memory_per_rank"];
  EXPECT_EQ(p8["ranks"], 8);
  EXPECT_EQ(p1["params_bytes"], p8["params_bytes"]);
  EXPECT_EQ(p1["activation_bytes"], p8["activation_bytes"]);
  EXPECT_NEAR(p8["optimizer_bytes"].get<double>(), p1["optimizer_bytes"].get<double>() / 8, 8 * 64 * 8);
  RunResult bad = run({"info", "8b", "--seq-len", "99999"}, *dir);
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("--seq-len 99999 exceeds the model's max_position_embeddings"), std::string::npos) << bad.err;

  auto gen = [&](const std::string& seed) {
    return run({"generate", "--model", run_dir->string(), "--prompt", "ROMEO:", "--max-tokens", "40", "--seed", seed,
                "--threads", "2"},
               *dir);
  };
  RunResult g1 = gen("3"), g2 = gen("3"), g3 = gen("4");
  ASSERT_EQ(g1.status, 0) << g1.err;
  EXPECT_EQ(g1.out.rfind("ROMEO:", 0), 0u) << g1.out;
  EXPECT_GT(g1.out.size(), 20u);
  EXPECT_EQ(g1.out, g2.out);  // same seed, same text
  EXPECT_NE(g1.out, g3.out);
  RunResult gr = run({"generate", "--model-dir", run_dir->string(), "--prompt", "A", "--max-new-tokens", "5",
                      "--temperature", "0"},
                     *dir);
  EXPECT_EQ(gr.status, 0) << gr.err;

  RunResult e = run({"eval", "--model", run_dir->string(), "--data", data->string(), "--json", "--max-batches", "4",
                     "--seq-len", "32"},
                    *dir);
  ASSERT_EQ(e.status, 0) << e.err;
  json ej = json::parse(e.out);
  const double loss = ej["loss"];
  EXPECT_GT(loss, 0.5);
  EXPECT_LT(loss, std::log(257.0) + 0.5);
  // Byte tokenizer: one token per byte, so bits per byte = nats per token / ln 2.
  EXPECT_EQ(ej["tokens"], ej["bytes"]);
  EXPECT_NEAR(ej["bits_per_byte"].get<double>(), loss / std::log(2.0), 1e-9);
  EXPECT_NEAR(ej["perplexity"].get<double>(), std::exp(loss), 1e-6 * std::exp(loss));

  // --split val scores exactly the held-out data training evaluated at its end (same windows, same
  // quantized weights; the split is smaller than the default --final-eval-batches cap), so the
  // numbers agree with the final val line of metrics.jsonl.
  json final_eval;
  std::istringstream in(read_file(*run_dir / "metrics.jsonl"));
  std::string line;
  while (std::getline(in, line))
    if (line.find("val_loss") != std::string::npos) final_eval = json::parse(line);
  RunResult v = run({"eval", "--model", run_dir->string(), "--data", data->string(), "--split", "val", "--json",
                     "--batch-size", "4", "--seq-len", "32", "--threads", "2"},
                    *dir);
  ASSERT_EQ(v.status, 0) << v.err;
  json vj = json::parse(v.out);
  EXPECT_EQ(vj["tokens"], final_eval["val_tokens"]);
  EXPECT_NEAR(vj["loss"].get<double>(), final_eval["val_loss"].get<double>(), 1e-6);
  // One byte per token, except the EOS the tokenizer put after the file (0 bytes).
  EXPECT_EQ(vj["bytes"].get<uint64_t>() + 1, vj["tokens"].get<uint64_t>());
}

// The evaluation at the end of training scores the first --final-eval-batches batches (a whole
// pass over a large corpus takes hours), says so, and shows its progress; 0 scores the whole split,
// as the default cap does for this small split (see InfoGenerateEval).
TEST_F(Commands, FinalEvalIsCappedAndShowsProgress) {
  auto final_val_tokens = [](const fs::path& run) {
    json last;
    for (const json& j : train::read_jsonl(run / "metrics.jsonl"))
      if (j.contains("val_tokens")) last = j;
    return last["val_tokens"].get<uint64_t>();
  };
  auto args = train_args(*dir / "capped");
  args[8] = "1";  // --max-steps 1
  args.insert(args.end(), {"--final-eval-batches", "2"});
  RunResult r = run(args, *dir);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(final_val_tokens(*dir / "capped"), 2u * 4 * 32);  // 2 batches of 4 x 32 targets
  EXPECT_NE(r.out.find("(256 held-out tokens: the first 2 batches; --final-eval-batches 0 scores the whole split)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.err.find("eval 2/2"), std::string::npos) << r.err;

  args = train_args(*dir / "whole");
  args[8] = "1";
  args.insert(args.end(), {"--final-eval-batches", "0"});
  r = run(args, *dir);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(final_val_tokens(*dir / "whole"), final_val_tokens(*run_dir));  // the whole held-out split
  EXPECT_GT(final_val_tokens(*dir / "whole"), 2u * 4 * 32);
  EXPECT_EQ(r.out.find("the first"), std::string::npos) << r.out;
}

TEST_F(Commands, MissingDataFile) {
  auto args = train_args(*run_dir);
  args[2] = (*dir / "no-such-file.txt").string();
  args.push_back("--no-resume");
  expect_error(args, "no-such-file.txt", *run_dir);
}

TEST_F(Commands, TruncatedTokenFile) {
  auto tok = data::load_tokenizer("byte");
  const fs::path tf = *dir / "trunc.tokens";
  {
    data::TokenFileWriter w(tf, static_cast<uint32_t>(tok->vocab_size()), tok->hash());
    w.append(tok->encode("To be, or not to be, that is the question. Whether 'tis nobler in the mind to suffer"));
    w.commit();
  }
  std::string bytes = read_file(tf);
  write_file_atomic(tf, bytes.substr(0, bytes.size() - 3));
  auto args = train_args(*run_dir);
  args[2] = tf.string();
  args.push_back("--no-resume");
  expect_error(args, "trunc.tokens", *run_dir);
  expect_error({"eval", "--model", run_dir->string(), "--data", tf.string()}, "trunc.tokens", *run_dir);
}

TEST_F(Commands, CorruptCheckpointWeights) {
  fs::path d = copy_run("corrupt-weights");
  const fs::path w = d / "checkpoints" / "step-000006" / "model.safetensors";
  std::string bytes = read_file(w);
  write_file_atomic(w, bytes.substr(0, bytes.size() / 2));
  auto args = train_args(d);
  args[8] = "12";  // --max-steps 12: would continue from the checkpoint
  expect_error(args, "model.safetensors", d);
  expect_error({"train", "--output-dir", d.string()}, "model.safetensors", d);
}

TEST_F(Commands, CorruptTrainerState) {
  fs::path d = copy_run("corrupt-state");
  write_file_atomic(d / "checkpoints" / "step-000006" / "trainer_state.json", "{\"step\": 6, \"run\": ");
  expect_error({"train", "--output-dir", d.string(), "--max-steps", "9"}, "trainer_state.json", d);
  write_file_atomic(d / "checkpoints" / "latest", "step-000042\n");
  expect_error({"train", "--output-dir", d.string()}, "step-000042", d);
}

TEST_F(Commands, BadAndDifferentConfigs) {
  auto bad = train_args(*run_dir);
  bad[4] = (fs::path(ONEBIT_TEST_FIXTURES) / "train" / "bad-missing-key.json").string();
  bad.push_back("--no-resume");
  expect_error(bad, "missing key \"hidden_size\"", *run_dir);
  // Resuming a checkpoint with a bigger model config is refused, naming what differs.
  auto wide = train_args(*run_dir);
  wide[4] = (fs::path(ONEBIT_TEST_FIXTURES) / "train" / "micro-wide.json").string();
  expect_error(wide, "different model config (hidden_size", *run_dir);
  expect_error({"generate", "--model", (*dir / "nope").string(), "--prompt", "x"}, "nope", *run_dir);
}

TEST_F(Commands, BadFlags) {
  auto a = train_args(*run_dir);
  a.push_back("--schedule");
  a.push_back("cosin");
  a.push_back("--no-resume");
  expect_error(a, "--schedule", *run_dir);
  auto b = train_args(*run_dir);
  b[14] = "1000";  // --seq-len beyond max_position_embeddings
  b.push_back("--no-resume");
  expect_error(b, "--seq-len 1000 exceeds", *run_dir);
  auto c = train_args(*run_dir);
  c.push_back("--lr");
  c.push_back("0.5");  // differs from the checkpoint's: refused rather than silently changing the run
  expect_error(c, "--lr", *run_dir);
}

TEST_F(Commands, GradientCheckpointingKeepsTheTrajectoryAndSavesMemory) {
  const fs::path d = *dir / "segments";
  auto args = train_args(d);
  args.push_back("--gradient-checkpointing-segments");
  args.push_back("2");
  RunResult r = run(args, *dir);
  ASSERT_EQ(r.status, 0) << r.err;
  auto steps = [](const fs::path& run) {
    std::vector<json> v;
    std::istringstream in(read_file(run / "metrics.jsonl"));
    std::string line;
    while (std::getline(in, line))
      if (line.find("\"loss\"") != std::string::npos) v.push_back(json::parse(line));
    return v;
  };
  auto a = steps(*run_dir), b = steps(d);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["loss"], b[i]["loss"]) << "step " << i + 1;
    EXPECT_EQ(a[i]["grad_norm"], b[i]["grad_norm"]) << "step " << i + 1;
    EXPECT_LT(b[i]["activation_mb"].get<double>(), a[i]["activation_mb"].get<double>());
  }
  EXPECT_TRUE(read_file(d / "model.safetensors") == read_file(*run_dir / "model.safetensors"));
}

TEST_F(Commands, LeftoversOfAKilledWriteAreRemovedAndNoResumeStartsOver) {
  fs::path d = copy_run("leftovers");
  fs::create_directories(d / "checkpoints" / ".tmp-step-000009-4242");
  write_file_atomic(d / "checkpoints" / ".tmp-step-000009-4242" / "model.safetensors", "half");
  write_file_atomic(d / "model.safetensors.tmp-4242", "half");
  auto args = train_args(d);
  args[8] = "7";  // one more step: resumes from step 6
  RunResult r = run(args, *dir);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(fs::exists(d / "checkpoints" / ".tmp-step-000009-4242"));
  EXPECT_FALSE(fs::exists(d / "model.safetensors.tmp-4242"));
  EXPECT_EQ(read_file(d / "checkpoints" / "latest"), "step-000007\n");
  // --no-resume: the old checkpoints go, so `latest` cannot later point into the previous run.
  auto fresh = train_args(d);
  fresh[8] = "2";
  fresh[10] = "1";  // --save-every 1
  fresh.push_back("--no-resume");
  r = run(fresh, *dir);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(fs::exists(d / "checkpoints" / "step-000006"));
  EXPECT_FALSE(fs::exists(d / "checkpoints" / "step-000007"));
  EXPECT_EQ(read_file(d / "checkpoints" / "latest"), "step-000002\n");
  size_t lines = 0;
  std::istringstream in(read_file(d / "metrics.jsonl"));
  std::string line;
  while (std::getline(in, line)) lines += line.find("\"loss\"") != std::string::npos;
  EXPECT_EQ(lines, 2u);
}

// --save-best: best/ holds the model of the lowest periodic evaluation among those taken in the phase
// the quantization schedule ends in (Hard here), with best.json naming its step and loss.
TEST_F(Commands, SaveBestKeepsTheLowestEvaluationOfTheFinalPhase) {
  const fs::path out = *dir / "save-best";
  auto args = train_args(out);
  args[8] = "14";  // --max-steps
  args.insert(args.end(), {"--eval-every", "2", "--save-best", "--quant-warmup-steps", "2", "--quant-anneal-steps",
                           "4", "--lr", "1e-2"});
  const RunResult r = run(args, *dir);
  ASSERT_EQ(r.status, 0) << r.err;
  std::map<int64_t, std::string> phase;
  std::map<int64_t, double> val;
  for (const json& j : train::read_jsonl(out / "metrics.jsonl")) {
    if (j.contains("phase")) phase[j["step"].get<int64_t>()] = j["phase"].get<std::string>();
    if (j.contains("val_loss") && j["step"].get<int64_t>() < 14) val[j["step"].get<int64_t>()] = j["val_loss"].get<double>();
  }
  int64_t want_step = -1;
  double want = INFINITY;
  for (const auto& [step, loss] : val)
    if (phase[step] == "hard" && loss < want) want = loss, want_step = step;
  ASSERT_GE(want_step, 0) << "no periodic evaluation in the hard phase";
  const json best = read_json_file(out / "best" / "best.json");
  EXPECT_EQ(best["step"].get<int64_t>(), want_step);
  EXPECT_EQ(best["val_loss"].get<double>(), want);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json"})
    EXPECT_TRUE(fs::exists(out / "best" / f)) << f;
  EXPECT_FALSE(fs::exists(out / "best.tmp"));
  EXPECT_FALSE(fs::exists(out / "best.old"));
}
