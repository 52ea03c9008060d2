#include "onebit/modeldir/gguf_tokenizer.h"

#include <vector>

#include "onebit/core/error.h"

namespace onebit::modeldir {

namespace {

// The Llama-3 pre-tokenizer regex as tokenizer.json spells it.
constexpr const char* kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

constexpr int32_t kTokenNormal = 1, kTokenControl = 3, kTokenUserDefined = 4;

bool is_type(const json& j, const char* t) { return j.is_object() && j.value("type", "") == t; }

// llama.cpp's pre-tokenizer name for a tokenizer.json pre_tokenizer, or "" when none fits.
std::string pre_tokenizer_name(const json& pre) {
  if (is_type(pre, "ByteLevel")) return "gpt-2";
  if (is_type(pre, "Sequence") && pre.contains("pretokenizers") && pre["pretokenizers"].size() == 2) {
    const json& a = pre["pretokenizers"][0];
    const json& b = pre["pretokenizers"][1];
    if (is_type(a, "Split") && a.contains("pattern") && a["pattern"].value("Regex", "") == kLlama3Regex &&
        is_type(b, "ByteLevel") && !b.value("use_regex", true))
      return "llama-bpe";
  }
  return "";
}

}  // namespace

void add_gguf_tokenizer(formats::gguf::GgufWriter& w, const std::string& tokenizer_json, int vocab_size,
                        const std::string& where) {
  const json tok = parse_json_text(tokenizer_json, where);
  OB_CHECK(tok.is_object() && tok.contains("model") && is_type(tok["model"], "BPE"), where,
           ": only byte-level BPE tokenizers can go into GGUF (model.type is not \"BPE\")");
  OB_CHECK(!tok.contains("normalizer") || tok["normalizer"].is_null(), where,
           ": a tokenizer with a normalizer cannot go into GGUF as a gpt2-style vocabulary");
  const std::string pre = pre_tokenizer_name(tok.value("pre_tokenizer", json()));
  OB_CHECK(!pre.empty(), where,
           ": pre_tokenizer is neither ByteLevel nor the Llama-3 Split+ByteLevel, which llama.cpp cannot name");
  std::vector<std::string> tokens(static_cast<size_t>(vocab_size));
  std::vector<int32_t> types(static_cast<size_t>(vocab_size), 0);
  auto put = [&](const std::string& text, int64_t id, int32_t type) {
    OB_CHECK(id >= 0 && id < vocab_size, where, ": token \"", printable(text), "\" has id ", id,
             ", outside the model's vocab_size ", vocab_size);
    tokens[static_cast<size_t>(id)] = text;
    types[static_cast<size_t>(id)] = type;
  };
  for (const auto& [text, id] : tok["model"].at("vocab").items()) put(text, id.get<int64_t>(), kTokenNormal);
  int64_t eos = -1, bos = -1;
  if (tok.contains("added_tokens"))
    for (const auto& a : tok["added_tokens"]) {
      const std::string text = a.at("content").get<std::string>();
      const bool special = a.value("special", false);
      put(text, a.at("id").get<int64_t>(), special ? kTokenControl : kTokenUserDefined);
      if (text == "<|endoftext|>" || text == "</s>" || text == "<|end_of_text|>") eos = a.at("id").get<int64_t>();
      if (text == "<s>" || text == "<|begin_of_text|>") bos = a.at("id").get<int64_t>();
    }
  // Ids the tokenizer never produces (a model vocab padded past the tokenizer's) still need a text:
  // unused control tokens, as llama.cpp's converters write them.
  for (size_t i = 0; i < tokens.size(); ++i)
    if (types[i] == 0) {
      tokens[i] = cat("[PAD", i, "]");
      types[i] = kTokenControl;
    }
  std::vector<std::string> merges;
  if (tok["model"].contains("merges"))
    for (const auto& m : tok["model"]["merges"]) {
      if (m.is_string()) {
        merges.push_back(m.get<std::string>());
      } else {
        OB_CHECK(m.is_array() && m.size() == 2, where, ": model.merges holds an entry that is not a pair");
        merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
      }
    }
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", pre);
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  w.set_string_array("tokenizer.ggml.merges", merges);
  if (eos >= 0) w.set_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(eos));
  // GPT-2 convention: <|endoftext|> opens documents too; onebit adds no BOS (add_bos_token false).
  if (bos >= 0 || eos >= 0) w.set_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(bos >= 0 ? bos : eos));
  w.set_bool("tokenizer.ggml.add_bos_token", false);
  w.set_bool("tokenizer.ggml.add_eos_token", false);
  w.set_string("tokenizer.huggingface.json", tokenizer_json);
}

