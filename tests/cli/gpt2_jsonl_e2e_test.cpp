// The end-to-end path of issue 4 through the real binary: the `tiny` preset trained with the GPT-2
// tokenizer on a JSONL file (and the same file as .jsonl.zst, streamed) made from the bundled corpus.
// The preset's vocab grows to fit the tokenizer while a config file stays strict; a run killed with
// SIGKILL after a checkpoint and resumed matches an uninterrupted one bit for bit (so the streamed
// data position is restored exactly); the model dir carries the GPT-2 tokenizer, and `generate` and
// `eval` pick it up from there.
#include <gtest/gtest.h>
#include <zstd.h>

#include "cli_util.h"
#include "trajectory.h"
#include "onebit/core/json_util.h"
#include "onebit/data/tokenizer.h"
#include "onebit/train/metrics_log.h"

using namespace onebit;
using namespace onebit::test;

namespace {

constexpr int kN = 3;  // checkpoint step; runs go to 2n

fs::path gpt2_tokenizer() { return fs::path(ONEBIT_TEST_FIXTURES) / "tokenizers" / "gpt2" / "tokenizer.json"; }

// The first `bytes` of the corpus as JSONL documents of four lines each.
std::string corpus_jsonl(size_t bytes) {
  const std::string text = read_file(fs::path(ONEBIT_SOURCE_DIR) / "data" / "tinyshakespeare.txt").substr(0, bytes);
  std::string out, doc;
  int lines = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    const size_t end = nl == std::string::npos ? text.size() : nl + 1;
    doc.append(text, pos, end - pos);
    pos = end;
    if (++lines == 4 || pos == text.size()) {
      out += json{{"text", doc}}.dump() + "\n";
      doc.clear();
      lines = 0;
    }
  }
  return out;
}

std::string zstd_compress(const std::string& s) {
  std::string out(ZSTD_compressBound(s.size()), '\0');
  const size_t n = ZSTD_compress(out.data(), out.size(), s.data(), s.size(), 3);
  if (ZSTD_isError(n)) fail("ZSTD_compress: ", ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

std::vector<std::string> train_args(const fs::path& data, const fs::path& out, const std::string& config = "tiny") {
  return {"train",
          "--data", data.string(),
          "--model-config", config,
          "--tokenizer", gpt2_tokenizer().string(),
          "--output-dir", out.string(),
          "--max-steps", std::to_string(2 * kN),
          "--save-every", std::to_string(kN),
          "--batch-size", "2", "--seq-len", "32",
          "--accumulation-steps", "2",
          // All three quantization phases happen before and after the interruption.
          "--quant-warmup-steps", "1", "--quant-anneal-steps", "3",
          "--warmup-steps", "1", "--lr", "3e-3",
          "--eval-every", "2", "--eval-batches", "2",
          "--val-fraction", "0.05",
          "--threads", "2", "--seed", "11"};
}

class Gpt2JsonlEndToEnd : public ::testing::Test {
 protected:
  // One uninterrupted run is the reference for both inputs. ctest runs each TEST in its own process
  // (and so redoes this run), hence few TESTs, each checking several things.
  static void SetUpTestSuite() {
    dir = new fs::path(cli_temp_dir("gpt2-jsonl"));
    jsonl = new fs::path(*dir / "shakespeare.jsonl");
    zst = new fs::path(*dir / "shakespeare.jsonl.zst");
    const std::string docs = corpus_jsonl(40000);
    write_file_atomic(*jsonl, docs);
    write_file_atomic(*zst, zstd_compress(docs));
    full = new fs::path(*dir / "full");
    full_run = new RunResult(run(train_args(*jsonl, *full), *dir));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir);
    delete dir, delete jsonl, delete zst, delete full, delete full_run;
  }
  void SetUp() override { ASSERT_EQ(full_run->status, 0) << full_run->err; }

  // SIGKILL right after the step-n checkpoint, then --resume from it; the result must equal `full`.
  void kill_and_resume(const fs::path& data, const std::string& name) {
    const fs::path run2 = *dir / name;
    const fs::path ckpt = run2 / "checkpoints" / "step-000003";
    pid_t pid = spawn(train_args(data, run2), *dir / "k.out", *dir / "k.err", *dir / "cache");
    int exited = -1;
    ASSERT_TRUE(wait_for_path(ckpt, pid, 300, &exited)) << "no step-3 checkpoint: " << read_file(*dir / "k.err");
    if (exited < 0) {
      ::kill(pid, SIGKILL);
      EXPECT_EQ(wait_status(pid), 128 + SIGKILL);
    } else {
      std::printf("note: the run had finished before SIGKILL (status %d)\n", exited);
    }
    std::vector<std::string> args = train_args(data, run2);
    args.push_back("--resume");
    args.push_back(ckpt.string());
    RunResult r = run(args, *dir);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("resumed from " + ckpt.string() + " at step 3"), std::string::npos) << r.err;
    // The resumed run takes its vocab from the checkpoint, though --model-config tiny is typed again.
    EXPECT_EQ(r.err.find("vocab_size 257 -> "), std::string::npos) << r.err;

    auto a = trajectory(*full), b = trajectory(run2);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_GE(a.size(), static_cast<size_t>(2 * kN));
    for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << "metrics line " << i;
    EXPECT_TRUE(read_file(*full / "model.safetensors") == read_file(run2 / "model.safetensors"))
        << "final weights differ";
    const fs::path last = fs::path("checkpoints") / "step-000006";
    EXPECT_TRUE(read_file(*full / last / "optimizer.safetensors") == read_file(run2 / last / "optimizer.safetensors"))
        << "optimizer state differs";
    EXPECT_EQ(data::load_tokenizer(run2.string())->hash(), data::load_tokenizer(gpt2_tokenizer().string())->hash());
    fs::remove_all(run2);
  }

  void PresetVocabGrowsToTheTokenizerRoundedTo64();
  void ModelDirHoldsTheGpt2Tokenizer();
  void EvalUsesTheModelDirTokenizer();
  void GenerateDecodesWithTheModelDirTokenizer();

  static fs::path *dir, *jsonl, *zst, *full;
  static RunResult* full_run;
};

