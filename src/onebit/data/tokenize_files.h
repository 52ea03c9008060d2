#pragma once
// Text/JSONL files → .tokens (what `onebit tokenize` and the .txt dataset cache run).
// Every document is followed by the tokenizer's EOS (if it has one), so document boundaries
// survive in the token stream. Documents are tokenized in parallel and written in input order.
#include <cstdint>
#include <string>
#include <vector>

#include "onebit/core/fs.h"
#include "onebit/data/documents.h"
#include "onebit/data/tokenizer.h"

namespace onebit::data {

struct TokenizeOptions {
  std::vector<std::string> inputs;  // files, directories, "-"
  fs::path output;                  // out.tokens
  std::string text_field = "text";
  // > 0: the last documents holding about this fraction of the tokens go to <output stem>.val.tokens
  // (split at a document boundary; at least one document stays in each file).
  double val_fraction = 0.0;
  bool skip_bad_lines = false;
  int threads = 0;
  bool progress = true;
};

struct TokenizeResult {
  uint64_t documents = 0, tokens = 0, train_tokens = 0, val_tokens = 0, val_documents = 0;
  ReadStats read;
  uint64_t input_bytes = 0;  // decompressed text bytes
  double seconds = 0;
  fs::path train_path, val_path;  // val_path empty without val_fraction
};

TokenizeResult tokenize_files(const TokenizeOptions& opts, const Tokenizer& tok);

// Fails ("<flag> <output>: directory <dir> does not exist") unless the directory `output` goes into
// exists, so a mistyped output path is reported before the work, not after it.
void check_output_dir(const fs::path& output, const std::string& flag);

// Names an input in messages: "-" is "<stdin>".
std::string input_name(const std::string& input);

// The validation file that goes with a .tokens file: "data.tokens" → "data.val.tokens".
fs::path val_tokens_path(const fs::path& tokens_path);

}  // namespace onebit::data
