#include <gtest/gtest.h>

#include <cmath>

#include "onebit/core/error.h"
#include "onebit/core/rng.h"
#include "onebit/data/byte_tokenizer.h"
#include "onebit/data/dataset.h"
#include "onebit/data/token_file.h"
#include "onebit/data/tokenize_files.h"
#include "batch_util.h"
#include "temp_dir.h"

namespace onebit::data {
namespace {

using testing::expect_error;
using testing::TempDir;

// A .tokens file whose token i is (i * 7 + 3) % vocab, so a window reveals where it came from.
fs::path write_pattern(const fs::path& p, uint64_t n, const Tokenizer& tok) {
  TokenFileWriter w(p, static_cast<uint32_t>(tok.vocab_size()), tok.hash());
  std::vector<int32_t> ids(n);
  for (uint64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((i * 7 + 3) % 256);
  w.append(ids);
  w.commit();
  return p;
}

using testing::Batch;
using testing::draw;

TEST(Dataset, TokensFileSplitsTrainAndValAndWindowsAreShiftedByOne) {
  TempDir dir;
  auto tok = make_byte_tokenizer();
  auto p = write_pattern(dir / "d.tokens", 10000, *tok);
  DataOptions o;
  o.path = p.string();
  o.val_fraction = 0.1;
  o.seed = 5;
  Dataset ds = open_dataset(o, *tok);
  EXPECT_EQ(ds.train_tokens, 9000u);
  EXPECT_EQ(ds.val_tokens, 1000u);
  ASSERT_TRUE(ds.val);
  const int B = 8, T = 32;
  for (int rep = 0; rep < 50; ++rep) {
    Batch b = draw(*ds.train, B, T);
    for (int r = 0; r < B; ++r) {
      // Recover the window start from its first token; every window lies inside the train split.
      for (int t = 0; t < T; ++t) {
        size_t k = static_cast<size_t>(r) * T + t;
        if (t + 1 < T) {
          EXPECT_EQ(b.tg[k], b.in[k + 1]);
        }
        EXPECT_EQ(b.tg[k], static_cast<int32_t>((static_cast<uint32_t>(b.in[k]) + 7) % 256) ) ;
      }
    }
  }
  // Validation: consecutive windows of the last 1000 tokens.
  Batch v = draw(*ds.val, 2, T);
  for (int t = 0; t < 2 * T; ++t) EXPECT_EQ(v.in[static_cast<size_t>(t)], static_cast<int32_t>(((9000 + t) * 7 + 3) % 256));
}

TEST(Dataset, TrainWindowsCoverTheWholeSplitUniformly) {
  TempDir dir;
  auto tok = make_byte_tokenizer();
  // Distinct ids per position (vocab 257 is too small, so use a 4-byte-width pseudo tokenizer file via the
  // window source directly).
  std::vector<int32_t> ids(200);
  for (int i = 0; i < 200; ++i) ids[static_cast<size_t>(i)] = i;
  RandomWindowSource src(std::make_shared<TokenVector>(ids), 11, "test");
  std::vector<int> starts(200, 0);
  const int T = 10;
  for (int i = 0; i < 19000; ++i) {
    std::vector<int32_t> in(T), tg(T);
    src.next_batch(1, T, in.data(), tg.data());
    starts[static_cast<size_t>(in[0])]++;
  }
  // Starts 0..189 are possible (190 values, ~100 each); 190.. never.
  for (int s = 0; s < 190; ++s) EXPECT_GT(starts[static_cast<size_t>(s)], 50) << s;
  for (int s = 190; s < 200; ++s) EXPECT_EQ(starts[static_cast<size_t>(s)], 0) << s;
}

TEST(Dataset, StateRestoreGivesBitwiseTheSameBatches) {
  TempDir dir;
  auto tok = make_byte_tokenizer();
  auto p = write_pattern(dir / "d.tokens", 50000, *tok);
  DataOptions o;
  o.path = p.string();
  o.seed = 42;
  Dataset a = open_dataset(o, *tok);
  for (int i = 0; i < 7; ++i) draw(*a.train, 4, 64);
  json st = a.train->state();
  json vst = a.val->state();
  draw(*a.val, 3, 64);
  std::vector<Batch> after, vafter;
  for (int i = 0; i < 5; ++i) after.push_back(draw(*a.train, 4, 64));
  Dataset b = open_dataset(o, *tok);
  b.train->restore(json::parse(st.dump()));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(draw(*b.train, 4, 64), after[static_cast<size_t>(i)]) << i;
  // A different seed gives different batches.
  o.seed = 43;
  Dataset c = open_dataset(o, *tok);
  DataOptions o42 = o;
  o42.seed = 42;
  EXPECT_NE(draw(*c.train, 4, 64), draw(*open_dataset(o42, *tok).train, 4, 64));
  // Restoring into data of another size is refused.
  auto q = write_pattern(dir / "e.tokens", 40000, *tok);
  o.path = q.string();
  Dataset d = open_dataset(o, *tok);
  expect_error([&] { d.train->restore(st); }, "changed since the checkpoint");
  expect_error([&] { d.train->restore(vst); }, "val_windows");
}

TEST(Dataset, EvalPassCoversEveryTargetOnceAndCountsBytes) {
  TempDir dir;
  auto tok = make_byte_tokenizer();
  // "ab☃" + EOS repeated: byte ids, 3-byte snowman, and EOS counting 0 bytes.
  std::string unit = "ab\xe2\x98\x83";
  std::vector<int32_t> ids;
  for (int i = 0; i < 101; ++i) {
    for (unsigned char c : unit) ids.push_back(c);
    ids.push_back(256);
  }
  // 606 tokens → 605 targets; T = 50 → 13 windows, the last with 5 targets.
  ValSource v(std::make_shared<TokenVector>(ids), *tok, "val");
  const int B = 4, T = 50;
  EXPECT_EQ(v.eval_windows(T), 13u);
  std::vector<int32_t> in(B * T), tg(B * T);
  uint64_t tokens = 0, bytes = 0, windows = 0;
  std::vector<int32_t> seen;
  v.reset_eval();
  while (true) {
    EvalBatch eb = v.next_eval(B, T, in.data(), tg.data());
    if (eb.rows == 0) break;
    windows += static_cast<uint64_t>(eb.rows);
    tokens += eb.target_tokens;
    bytes += eb.target_bytes;
    uint64_t counted = 0;
    for (int i = 0; i < B * T; ++i)
      if (tg[static_cast<size_t>(i)] >= 0) {
        seen.push_back(tg[static_cast<size_t>(i)]);
        ++counted;
      }
    EXPECT_EQ(counted, eb.target_tokens);
  }
  EXPECT_EQ(windows, 13u);
  EXPECT_EQ(tokens, 605u);
  EXPECT_EQ(seen, std::vector<int32_t>(ids.begin() + 1, ids.end()));
  // Targets: 605 tokens = the first 'a' is not a target; bytes = 101 units × 5 bytes − 1.
  EXPECT_EQ(bytes, 101u * 5u - 1u);
  // reset_eval() restarts the pass.
  v.reset_eval();
  EXPECT_EQ(v.next_eval(B, T, in.data(), tg.data()).rows, 4);
}

TEST(Dataset, TokenizerHashMismatchIsAClearError) {
  TempDir dir;
  auto tok = make_byte_tokenizer();
  TokenFileWriter w(dir / "other.tokens", 257, 0x1111222233334444ULL);
  std::vector<int32_t> ids(100, 1);
  w.append(ids);
  w.commit();
  DataOptions o;
  o.path = (dir / "other.tokens").string();
  expect_error([&] { open_dataset(o, *tok); }, "other.tokens was made with tokenizer hash 1111222233334444",
               "but the model's tokenizer has hash " + hash_hex(tok->hash()), "re-tokenize with onebit tokenize --tokenizer");
  o.path = (dir / "missing.tokens").string();
  expect_error([&] { open_dataset(o, *tok); }, "missing.tokens", "no such file");
  o.path = (dir / "other.tokens").string();
  o.val_fraction = 1.5;
  expect_error([&] { open_dataset(o, *tok); }, "--val-fraction");
  // A split too small for the sequence length says so.
  o.val_fraction = 0.5;
  write_pattern(dir / "small.tokens", 40, *tok);
  o.path = (dir / "small.tokens").string();
  Dataset ds = open_dataset(o, *tok);
  expect_error([&] { draw(*ds.train, 1, 32); }, "small.tokens", "20 tokens, fewer than seq_len + 1 = 33");
}

TEST(Dataset, TextFileIsTokenizedOnceIntoTheCache) {
  TempDir dir;
  auto tok = make_byte_tokenizer();
  std::string text;
  for (int i = 0; i < 2000; ++i) text += cat("Line ", i, ": to be or not to be.\n");
  write_file_atomic(dir / "corpus.txt", text);
  DataOptions o;
  o.path = (dir / "corpus.txt").string();
  o.cache_dir = dir / "cache";
  Dataset a = open_dataset(o, *tok);
  EXPECT_EQ(a.train_tokens + a.val_tokens, text.size() + 1);  // + EOS
  std::vector<fs::path> cached;
  for (auto& e : fs::directory_iterator(dir / "cache")) cached.push_back(e.path());
  ASSERT_EQ(cached.size(), 1u);
  EXPECT_EQ(cached[0].filename().string().rfind("corpus-", 0), 0u);
  TokenFile f(cached[0]);
  std::vector<int32_t> ids(f.size());
  f.read(0, ids.size(), ids.data());
  EXPECT_EQ(tok->decode(ids), text + "<|endoftext|>");
  auto mtime = fs::last_write_time(cached[0]);
  Dataset b = open_dataset(o, *tok);  // a hit: not rewritten
  EXPECT_EQ(fs::last_write_time(cached[0]), mtime);
  // A directory of .txt files: EOS after each, files in sorted order.
  fs::create_directories(dir / "books");
  write_file_atomic(dir / "books" / "b.txt", "second");
  write_file_atomic(dir / "books" / "a.txt", "first");
  o.path = (dir / "books").string();
  o.val_fraction = 0;
  Dataset c = open_dataset(o, *tok);
  EXPECT_EQ(c.train_tokens, 13u);
  EXPECT_FALSE(c.val);
}

TEST(Dataset, CompanionValTokensFileIsTheValidationSplit) {
  TempDir dir;
  auto tok = make_byte_tokenizer();
  std::string jsonl;
  for (int i = 0; i < 40; ++i) jsonl += json{{"text", cat("document ", i, " with some words")}}.dump() + "\n";
  write_file_atomic(dir / "d.jsonl", jsonl);
  TokenizeOptions t;
  t.inputs = {(dir / "d.jsonl").string()};
  t.output = dir / "d.tokens";
  t.val_fraction = 0.25;
  t.progress = false;
  TokenizeResult r = tokenize_files(t, *tok);
  DataOptions o;
  o.path = (dir / "d.tokens").string();
  o.val_fraction = 0.1;  // ignored: the .val.tokens file decides
  Dataset ds = open_dataset(o, *tok);
  EXPECT_EQ(ds.train_tokens, r.train_tokens);
  EXPECT_EQ(ds.val_tokens, r.val_tokens);
  ASSERT_TRUE(ds.val);
  std::vector<int32_t> in(64), tg(64);
  ds.val->reset_eval();
  ds.val->next_eval(1, 64, in.data(), tg.data());
  EXPECT_EQ(tok->decode(std::vector<int32_t>(in.begin(), in.begin() + 11)), "document 30");
  // Its tokenizer hash is checked too.
  TokenFileWriter w(dir / "d.val.tokens", 257, 12345);
  std::vector<int32_t> ids(100, 1);
  w.append(ids);
  w.commit();
  expect_error([&] { open_dataset(o, *tok); }, "d.val.tokens was made with tokenizer hash");
  // Without a val split requested, the companion file is not needed.
  o.val_fraction = 0;
  EXPECT_FALSE(open_dataset(o, *tok).val);
}

// Its speed is a benchmark (bench_data BM_OpenDatasetTinyShakespeare), not a ctest: wall-clock bounds
// flake on a loaded machine.
TEST(Dataset, TinyShakespeareByteTokenizationIsExact) {
  const fs::path src = fs::path(ONEBIT_SOURCE_DIR) / "data" / "tinyshakespeare.txt";
  TempDir dir;
  auto tok = make_byte_tokenizer();
  DataOptions o;
  o.path = src.string();
  o.cache_dir = dir / "cache";
  Dataset ds = open_dataset(o, *tok);
  EXPECT_EQ(ds.train_tokens + ds.val_tokens, 1115394u + 1u);
  // The cache (found again, not rebuilt) holds exactly the file's bytes and one EOS.
  TokenFile f(cached_tokens_for_text(src, *tok, dir / "cache", 0));
  std::vector<int32_t> ids(f.size());
  f.read(0, ids.size(), ids.data());
  const std::string text = read_file(src);
  ASSERT_EQ(ids.size(), text.size() + 1);
  for (size_t i = 0; i < text.size(); ++i)
    if (ids[i] != static_cast<unsigned char>(text[i])) FAIL() << "token " << i << " is " << ids[i];
  EXPECT_EQ(ids.back(), kByteEosId);
}

}  // namespace
}  // namespace onebit::data
