// onebit tokenize: text / JSONL files → a .tokens file (and optionally a .val.tokens split).
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/data_cli_options.h"
#include "onebit/core/error.h"
#include "onebit/core/log.h"
#include "onebit/data/tokenize_files.h"
#include "onebit/data/tokenizer.h"

namespace onebit::cli {

namespace {

struct TokenizeArgs {
  std::string tokenizer = "byte";
  data::TokenizeOptions opts;
  std::string output;
};

void run_tokenize(TokenizeArgs& a) {
  auto tok = data::load_tokenizer(a.tokenizer);
  a.opts.output = a.output;
  a.opts.progress = true;
  data::TokenizeResult r = data::tokenize_files(a.opts, *tok);
  double mb = static_cast<double>(r.input_bytes) / 1e6;
  std::printf("tokenized %llu documents, %.1f MB of text → %llu tokens in %.2f s (%.1f MB/s, %.2f bytes/token)\n",
              static_cast<unsigned long long>(r.documents), mb, static_cast<unsigned long long>(r.tokens), r.seconds,
              r.seconds > 0 ? mb / r.seconds : 0.0,
              r.tokens ? static_cast<double>(r.input_bytes) / static_cast<double>(r.tokens) : 0.0);
  std::printf("wrote %s (%llu tokens, tokenizer hash %s)\n", r.train_path.c_str(),
              static_cast<unsigned long long>(r.train_tokens), data::hash_hex(tok->hash()).c_str());
  if (!r.val_path.empty())
    std::printf("wrote %s (%llu tokens, the last %llu documents)\n", r.val_path.c_str(),
                static_cast<unsigned long long>(r.val_tokens), static_cast<unsigned long long>(r.val_documents));
  if (r.read.bad_lines) std::printf("skipped %llu bad lines\n", static_cast<unsigned long long>(r.read.bad_lines));
  if (r.read.replaced_utf8)
    std::printf("replaced %llu invalid UTF-8 sequences\n", static_cast<unsigned long long>(r.read.replaced_utf8));
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize",
      "Tokenize text into a .tokens file for training.\n"
      "Inputs: .txt/.md (one document per file), .jsonl, .jsonl.gz, .jsonl.zst (one document per line),\n"
      "directories (searched recursively for those, in sorted order) and - (stdin: JSONL if it starts\n"
      "with '{', else text). The tokenizer's end-of-text token follows every document. Documents are\n"
      "tokenized in parallel and written in input order; the header records the tokenizer's hash.");
  add_tokenizer_option(cmd, args->tokenizer, false);
  add_text_input_options(cmd, "--input,-i", args->opts.inputs, args->opts.text_field, args->opts.skip_bad_lines,
                         args->opts.threads, "tokenizer threads (0 = all cores)");
  cmd->add_option("--output,-o", args->output, "output .tokens file (written atomically)")->required();
  cmd->add_option("--val-fraction", args->opts.val_fraction,
                  "also write <output stem>.val.tokens holding about this fraction of the tokens: the last\n"
                  "documents, split at a document boundary (0 = no split)")
      ->check(CLI::Range(0.0, 0.999))
      ->capture_default_str();
  cmd->callback([args] { run_tokenize(*args); });
}

}  // namespace onebit::cli
