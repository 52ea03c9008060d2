#pragma once
// Live Hugging Face `tokenizers` checks of a tokenizer.json that onebit wrote: HF loads the file and
// encodes/decodes the texts (tools/hf_encode.py, run with the oracle Python), and onebit's tokenizer
// must give the same ids and the same decoded text.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "onebit/core/error.h"
#include "onebit/core/fs.h"
#include "onebit/core/json_util.h"
#include "onebit/core/rng.h"
#include "onebit/data/tokenizer.h"

namespace onebit::data::testing {

// Random valid UTF-8: ASCII words and punctuation, whitespace runs, accented Latin, CJK, emoji (with
// ZWJ sequences), control bytes, and the special token whole and broken.
inline std::string random_text(Rng& rng, size_t pieces) {
  static const char* const parts[] = {"the", " ", "  ", "\n", "\n\n", "\t", "\r\n", "Hello", ",", ".", "'s", "n't",
                                      "42", "3.14", "é", "ß", "naïve", "日本語", "中文", "한국어", "😀", "👩‍👩‍👧",
                                      "\x01", "\x7f", "<|endoftext|>", "<|endoftext|", "|endoftext|>", "<", "ü",
                                      "\u00a0", "\u2028", "e\u0301", "Z\u0351"};
  std::string s;
  for (size_t i = 0; i < pieces; ++i) s += parts[rng.uniform_int(std::size(parts))];
  return s;
}

// Runs the HF oracle on `texts` with tokenizer.json `tokenizer_json` and checks `tok` against it.
inline void expect_encodes_like_hugging_face(const std::string& python, const Tokenizer& tok,
                                             const fs::path& tokenizer_json, const std::vector<std::string>& texts,
                                             const fs::path& scratch) {
  std::string lines;
  for (const auto& t : texts) lines += json{{"text", t}}.dump() + "\n";
  write_file_atomic(scratch / "texts.jsonl", lines);
  const std::string cmd = cat(python, " ", ONEBIT_SOURCE_DIR, "/tools/hf_encode.py ", tokenizer_json.string(), " ",
                              (scratch / "texts.jsonl").string(), " ", (scratch / "hf.jsonl").string());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(scratch / "hf.jsonl");
  std::string line;
  size_t i = 0;
  for (; std::getline(in, line) && i < texts.size(); ++i) {
    const json hf = json::parse(line);
    const std::vector<int32_t> want = hf["ids"];
    const std::vector<int32_t> got = tok.encode(texts[i]);
    EXPECT_EQ(got, want) << "text " << i << ": " << json(texts[i]).dump();
    EXPECT_EQ(tok.decode(want), hf["decoded"].get<std::string>()) << "text " << i;
    EXPECT_EQ(tok.decode(want, /*skip_special=*/true), hf["decoded_skip_special"].get<std::string>()) << "text " << i;
  }
  EXPECT_EQ(i, texts.size()) << "the oracle answered for fewer texts than asked";
}

}  // namespace onebit::data::testing
