// `onebit parquet-to-jsonl` through the real binary: the hub fixture's files convert to their
// expected JSONL byte for byte, --columns projects and orders, and bad input (a corrupt file, an
// unknown column, a bad flag) gives one error line naming the file or flag, a non-zero exit status
// and no output file.
#include <gtest/gtest.h>

#include "cli_util.h"

using namespace onebit;
using namespace onebit::test;

namespace {

const fs::path kHub = fs::path(ONEBIT_TEST_FIXTURES) / "hub-fixture" / "data";
const fs::path kOwn = fs::path(ONEBIT_TEST_FIXTURES) / "parquet";

}  // namespace

TEST(ParquetToJsonl, HubFilesConvertToTheExpectedJsonl) {
  fs::path dir = cli_temp_dir("parquet-hub");
  for (const char* f : {"python/train-00000-of-00002", "python/train-00001-of-00002", "c/train-00000-of-00002",
                        "c/train-00001-of-00002", "markdown/train-00000-of-00002"}) {
    fs::path out = dir / "out.jsonl";
    RunResult r = run({"parquet-to-jsonl", (kHub / (std::string(f) + ".parquet")).string(), out.string(), "--columns", "content"}, dir);
    ASSERT_EQ(r.status, 0) << f << ": " << r.err;
    EXPECT_EQ(read_file(out), read_file(kHub / (std::string(f) + ".expected.jsonl"))) << f;
    EXPECT_NE(r.out.find("rows"), std::string::npos);
  }
  fs::remove_all(dir);
}

TEST(ParquetToJsonl, AllColumnsByDefaultAndProjectionInFlagOrder) {
  fs::path dir = cli_temp_dir("parquet-cols");
  fs::path out = dir / "all.jsonl";
  RunResult r = run({"parquet-to-jsonl", (kOwn / "nulls_v2.parquet").string(), out.string()}, dir);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_file(out), read_file(kOwn / "nulls_v2.expected.jsonl"));
  r = run({"parquet-to-jsonl", (kOwn / "codec_gzip.parquet").string(), out.string(), "--columns", "size,lang"}, dir);
  ASSERT_EQ(r.status, 0) << r.err;
  std::string text = read_file(out);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.rfind("{\"size\": ", 0), 0u) << text.substr(0, 80);
  EXPECT_NE(text.find(", \"lang\": \""), std::string::npos);
  EXPECT_EQ(text.find("content"), std::string::npos);
  fs::remove_all(dir);
}

TEST(ParquetToJsonl, BadInputIsOneErrorLineAndNoOutput) {
  fs::path dir = cli_temp_dir("parquet-bad");
  fs::path out = dir / "out.jsonl";
  std::string bytes = read_file(kOwn / "codec_snappy.parquet");
  fs::path cut = dir / "cut.parquet";
  write_file_atomic(cut, bytes.substr(0, bytes.size() / 2));
  RunResult r = run({"parquet-to-jsonl", cut.string(), out.string()}, dir);
  expect_one_error_line(r, "cut.parquet");
  EXPECT_FALSE(fs::exists(out));

  r = run({"parquet-to-jsonl", (kOwn / "codec_snappy.parquet").string(), out.string(), "--columns", "content,nope"}, dir);
  expect_one_error_line(r, "\"nope\"");
  EXPECT_FALSE(fs::exists(out));

  r = run({"parquet-to-jsonl", (kOwn / "codec_snappy.parquet").string(), out.string(), "--columns", "content,,lang"}, dir);
  expect_one_error_line(r, "--columns");
  EXPECT_FALSE(fs::exists(out));

  r = run({"parquet-to-jsonl", (kOwn / "codec_snappy.parquet").string(), out.string(), "--columns", "lang,lang"}, dir);
  expect_one_error_line(r, "twice");
  EXPECT_FALSE(fs::exists(out));
  // Nothing but the input is left in the directory (no temp files).
  EXPECT_EQ(snapshot(dir).size(), 1u);
  fs::remove_all(dir);
}