fs::path *Gpt2JsonlEndToEnd::dir, *Gpt2JsonlEndToEnd::jsonl, *Gpt2JsonlEndToEnd::zst, *Gpt2JsonlEndToEnd::full;
RunResult* Gpt2JsonlEndToEnd::full_run;

}  // namespace

void Gpt2JsonlEndToEnd::PresetVocabGrowsToTheTokenizerRoundedTo64() {
  EXPECT_NE(full_run->err.find("vocab_size 257 -> 50304"), std::string::npos) << full_run->err;
  const fs::path cfg = *full / "config.json";
  EXPECT_EQ(read_json_file(cfg).at("vocab_size").get<int>(), 50304);
  EXPECT_EQ(read_json_file(*full / "checkpoints" / "step-000003" / "config.json").at("vocab_size").get<int>(), 50304);
}

void Gpt2JsonlEndToEnd::ModelDirHoldsTheGpt2Tokenizer() {
  auto gpt2 = data::load_tokenizer(gpt2_tokenizer().string());
  ASSERT_EQ(gpt2->vocab_size(), 50257);
  for (const fs::path& d : {*full, *full / "checkpoints" / "step-000006"}) {
    auto saved = data::load_tokenizer((d / "tokenizer.json").string());
    EXPECT_EQ(saved->hash(), gpt2->hash()) << d;
    const std::string probe = "ROMEO:\nBut, soft! what light through yonder window breaks?";
    EXPECT_EQ(saved->encode(probe), gpt2->encode(probe)) << d;
  }
}

