// The bad inputs of issue 13 that live in the fuzz seed corpus (corpus/<parser>/bad_*), each run
// through its production parser: every one must fail with one onebit::Error line that names the
// file and says what is wrong (no hang, no bare library message, no raw newline from the file).
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <future>

#include "onebit/core/json_util.h"
#include "onebit/data/hf/hf_tokenizer.h"
#include "onebit/data/token_file.h"
#include "onebit/formats/gguf/reader.h"
#include "onebit/formats/safetensors.h"
#include "onebit/model/config.h"

namespace onebit {
namespace {

const fs::path kCorpus = ONEBIT_FUZZ_CORPUS;

// Runs `parse` on a worker thread (a hang fails the test instead of stalling it) and returns the
// onebit::Error message, failing the test for any other outcome.
std::string error_of(const std::function<void()>& parse) {
  auto result = std::async(std::launch::async, [&]() -> std::string {
    try {
      parse();
    } catch (const Error& e) {
      return e.what();
    } catch (const std::exception& e) {
      return std::string("<not an onebit::Error: ") + e.what() + ">";
    }
    return "<accepted>";
  });
  if (result.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    ADD_FAILURE() << "the parser hangs";
    std::abort();  // the worker cannot be stopped; a hang must not look like a pass
  }
  return result.get();
}

struct Case {
  std::string file;
  std::vector<std::string> says;  // substrings of the message
};

void expect_one_line_error(const fs::path& path, const std::string& msg, const std::vector<std::string>& says) {
  SCOPED_TRACE(path.filename().string() + " -> " + msg);
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  EXPECT_EQ(msg.find('\r'), std::string::npos);
  EXPECT_EQ(msg.rfind(path.string(), 0), 0u) << "the message must start with the file";
  for (const auto& s : says) EXPECT_NE(msg.find(s), std::string::npos) << "missing: " << s;
}

TEST(BadInput, TokenizerJson) {
  const Case cases[] = {
      {"bad_decoder_strip_empty_content.json", {"decoder Strip", "\"content\" must be one character"}},
      {"bad_decoder_metaspace_empty_replacement.json", {"decoder Metaspace", "\"replacement\" must be one character"}},
      {"bad_post_processor_negative_id.json", {"special_tokens.<s>.ids", "id -7 is not a token id", "0 to 3"}},
      {"bad_post_processor_id_above_2p32.json", {"id 4294967298 is not a token id"}},
      {"bad_post_processor_id_past_vocab.json", {"BertProcessing", "\"cls\"", "id 9 is not a token id"}},
      {"bad_added_token_id_int_max.json", {"added_tokens", "token id 2147483647 is out of range [0, 16777216)"}},
      {"bad_added_token_id_bool.json", {"added_tokens", "key \"id\" has the wrong type (got boolean, expected an integer)"}},
      {"bad_vocab_id_near_2p31.json", {"vocab entry \"ab\" has id 2147483000 out of range"}},
      {"bad_merge_with_newline.json", {"merges[0] \"a\\nonebit: error: b c\" is not two tokens"}},
      {"bad_regex_with_newline.json", {"regex /(\\nonebit: error: x/ does not compile"}},
      {"bad_vocab_key_newline.json", {"vocab entry \"a\\nb\" has a non-integer id \"x\""}},
      {"bad_component_type_newline.json", {"unsupported normalizer type \"Evil\\nType\""}},
      {"bad_number_1e999.json", {"not valid JSON", "number overflow", "1e999"}},
      {"bad_dropout_wrong_type.json", {"key \"dropout\" has the wrong type (got string, expected a number)"}},
      {"bad_decoder_strip_negative_start.json", {"key \"start\" is out of range (got -1)"}},
      {"bad_deep_nesting.json", {"not valid JSON (nested deeper than 256 levels)"}},
  };
  for (const auto& c : cases) {
    const fs::path p = kCorpus / "tokenizer_json" / c.file;
    ASSERT_TRUE(fs::exists(p)) << p;
    expect_one_line_error(p, error_of([&] { data::load_hf_tokenizer(p); }), c.says);
  }
}

TEST(BadInput, ConfigJson) {
  const Case cases[] = {
      {"bad_number_1e999.json", {"not valid JSON", "1e999"}},
      {"bad_key_newline.json", {"unknown key \"vocab\\nonebit: error: size\""}},
      {"bad_hidden_act_newline.json", {"hidden_act", "(got \"gelu\\nonebit: error: fake\")"}},
      {"bad_precision_map_key_newline.json", {"quantization.precision_map.model.layers.0\\n.mlp.up_proj"}},
      {"bad_rope_theta_1e39.json", {"key \"rope_theta\" must be a finite number (got 1e+39)"}},
      {"bad_vocab_size_bool.json", {"key \"vocab_size\" must be an integer (got true)"}},
      {"bad_vocab_size_2p32.json", {"key \"vocab_size\" must be a positive integer (got 4294967553)"}},
  };
  for (const auto& c : cases) {
    const fs::path p = kCorpus / "config_json" / c.file;
    ASSERT_TRUE(fs::exists(p)) << p;
    expect_one_line_error(p, error_of([&] { model::load_model_config(p.string()); }), c.says);
  }
}

TEST(BadInput, SafetensorsFiles) {
  const Case cases[] = {
      {"bad_tensor_name_newline.safetensors", {"tensor \"w\\nonebit: error: x\"", "unsupported safetensors dtype \"F33\""}},
      {"bad_number_1e999.safetensors", {"corrupt safetensors header", "1e999"}},
      {"bad_metadata_key_newline.safetensors", {"__metadata__ value \"a\\nb\" is not a string"}},
      {"bad_deep_nesting.safetensors", {"nested deeper than 256 levels"}},
  };
  for (const auto& c : cases) {
    const fs::path p = kCorpus / "safetensors" / c.file;
    ASSERT_TRUE(fs::exists(p)) << p;
    expect_one_line_error(p, error_of([&] { formats::SafetensorsFile f(p); }), c.says);
  }
}

TEST(BadInput, GgufFiles) {
  const Case cases[] = {
      {"bad_truncated.gguf", {"tensor \"blk.0.attn_k.weight\"'s data", "runs past the end of the file"}},
      {"bad_tensor_name_newline.gguf", {"tensor \"token\\nembd.weight\" has unknown ggml type 99"}},
      {"bad_string_length_huge.gguf", {"metadata entry 0's key claims 4611686018427387904 bytes"}},
  };
  for (const auto& c : cases) {
    const fs::path p = kCorpus / "gguf" / c.file;
    ASSERT_TRUE(fs::exists(p)) << p;
    expect_one_line_error(p, error_of([&] {
                            formats::gguf::GgufReader r(p);
                            for (const auto& t : r.tensors()) r.read_f32(t);
                          }),
                          c.says);
  }
}

TEST(BadInput, TokensFiles) {
  const Case cases[] = {
      {"bad_truncated.tokens", {"truncated or corrupt"}},
      {"bad_count_overflow.tokens", {"truncated or corrupt", "9223372036854775809 tokens"}},
      {"bad_width_3.tokens", {"token width 3 bytes is invalid"}},
      {"bad_id_out_of_range.tokens", {"token 1 has id 300, out of range for vocab size 300"}},
  };
  for (const auto& c : cases) {
    const fs::path p = kCorpus / "tokens_file" / c.file;
    ASSERT_TRUE(fs::exists(p)) << p;
    expect_one_line_error(p, error_of([&] { data::TokenFile(p).validate(); }), c.says);
  }
}

// `1e999` in any JSON file read through read_json_file (config.json, trainer_state.json,
// tokenizer_config.json) names the file instead of printing nlohmann's bare out_of_range message.
TEST(BadInput, JsonFilesWithHugeNumbersOrDirectories) {
  for (const char* f : {"trainer_state/bad_number_1e999.json", "config_json/bad_number_1e999.json"}) {
    const fs::path p = kCorpus / f;
    expect_one_line_error(p, error_of([&] { read_json_file(p); }), {"not valid JSON", "number overflow parsing '1e999'"});
  }
  // A directory where config.json should be: the model dir loaders and read_json_file name it.
  const fs::path dir = fs::temp_directory_path() / cat("onebit-bad-input-", ::getpid());
  fs::create_directories(dir / "config.json");
  expect_one_line_error(dir / "config.json", error_of([&] { read_json_file(dir / "config.json"); }), {"is a directory"});
  expect_one_line_error(dir / "config.json", error_of([&] { model::load_model_config(dir.string()); }), {"is a directory"});
  fs::create_directories(dir / "tok" / "tokenizer.json");
  expect_one_line_error(dir / "tok" / "tokenizer.json",
                        error_of([&] { data::load_hf_tokenizer(dir / "tok" / "tokenizer.json"); }), {"is a directory"});
  fs::remove_all(dir);
}

// Integers are taken only when they are integers of the right range: nlohmann alone would turn
// true into 1, 2.5 into 2 and 2^32 - 5 into -5.
TEST(BadInput, JsonGetChecksKindAndRange) {
  const json j = json::parse(R"({"b": true, "f": 2.5, "big": 4294967291, "neg": -1, "inf": 1e300, "s": "x"})");
  auto msg = [&](auto get) { return error_of(get); };
  EXPECT_NE(msg([&] { json_get<int32_t>(j, "b", "f.json"); }).find("has the wrong type (got boolean, expected an integer)"), std::string::npos);
  EXPECT_NE(msg([&] { json_get<int32_t>(j, "f", "f.json"); }).find("has the wrong type (got number, expected an integer)"), std::string::npos);
  EXPECT_NE(msg([&] { json_get<int32_t>(j, "big", "f.json"); }).find("is out of range (got 4294967291)"),
            std::string::npos);
  EXPECT_NE(msg([&] { json_get<uint64_t>(j, "neg", "f.json"); }).find("is out of range (got -1)"), std::string::npos);
  EXPECT_NE(msg([&] { json_get<float>(j, "inf", "f.json"); }).find("must be a finite number"), std::string::npos);
  EXPECT_NE(msg([&] { json_get<bool>(j, "s", "f.json"); }).find("has the wrong type (got string, expected true or false)"), std::string::npos);
  EXPECT_EQ(json_get<int64_t>(j, "big", "f.json"), 4294967291);
  EXPECT_EQ(json_get<double>(j, "inf", "f.json"), 1e300);
  EXPECT_EQ(json_get<int32_t>(j, "neg", "f.json"), -1);
}

}  // namespace
}  // namespace onebit
