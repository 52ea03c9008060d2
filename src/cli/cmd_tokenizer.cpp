// onebit tokenizer encode | decode: inspect the ids a tokenizer produces (like llama.cpp's
// llama-tokenize). `tokenizer train` is attached from cmd_tokenizer_train.cpp.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/data_cli_options.h"
#include "onebit/core/error.h"
#include "onebit/core/fs.h"
#include "onebit/data/tokenizer.h"

namespace onebit::cli {
namespace {

struct EncodeArgs {
  std::string tokenizer;
  std::string text;
  std::string file;
  bool show_pieces = false;
  bool add_special = false;
};

struct DecodeArgs {
  std::string tokenizer;
  std::vector<std::string> ids;
  bool skip_special = false;
};

std::string read_stdin() {
  std::string s((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  return s;
}

// Shows a piece on one line: control characters and bytes that are not valid UTF-8 are escaped.
std::string printable(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c == '\\') out += "\\\\";
    else if (c < 0x20 || c == 0x7F) out += cat("\\x", "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]);
    else if (c < 0x80) out += static_cast<char>(c);
    else {
      size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
      bool ok = n > 0 && i + n <= s.size();
      for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
      if (ok) {
        out.append(s, i, n);
        i += n - 1;
      } else {
        out += cat("\\x", "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]);
      }
    }
  }
  return out;
}

void run_encode(const EncodeArgs& a) {
  if (!a.text.empty() && !a.file.empty()) fail("--text and --file are exclusive; give one (or neither to read stdin)");
  auto tok = data::load_tokenizer(a.tokenizer);
  std::string text = !a.text.empty() ? a.text : !a.file.empty() ? read_file(a.file) : read_stdin();
  std::vector<int32_t> ids = tok->encode(text, a.add_special);
  std::string out;
  if (a.show_pieces) {
    for (int32_t id : ids) out += cat(id, '\t', printable(tok->id_to_piece(id)), '\n');
  } else {
    for (size_t i = 0; i < ids.size(); ++i) out += cat(i ? " " : "", ids[i]);
    out += '\n';
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
}

std::vector<int32_t> parse_ids(const std::vector<std::string>& words, const data::Tokenizer& tok) {
  std::vector<int32_t> ids;
  for (const std::string& w : words) {
    // Accept "1 2 3", "1,2,3" and "[1, 2, 3]" (the Python list form).
    std::string cur;
    auto flush = [&] {
      if (cur.empty()) return;
      size_t used = 0;
      long long v = 0;
      try {
        v = std::stoll(cur, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != cur.size()) fail("decode: \"", cur, "\" is not a token id");
      if (v < 0 || v >= tok.vocab_size()) fail("decode: id ", v, " is out of range [0, ", tok.vocab_size(), ")");
      ids.push_back(static_cast<int32_t>(v));
      cur.clear();
    };
    for (char c : w) {
      if (c == ' ' || c == ',' || c == '[' || c == ']' || c == '\n' || c == '\t' || c == '\r') flush();
      else cur += c;
    }
    flush();
  }
  return ids;
}

void run_decode(const DecodeArgs& a) {
  auto tok = data::load_tokenizer(a.tokenizer);
  std::vector<std::string> words = a.ids;
  if (words.empty()) words.push_back(read_stdin());
  std::vector<int32_t> ids = parse_ids(words, *tok);
  std::string text = tok->decode(ids, a.skip_special);
  std::fwrite(text.data(), 1, text.size(), stdout);
}

}  // namespace

void add_tokenizer_command(CLI::App& app) {
  CLI::App* tk = app.add_subcommand("tokenizer", "Inspect, encode, decode and train tokenizers");
  tk->require_subcommand(1);

  auto enc = std::make_shared<EncodeArgs>();
  CLI::App* e = tk->add_subcommand(
      "encode",
      "Print the token ids of a text, space-separated on one line (with --show-pieces: one\n"
      "\"id<TAB>piece\" line per token). The text comes from --text, --file or standard input.\n"
      "Text that is not valid UTF-8 is repaired first (each bad sequence becomes U+FFFD).");
  add_tokenizer_option(e, enc->tokenizer, true);
  e->add_option("--text", enc->text, "the text to encode (otherwise --file, otherwise standard input)");
  e->add_option("--file,-f", enc->file, "read the text to encode from this file");
  e->add_flag("--show-pieces", enc->show_pieces,
              "print one line per token: its id, a tab, and its text (newlines, tabs and stray bytes escaped)");
  e->add_flag("--add-special", enc->add_special,
              "apply the tokenizer's post-processor, e.g. prepend BOS (HF add_special_tokens=True)");
  e->callback([enc] { run_encode(*enc); });

  auto dec = std::make_shared<DecodeArgs>();
  CLI::App* d = tk->add_subcommand(
      "decode",
      "Print the text of token ids exactly as decoded (no newline is added, so encode | decode\n"
      "reproduces the input). Ids come from the arguments or standard input, separated by spaces,\n"
      "commas or newlines; a Python list such as [15496, 995] also works.");
  add_tokenizer_option(d, dec->tokenizer, true);
  d->add_option("ids", dec->ids, "token ids to decode (none: read them from standard input)");
  d->add_flag("--skip-special", dec->skip_special,
              "leave out special tokens such as <|endoftext|> (HF skip_special_tokens=True)");
  d->callback([dec] { run_decode(*dec); });

  add_tokenizer_train_subcommand(*tk);
}

}  // namespace onebit::cli
