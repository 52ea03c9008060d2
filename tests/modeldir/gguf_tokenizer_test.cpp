// A tokenizer.json through GGUF tokenizer metadata and back: with tokenizer.huggingface.json the
// import gets the file byte for byte; without it (as llama.cpp's converters write files) the gpt2
// metadata alone rebuilds a tokenizer.json that encodes text to the same ids (the GPT-2 tokenizer:
// 50257 tokens, 50000 merges, ByteLevel regex); tokenizers llama.cpp cannot express are refused.
#include "onebit/modeldir/gguf_tokenizer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "onebit/core/error.h"
#include "onebit/core/fs.h"
#include "onebit/data/hf/hf_tokenizer.h"

using namespace onebit;
namespace gg = onebit::formats::gguf;

namespace {

const fs::path kGpt2 = fs::path(ONEBIT_TEST_FIXTURES) / "tokenizers" / "gpt2" / "tokenizer.json";

fs::path temp_dir() {
  fs::path d = fs::temp_directory_path() / cat("onebit-gguf-tok-", ::getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

TEST(GgufTokenizer, Gpt2RoundTripsWithAndWithoutTheEmbeddedJson) {
  const fs::path dir = temp_dir();
  const std::string text = read_file(kGpt2);
  for (bool keep_json : {true, false}) {
    SCOPED_TRACE(keep_json ? "tokenizer.huggingface.json" : "gpt2 metadata only");
    gg::GgufWriter w;
    w.set_string("general.architecture", "bitnet");
    modeldir::add_gguf_tokenizer(w, text, 50304, kGpt2.string());  // vocab padded past the tokenizer
    w.write(dir / "t.gguf");
    gg::GgufReader r(dir / "t.gguf");
    EXPECT_EQ(r.get_string("tokenizer.ggml.pre"), "gpt-2");
    const auto tokens = r.get_string_array("tokenizer.ggml.tokens");
    ASSERT_EQ(tokens.size(), 50304u);
    EXPECT_EQ(tokens[50256], "<|endoftext|>");
    EXPECT_EQ(tokens[50300], "[PAD50300]");
    EXPECT_EQ(r.get_int_array("tokenizer.ggml.token_type")[50256], 3);
    EXPECT_EQ(r.get_string_array("tokenizer.ggml.merges").size(), 50000u);
    EXPECT_EQ(r.get_int("tokenizer.ggml.eos_token_id"), 50256);
    std::string back;
    if (keep_json) {
      back = modeldir::tokenizer_json_from_gguf(r);
      EXPECT_EQ(back, text);
    } else {
      gg::GgufWriter stripped;
      for (const auto& [k, v] : r.metadata())
        if (k != "tokenizer.huggingface.json") stripped.set(k, v);
      stripped.write(dir / "s.gguf");
      back = modeldir::tokenizer_json_from_gguf(gg::GgufReader(dir / "s.gguf"));
    }
    write_file_atomic(dir / "back.json", back);
    const auto want = data::load_hf_tokenizer(kGpt2);
    const auto got = data::load_hf_tokenizer(dir / "back.json");
    for (const char* s : {"Hello world, it's 2026!", "  multiple   spaces\n\nand lines\t", "caf\xc3\xa9 \xe2\x82\xac 123456",
                          "<|endoftext|> special in text", "don't won't they'll I'm"}) {
      EXPECT_EQ(got->encode(s), want->encode(s)) << s;
      EXPECT_EQ(got->decode(want->encode(s)), s) << s;
    }
  }
  fs::remove_all(dir);
}

TEST(GgufTokenizer, TokenizersLlamaCppCannotNameAreRefused) {
  gg::GgufWriter w;
  EXPECT_THROW(modeldir::add_gguf_tokenizer(w, R"({"model": {"type": "Unigram", "vocab": []}})", 10, "t.json"), Error);
  try {
    modeldir::add_gguf_tokenizer(
        w, R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Whitespace"}})", 10,
        "t.json");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("t.json: pre_tokenizer"), std::string::npos) << e.what();
  }
  try {
    modeldir::add_gguf_tokenizer(
        w, R"({"model": {"type": "BPE", "vocab": {"a": 12}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}})", 10,
        "t.json");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has id 12, outside the model's vocab_size 10"), std::string::npos) << e.what();
  }
}

}  // namespace
