#pragma once
// A Hugging Face tokenizer.json as llama.cpp's GGUF tokenizer metadata, and back. Only byte-level
// BPE ("gpt2" in llama.cpp's words) maps: tokenizer.ggml.tokens (by id), token_type (1 normal,
// 3 control for special added tokens, 4 user-defined for other added tokens), merges ("a b"),
// the pre-tokenizer by name (a ByteLevel pre-tokenizer → "gpt-2"; the Llama-3 Split regex followed by
// ByteLevel → "llama-bpe"), bos/eos ids, and the whole tokenizer.json under
// tokenizer.huggingface.json so that onebit's import gets back exactly the tokenizer it exported.
#include <string>

#include "onebit/core/json_util.h"
#include "onebit/formats/gguf/reader.h"
#include "onebit/formats/gguf/writer.h"

namespace onebit::modeldir {

// `where` names the tokenizer.json in errors (a tokenizer llama.cpp cannot express, a vocab larger
// than the model's, ids past vocab_size).
void add_gguf_tokenizer(formats::gguf::GgufWriter& w, const std::string& tokenizer_json, int vocab_size,
                        const std::string& where);

// The tokenizer.json a GGUF file describes: tokenizer.huggingface.json when present, else rebuilt
// from the gpt2-style metadata. Errors, naming the file and key, for a tokenizer it cannot rebuild
// (e.g. SentencePiece "llama" vocabularies: pass --tokenizer instead).
std::string tokenizer_json_from_gguf(const formats::gguf::GgufReader& r);

}  // namespace onebit::modeldir
