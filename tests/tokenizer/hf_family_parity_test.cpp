// Tokenizer families trained with HF `tokenizers` by tools/make_tokenizer_fixtures.py, checked on a
// 1.1 MB corpus (Shakespeare, WikiText, source code, CJK, emoji, invalid UTF-8, whitespace and digit
// runs): every document's ids, and decode results, must equal HF's.
#include <gtest/gtest.h>
#include <unistd.h>

#include "onebit/data/hf/hf_tokenizer.h"
#include "onebit/data/hf/unicode.h"
#include "test_util.h"

namespace onebit::data {
namespace {

struct Corpus {
  std::string bytes;
  std::vector<std::string_view> docs;
};

const Corpus& corpus() {
  static const Corpus c = [] {
    Corpus c;
    fs::path dir = test::fixtures_dir() / "corpus";
    c.bytes = read_file(dir / "corpus.bin");
    json index = read_json_file(dir / "index.json");
    for (const auto& d : index["docs"]) {
      c.docs.push_back(std::string_view(c.bytes).substr(d[0].get<size_t>(), d[1].get<size_t>()));
    }
    return c;
  }();
  return c;
}

std::vector<int32_t> read_u16(const fs::path& p) {
  std::string bytes = read_file(p);
  std::vector<int32_t> ids(bytes.size() / 2);
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = static_cast<unsigned char>(bytes[2 * i]) | static_cast<unsigned char>(bytes[2 * i + 1]) << 8;
  }
  return ids;
}

void check_family(const std::string& family) {
  fs::path dir = test::fixtures_dir() / family;
  auto tok = load_hf_tokenizer(dir / "tokenizer.json");
  json meta = read_json_file(dir / "expected.json");
  auto all = read_u16(dir / "ids.u16");
  auto counts = meta["counts"].get<std::vector<size_t>>();
  const auto& docs = corpus().docs;
  ASSERT_EQ(counts.size(), docs.size());
  EXPECT_GE(corpus().bytes.size(), 1000000u);
  EXPECT_EQ(tok->vocab_size(), meta["vocab_size"].get<int32_t>());
  size_t prefix = meta["template_prefix"], suffix = meta["template_suffix"];
  const json& lossy = meta["decode_skip_special_fnv1a64"];

  auto batch = tok->encode_batch(docs, /*add_special=*/true, 2);
  size_t off = 0, matched = 0, roundtrips = 0, lossy_matched = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    std::vector<int32_t> want(all.begin() + off, all.begin() + off + counts[i]);
    off += counts[i];
    if (batch[i] == want) ++matched;
    else ADD_FAILURE() << family << " doc " << i << ": " << test::first_difference(batch[i], want);
    auto plain = tok->encode(docs[i], /*add_special=*/false);
    ASSERT_GE(want.size(), prefix + suffix);
    EXPECT_EQ(plain, std::vector<int32_t>(want.begin() + prefix, want.end() - suffix)) << family << " doc " << i;

    std::string decoded = tok->decode(want, /*skip_special=*/true);
    std::string key = std::to_string(i);
    if (lossy.contains(key)) {
      EXPECT_EQ(hash_hex(fnv1a64(decoded)), lossy[key].get<std::string>()) << family << " doc " << i;
      ++lossy_matched;
    } else {
      std::string scratch;
      EXPECT_EQ(decoded, std::string(hf::sanitize_utf8(docs[i], scratch))) << family << " doc " << i;
      ++roundtrips;
    }
  }
  EXPECT_EQ(off, all.size());
  EXPECT_EQ(matched, docs.size());
  std::printf("[ parity   ] %s: %zu/%zu documents, %zu ids; %zu lossless round trips, %zu lossy decodes equal HF\n",
              family.c_str(), matched, docs.size(), all.size(), roundtrips, lossy_matched);
}

TEST(HfFamilies, LlamaSentencePieceStyleMatchesHf) { check_family("llama-sp"); }
TEST(HfFamilies, Llama3StyleMatchesHf) { check_family("llama3"); }

TEST(HfFamilies, Llama3SpecialsAndBos) {
  auto tok = load_hf_tokenizer(test::fixtures_dir() / "llama3" / "tokenizer.json");
  ASSERT_TRUE(tok->bos_id().has_value());
  EXPECT_EQ(tok->id_to_piece(*tok->bos_id()), "<|begin_of_text|>");
  ASSERT_TRUE(tok->eos_id().has_value());
  EXPECT_EQ(tok->id_to_piece(*tok->eos_id()), "<|end_of_text|>");
  auto ids = tok->encode("hi<|eot_id|>", true);
  EXPECT_EQ(ids.front(), *tok->bos_id());
  EXPECT_EQ(tok->decode(ids), "<|begin_of_text|>hi<|eot_id|>");
  EXPECT_EQ(tok->decode(ids, true), "hi");
}

TEST(HfFamilies, TokenizerConfigNamesEosAndBos) {
  fs::path dir = fs::temp_directory_path() / ("onebit_tok_cfg_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(test::fixtures_dir() / "llama3" / "tokenizer.json", dir / "tokenizer.json",
                fs::copy_options::overwrite_existing);
  write_file_atomic(dir / "tokenizer_config.json",
                    R"({"eos_token": "<|eot_id|>", "bos_token": {"content": "<|start_header_id|>"}})");
  auto tok = load_hf_tokenizer(dir / "tokenizer.json");
  EXPECT_EQ(tok->id_to_piece(tok->eos_id().value()), "<|eot_id|>");
  EXPECT_EQ(tok->id_to_piece(tok->bos_id().value()), "<|start_header_id|>");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace onebit::data
