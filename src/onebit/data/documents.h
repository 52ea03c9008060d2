#pragma once
// Documents from training text files. Formats, chosen by file name:
//   *.jsonl, *.jsonl.gz, *.jsonl.zst  one JSON object per line; the document is its `text_field` string
//   anything else (*.txt, *.txt.gz, ...) plain UTF-8 text; the whole file is one document
//   "-"                               stdin: JSONL if its first non-blank byte is '{', else plain text
// With ReadOptions::split_text, plain text is delivered in pieces of about 1 MiB (so it can be
// tokenized in parallel), each cut at a line start (tokenizer.h, is_line_start_cut: after "G\n"
// with G an ASCII graphic character, before an ASCII letter). Only a tokenizer whose
// encodes_line_start_cuts_independently() is true encodes such pieces exactly like the whole file,
// so split_text must come from it; without it a text file is one document, read whole.
//
// Bad input (policy, the same for every consumer):
//   malformed JSON line, line that is not an object, missing or non-string text field, invalid UTF-8
//   → error "file:line: ..." — or, with skip_bad_lines, the line is skipped and counted in stats.
//   Invalid UTF-8 in plain text → error "file:line: ..." — or, with skip_bad_lines, each bad sequence
//   is replaced by U+FFFD and counted. Blank JSONL lines and empty texts are skipped silently
//   (counted in stats.empty).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "onebit/core/fs.h"
#include "onebit/data/byte_stream.h"

namespace onebit::data {

struct Document {
  std::string text;
  uint64_t offset = 0;       // decompressed byte offset where this line / piece starts
  uint64_t next_offset = 0;  // offset just past it: where reading resumes
  uint64_t line = 0;         // 1-based line number of its start
  bool ends_document = true; // false for a plain-text piece that the next piece continues
  std::shared_ptr<const std::string> source;  // the file's name, for errors found later (tokenizing)
};

struct ReadOptions {
  std::string text_field = "text";
  bool skip_bad_lines = false;
  // Cut plain text into pieces at line starts (see above); set it from the tokenizer's
  // encodes_line_start_cuts_independently().
  bool split_text = false;
};

struct ReadStats {
  uint64_t documents = 0;   // documents (or text pieces) delivered
  uint64_t bad_lines = 0;   // skipped lines (skip_bad_lines)
  uint64_t replaced_utf8 = 0;
  uint64_t empty = 0;       // blank lines / empty texts skipped
  uint64_t bytes = 0;       // decompressed bytes read
};

enum class InputFormat { Text, Jsonl };
InputFormat input_format_of(const fs::path& path);  // by name; "-" is decided by sniffing

class DocumentReader {
 public:
  virtual ~DocumentReader() = default;
  // Next non-empty document; false at end of input.
  virtual bool next(Document& doc) = 0;
  virtual const ReadStats& stats() const = 0;
  virtual uint64_t raw_bytes_read() const = 0;  // on-disk bytes so far (progress)
  virtual const std::string& name() const = 0;
};

// Opens one file. start_offset/start_line resume at a line start previously reported as
// Document::next_offset (compressed inputs are decompressed and discarded up to it).
std::unique_ptr<DocumentReader> open_documents(const fs::path& path, const ReadOptions& opts,
                                               uint64_t start_offset = 0, uint64_t start_line = 1);

// Several files one after another (each ends its own document).
std::unique_ptr<DocumentReader> open_documents(const std::vector<fs::path>& paths, const ReadOptions& opts);

// Expands directories (recursively, sorted by path) into the files they hold that look like
// training text (.txt, .jsonl, .md, and those with .gz/.zst); files and "-" are kept as given.
// Missing paths and directories without such files are errors naming them.
std::vector<fs::path> expand_inputs(const std::vector<std::string>& inputs);

}  // namespace onebit::data
