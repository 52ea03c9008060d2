#include <gtest/gtest.h>
#include <unistd.h>

#include <random>

#include "onebit/core/fs.h"
#include "onebit/core/json_util.h"
#include "test_seed.h"

namespace onebit {
namespace {

fs::path fresh_dir() {
  fs::path d = fs::temp_directory_path() / cat("onebit-core-test-", ::getpid(), "-", std::random_device{}());
  fs::create_directories(d);
  return d;
}

TEST(AtomicFileWriter, CommitReplacesAndLeavesNoTempFile) {
  const fs::path d = fresh_dir();
  const fs::path p = d / "a.bin";
  write_file_atomic(p, "old contents");
  {
    AtomicFileWriter w(p);
    w.write("new ");
    w.write("file!");
    const char fix[3] = {'N', 'E', 'W'};
    w.pwrite(fix, 3, 0);  // patch a header after the fact
    EXPECT_EQ(w.bytes_written(), 9u);
    // Before commit the old file is intact.
    EXPECT_EQ(read_file(p), "old contents");
    w.commit();
  }
  EXPECT_EQ(read_file(p), "NEW file!");
  int files = 0;
  for (auto& e : fs::directory_iterator(d)) (void)e, ++files;
  EXPECT_EQ(files, 1);
  fs::remove_all(d);
}

TEST(AtomicFileWriter, AbandonedWriteKeepsTheOldFileAndRemovesTheTemp) {
  const fs::path d = fresh_dir();
  const fs::path p = d / "state.json";
  write_file_atomic(p, "{\"step\": 1}");
  try {
    AtomicFileWriter w(p);
    w.write("{\"step\": 2, \"half");
    throw Error("simulated crash before commit");
  } catch (const Error&) {
  }
  EXPECT_EQ(read_file(p), "{\"step\": 1}");
  int files = 0;
  for (auto& e : fs::directory_iterator(d)) (void)e, ++files;
  EXPECT_EQ(files, 1);
  fs::remove_all(d);
}

TEST(AtomicFileWriter, MissingDirectoryIsAnErrorNamingThePath) {
  const fs::path p = fs::temp_directory_path() / "onebit-no-such-dir-xyz" / "f.bin";
  try {
    AtomicFileWriter w(p);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
  }
}

TEST(MappedFile, MapsContentsAndReportsMissingFiles) {
  const fs::path d = fresh_dir();
  std::string bytes(100000, '\0');
  std::mt19937 gen(static_cast<uint32_t>(test::test_seed()));
  for (auto& c : bytes) c = static_cast<char>(gen());
  write_file_atomic(d / "m.bin", bytes);
  MappedFile m(d / "m.bin");
  ASSERT_EQ(m.size(), bytes.size());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(m.data()), m.size()), bytes);
  MappedFile moved = std::move(m);
  EXPECT_EQ(moved.size(), bytes.size());
  EXPECT_EQ(m.data(), nullptr);
  write_file_atomic(d / "empty.bin", "");
  EXPECT_EQ(MappedFile(d / "empty.bin").size(), 0u);
  EXPECT_THROW(MappedFile(d / "absent.bin"), Error);
  fs::remove_all(d);
}

TEST(JsonFile, SyntaxErrorNamesTheFileAndWrongTypeNamesTheKey) {
  const fs::path d = fresh_dir();
  write_file_atomic(d / "bad.json", "{\"a\": 1,, }");
  try {
    read_json_file(d / "bad.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << e.what();
  }
  const json j = json::parse(R"({"n": "seven"})");
  try {
    json_get<int>(j, "n", "cfg.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cfg.json: key \"n\""), std::string::npos) << e.what();
  }
  EXPECT_THROW(json_get<int>(j, "missing", "cfg.json"), Error);
  EXPECT_EQ(json_get_or<int>(j, "missing", 5, "cfg.json"), 5);
  fs::remove_all(d);
}

// An integer key takes only an integer that fits: nlohmann's own conversion would turn 1.5 into 1,
// -1 into 2^64-1 and 2^32 into 0 without a word.
TEST(Json, IntegerKeysRejectFractionsNegativesAndOverflow) {
  const json j = json::parse(R"({"half": 1.5, "neg": -1, "big": 4294967296, "ok": 7, "huge": 18446744073709551615})");
  auto message = [&](auto probe) -> std::string {
    try {
      probe();
    } catch (const Error& e) {
      return e.what();
    }
    return "accepted";
  };
  EXPECT_EQ(message([&] { json_get<int>(j, "half", "s.json"); }),
            "s.json: key \"half\" has the wrong type (got number, expected an integer)");
  EXPECT_EQ(message([&] { json_get<uint64_t>(j, "neg", "s.json"); }), "s.json: key \"neg\" is out of range (got -1)");
  EXPECT_EQ(message([&] { json_get<int>(j, "big", "s.json"); }),
            "s.json: key \"big\" is out of range (got 4294967296)");
  EXPECT_EQ(message([&] { json_get_or<int64_t>(j, "huge", 0, "s.json"); }),
            "s.json: key \"huge\" is out of range (got 18446744073709551615)");
  EXPECT_EQ(json_get<int>(j, "neg", "s.json"), -1);
  EXPECT_EQ(json_get<uint64_t>(j, "big", "s.json"), 4294967296u);
  EXPECT_EQ(json_get<int64_t>(j, "ok", "s.json"), 7);
}

TEST(JsonFile, NumberOverflowNamesTheFile) {
  const fs::path d = fresh_dir();
  write_file_atomic(d / "big.json", "{\"x\": 1e999}");
  try {
    read_json_file(d / "big.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind((d / "big.json").string() + ": not valid JSON", 0), 0u) << e.what();
  }
  fs::remove_all(d);
}

}  // namespace
}  // namespace onebit