std::string tokenizer_json_from_gguf(const formats::gguf::GgufReader& r) {
  if (r.has("tokenizer.huggingface.json")) return r.get_string("tokenizer.huggingface.json");
  const std::string file = r.path().string();
  const std::string model = r.get_string("tokenizer.ggml.model");
  OB_CHECK(model == "gpt2", file, ": tokenizer.ggml.model \"", printable(model),
           "\" cannot be rebuilt as a tokenizer.json (only \"gpt2\" byte-level BPE); pass --tokenizer");
  const std::string pre = r.has("tokenizer.ggml.pre") ? r.get_string("tokenizer.ggml.pre") : "gpt-2";
  const auto tokens = r.get_string_array("tokenizer.ggml.tokens");
  const auto types = r.has("tokenizer.ggml.token_type") ? r.get_int_array("tokenizer.ggml.token_type")
                                                          : std::vector<int64_t>(tokens.size(), kTokenNormal);
  OB_CHECK(types.size() == tokens.size(), file, ": tokenizer.ggml.token_type has ", types.size(), " entries for ",
           tokens.size(), " tokens");
  const auto merges = r.has("tokenizer.ggml.merges") ? r.get_string_array("tokenizer.ggml.merges")
                                                      : std::vector<std::string>{};
  json vocab = json::object(), added = json::array(), merge_list = json::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (types[i] == kTokenControl || types[i] == kTokenUserDefined) {
      added.push_back({{"id", i}, {"content", tokens[i]}, {"single_word", false}, {"lstrip", false},
                       {"rstrip", false}, {"normalized", types[i] == kTokenUserDefined},
                       {"special", types[i] == kTokenControl}});
    } else {
      OB_CHECK(!vocab.contains(tokens[i]), file, ": tokenizer.ggml.tokens holds \"", printable(tokens[i]), "\" twice");
      vocab[tokens[i]] = i;
    }
  }
  for (const auto& m : merges) {
    const size_t sp = m.find(' ');
    OB_CHECK(sp != std::string::npos && sp > 0 && sp + 1 < m.size(), file, ": tokenizer.ggml.merges entry \"",
             printable(m), "\" is not \"a b\"");
    merge_list.push_back(json::array({m.substr(0, sp), m.substr(sp + 1)}));
  }
  const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                           {"use_regex", true}};
  json pre_tok;
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") {
    json bl = byte_level;
    bl["use_regex"] = false;
    pre_tok = {{"type", "Sequence"},
               {"pretokenizers",
                json::array({{{"type", "Split"}, {"pattern", {{"Regex", kLlama3Regex}}}, {"behavior", "Isolated"},
                              {"invert", false}},
                             bl})}};
  } else {
    OB_CHECK(pre == "gpt-2" || pre == "default", file, ": tokenizer.ggml.pre \"", printable(pre),
             "\" cannot be rebuilt as a tokenizer.json (gpt-2 and llama-bpe can); pass --tokenizer");
    pre_tok = byte_level;
  }
  json tok = {{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens", added},
              {"normalizer", nullptr},
              {"pre_tokenizer", pre_tok},
              {"post_processor", nullptr},
              {"decoder", byte_level},
              {"model",
               {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
                {"ignore_merges", false}, {"vocab", vocab}, {"merges", merge_list}}}};
  return tok.dump();
}

}  // namespace onebit::modeldir
