// The manifest: built from a tree listing (the committed hub fixture's files, plus files a real
// dataset carries next to its shards), written atomically as JSONL, read back, and refused with one
// file:line error naming the field when a line is wrong.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <map>

#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/stream/manifest.h"

namespace onebit::stream {
namespace {

// The listing the Hub would give for tests/fixtures/hub-fixture: fixtures.json has each shard's path
// and bytes; sha256 values are made up (the manifest only carries them).
std::vector<hub::RepoFile> fixture_listing() {
  const json fx = read_json_file(fs::path(ONEBIT_TEST_FIXTURES) / "hub-fixture" / "fixtures.json");
  std::vector<hub::RepoFile> files;
  int i = 0;
  for (const auto& e : fx) {
    hub::RepoFile f;
    f.path = e.at("path").get<std::string>();
    f.size = e.at("bytes").get<uint64_t>();
    f.sha256 = std::string(63, 'a') + static_cast<char>('0' + i++);
    files.push_back(f);
  }
  return files;
}

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("onebit_stream_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Manifest, ShardLanguageFromPath) {
  EXPECT_EQ(shard_language("data/python/train-00000-of-00002.parquet"), "python");
  EXPECT_EQ(shard_language("data/c++/train-00012-of-00100.parquet"), "c++");
  EXPECT_FALSE(shard_language("data/python/train-00002-of-00002.parquet"));  // index past the count
  EXPECT_FALSE(shard_language("data/python/test-00000-of-00002.parquet"));
  EXPECT_FALSE(shard_language("data/train-00000-of-00002.parquet"));
  EXPECT_FALSE(shard_language("data/python/sub/train-00000-of-00002.parquet"));
  EXPECT_FALSE(shard_language("data/python/train-0x0-of-00002.parquet"));
  EXPECT_FALSE(shard_language("other/python/train-00000-of-00002.parquet"));
}

TEST(Manifest, BuiltFromTheFixtureListing) {
  auto files = fixture_listing();
  const size_t n = files.size();
  ASSERT_EQ(n, 6u);
  // What a real dataset has besides its shards: ignored (not parquet) or skipped and counted.
  files.push_back({"README.md", 100, "", std::string(40, '0')});
  files.push_back({".gitattributes", 10, "", std::string(40, '1')});
  files.push_back({"data/python/extra.parquet", 50, std::string(64, 'b'), ""});
  files.push_back({"metadata.parquet", 70, std::string(64, 'c'), ""});
  std::reverse(files.begin(), files.end());  // the listing's order must not matter

  const Manifest m = manifest_from_listing(files);
  EXPECT_EQ(m.skipped, 2u);
  ASSERT_EQ(m.shards.size(), n);
  EXPECT_TRUE(std::is_sorted(m.shards.begin(), m.shards.end(),
                             [](const Shard& a, const Shard& b) { return a.path < b.path; }));
  std::map<std::string, uint64_t> bytes_by_lang;
  for (const auto& s : m.shards) {
    EXPECT_EQ(s.path.substr(0, 5 + s.language.size() + 1), "data/" + s.language + "/");
    EXPECT_FALSE(s.rows.has_value());
    EXPECT_EQ(s.sha256.size(), 64u);
    bytes_by_lang[s.language] += s.size;
  }
  EXPECT_EQ(bytes_by_lang["python"], 206725u + 133462u);
  EXPECT_EQ(bytes_by_lang["c"], 79028u + 192852u);
  EXPECT_EQ(bytes_by_lang["markdown"], 1584u + 1352u);
}

TEST(Manifest, RoundTripsThroughJsonl) {
  Manifest m = manifest_from_listing(fixture_listing());
  m.shards[1].rows = 45;
  m.shards[2].rows = 0;
  m.shards[3].sha256 = "";  // a non-LFS file has no sha256
  const fs::path dir = temp_dir("manifest");
  const fs::path file = dir / "manifest.jsonl";
  write_manifest(file, m);
  // Written atomically: nothing but the manifest is left in the directory.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  const Manifest back = read_manifest(file);
  ASSERT_EQ(back.shards.size(), m.shards.size());
  for (size_t i = 0; i < m.shards.size(); ++i) {
    EXPECT_EQ(back.shards[i].language, m.shards[i].language);
    EXPECT_EQ(back.shards[i].path, m.shards[i].path);
    EXPECT_EQ(back.shards[i].size, m.shards[i].size);
    EXPECT_EQ(back.shards[i].sha256, m.shards[i].sha256);
    EXPECT_EQ(back.shards[i].rows, m.shards[i].rows);
  }
  EXPECT_EQ(manifest_to_jsonl(back), manifest_to_jsonl(m));
  fs::remove_all(dir);
}

TEST(Manifest, BadLinesNameFileLineAndField) {
  const std::string good = R"({"language":"c","path":"data/c/train-00000-of-00001.parquet","size":5,"sha256":""})";
  auto err = [&](const std::string& bad_line) {
    return error_of([&] { parse_manifest(good + "\n\n" + bad_line + "\n", "m.jsonl"); });
  };
  EXPECT_EQ(err("{"), err("{"));  // deterministic
  EXPECT_NE(err("{").find("m.jsonl:3"), std::string::npos) << err("{");
  const std::string p = R"("path":"data/c/train-00000-of-00002.parquet")";
  EXPECT_NE(err(R"({)" + p + R"(,"size":5})").find("m.jsonl:3: missing key \"language\""), std::string::npos);
  EXPECT_NE(err(R"({"language":"c","size":5})").find("missing key \"path\""), std::string::npos);
  EXPECT_NE(err(R"({"language":"c",)" + p + R"(,"size":-5})").find("key \"size\""), std::string::npos);
  EXPECT_NE(err(R"({"language":"c",)" + p + R"(,"size":"5"})").find("key \"size\" has the wrong type"),
            std::string::npos);
  EXPECT_NE(err(R"({"language":"c",)" + p + R"(,"size":5,"sha256":"XYZ"})").find("key \"sha256\""),
            std::string::npos);
  EXPECT_NE(err(R"({"language":"c",)" + p + R"(,"size":5,"rows":1.5})").find("key \"rows\""), std::string::npos);
  EXPECT_NE(err(R"({"language":"","size":5,)" + p + "}").find("key \"language\""), std::string::npos);
  EXPECT_NE(err(R"({"language":"c","path":"../etc/passwd","size":5})").find("unsafe path"), std::string::npos);
  EXPECT_NE(err(good).find("m.jsonl:3: key \"path\""), std::string::npos);  // listed twice
  EXPECT_NE(err("[1,2]").find("m.jsonl:3"), std::string::npos);
  // A control character in a name is escaped, so the error stays one line.
  const std::string e = err("{\"language\":\"a/\\u0001\\n\",\"size\":5," + p + "}");
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  EXPECT_NE(e.find("\\x01"), std::string::npos) << e;
  EXPECT_NE(error_of([] { read_manifest("/nonexistent/manifest.jsonl"); }).find("/nonexistent/manifest.jsonl"),
            std::string::npos);
}

}  // namespace
}  // namespace onebit::stream