TEST(Gpt2Jsonl, ConfigFileVocabStaysStrict) {
  const fs::path dir = cli_temp_dir("gpt2-strict");
  const fs::path data = dir / "docs.jsonl";
  write_file_atomic(data, corpus_jsonl(4000));
  const fs::path cfg = dir / "byte-vocab.json";
  write_json_atomic(cfg, read_json_file(fs::path(ONEBIT_SOURCE_DIR) / "configs" / "tiny.json"));  // vocab_size 257
  const fs::path out = dir / "strict";
  RunResult r = run(train_args(data, out, cfg.string()), dir);
  EXPECT_NE(r.status, 0);
  for (const std::string& s : {std::string("vocab_size"), std::string("257"), std::string("50257"), cfg.string()})
    EXPECT_NE(r.err.find(s), std::string::npos) << "missing \"" << s << "\" in: " << r.err;
  EXPECT_FALSE(fs::exists(out)) << "a failed run wrote its output dir";
  fs::remove_all(dir);
}

TEST_F(Gpt2JsonlEndToEnd, TinyPresetOnJsonlResumesExactlyAndServes) {
  PresetVocabGrowsToTheTokenizerRoundedTo64();
  ModelDirHoldsTheGpt2Tokenizer();
  kill_and_resume(*jsonl, "killed-jsonl");
  EvalUsesTheModelDirTokenizer();
  GenerateDecodesWithTheModelDirTokenizer();
}

// The compressed file holds the same documents, so its trajectory must equal the plain file's.
TEST_F(Gpt2JsonlEndToEnd, StreamedJsonlZstResumesExactly) { kill_and_resume(*zst, "killed-zst"); }

void Gpt2JsonlEndToEnd::EvalUsesTheModelDirTokenizer() {
  // --split val rebuilds the trainer's held-out documents, so it reproduces the final val loss.
  RunResult r = run({"eval", "-m", full->string(), "--data", jsonl->string(), "--split", "val", "--val-fraction", "0.05",
                     "-b", "2", "--seq-len", "32", "--threads", "2", "--json"},
                    *dir);
  ASSERT_EQ(r.status, 0) << r.err;
  const json got = json::parse(r.out);
  double final_val = -1;
  for (const json& m : train::read_jsonl(*full / "metrics.jsonl"))
    if (m.contains("val_loss") && m.at("step") == 2 * kN) final_val = m.at("val_loss").get<double>();
  ASSERT_GT(final_val, 0);
  EXPECT_NEAR(got.at("loss").get<double>(), final_val, 1e-6 * final_val);

  // The same text scored with the model dir's tokenizer, with the GPT-2 file named explicitly, and
  // with the byte tokenizer: the first two agree, the byte one tokenizes differently.
  const std::string text = read_file(fs::path(ONEBIT_SOURCE_DIR) / "data" / "tinyshakespeare.txt").substr(50000, 3000);
  auto eval_text = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"eval", "-m", full->string(), "--text", text, "--threads", "2", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    RunResult e = run(args, *dir);
    EXPECT_EQ(e.status, 0) << e.err;
    return e.status == 0 ? json::parse(e.out) : json();
  };
  const json own = eval_text({}), named = eval_text({"--tokenizer", gpt2_tokenizer().string()}),
             bytes = eval_text({"--tokenizer", "byte"});
  EXPECT_EQ(own, named);
  const size_t gpt2_tokens = data::load_tokenizer(gpt2_tokenizer().string())->encode(text).size();
  // --text is one document: its tokens then end-of-text, each but the first a target.
  EXPECT_EQ(own.at("tokens").get<size_t>(), gpt2_tokens);
  EXPECT_GT(bytes.at("tokens").get<size_t>(), 2 * gpt2_tokens);
}

void Gpt2JsonlEndToEnd::GenerateDecodesWithTheModelDirTokenizer() {
  auto gen = [&](const std::string& seed) {
    RunResult g = run({"generate", "-m", full->string(), "-p", "ROMEO:", "-n", "12", "--seed", seed, "--threads", "2"},
                      *dir);
    EXPECT_EQ(g.status, 0) << g.err;
    return g.out;
  };
  const std::string a = gen("3"), b = gen("3");
  EXPECT_EQ(a, b) << "same seed, different text";
  ASSERT_EQ(a.rfind("ROMEO:", 0), 0u) << a;
  // The sampled ids decode through the GPT-2 vocab, whose tokens are mostly whole words; through the
  // byte tokenizer 12 ids would be at most 12 bytes.
  EXPECT_GT(a.size(), std::string("ROMEO:\n").size() + 12) << a;
}
