// onebit tokenizer train: learn a byte-level BPE tokenizer and write it as a tokenizer.json that
// both onebit and Python `tokenizers` load.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/data_cli_options.h"
#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/data/bpe_trainer.h"
#include "onebit/data/tokenize_files.h"

namespace onebit::cli {

namespace {

struct TrainTokArgs {
  data::BpeTrainOptions opts;
  std::string output;
  bool no_special = false;
};

void run_tokenizer_train(TrainTokArgs& a) {
  if (a.no_special) a.opts.special_tokens.clear();
  fs::path out(a.output);
  if (fs::is_directory(out)) out /= "tokenizer.json";
  data::check_output_dir(out, "--output");
  data::BpeTrainResult r = data::train_bpe(a.opts);
  write_json_atomic(out, r.tokenizer, 2);
  std::printf("trained byte-level BPE: vocab %u (%zu special + 256 bytes + %llu merges) from %llu documents, "
              "%.1f MB, %llu words (%llu unique)\n",
              r.vocab_size, a.opts.special_tokens.size(), static_cast<unsigned long long>(r.merges),
              static_cast<unsigned long long>(r.documents), static_cast<double>(r.text_bytes) / 1e6,
              static_cast<unsigned long long>(r.words), static_cast<unsigned long long>(r.unique_words));
  std::printf("time: counting %.2f s, merging %.2f s\n", r.count_seconds, r.merge_seconds);
  std::printf("wrote %s\n", out.c_str());
}

}  // namespace

void add_tokenizer_train_subcommand(CLI::App& tokenizer_app) {
  auto args = std::make_shared<TrainTokArgs>();
  CLI::App* cmd = tokenizer_app.add_subcommand(
      "train",
      "Train a byte-level BPE tokenizer (GPT-2 style: any text encodes, no unknown tokens) and write it\n"
      "as a Hugging Face tokenizer.json. Inputs as for `onebit tokenize` (.txt, .md, .jsonl[.gz|.zst],\n"
      "directories, -). Special tokens get ids 0..k-1, then the 256 byte symbols, then the merges.");
  add_text_input_options(cmd, "--files,--input,-i", args->opts.inputs, args->opts.text_field,
                         args->opts.skip_bad_lines, args->opts.threads, "threads for word counting (0 = all cores)");
  cmd->add_option("--vocab-size", args->opts.vocab_size, "target vocabulary size, special tokens included")
      ->capture_default_str();
  cmd->add_option("--min-frequency", args->opts.min_frequency,
                  "stop merging when the most frequent pair occurs fewer times than this")
      ->capture_default_str();
  cmd->add_option("--special-tokens", args->opts.special_tokens,
                  "special tokens, in id order (default: <|endoftext|>, the end-of-text token)")
      ->expected(1, -1);
  cmd->add_flag("--no-special-tokens", args->no_special, "no special tokens at all");
  cmd->add_option("--pattern", args->opts.pattern,
                  "pre-tokenization: gpt2, llama3, or a PCRE2 regex (HF Split, Isolated)")
      ->capture_default_str();
  cmd->add_option("--output,-o", args->output, "output tokenizer.json (or a directory to write it into)")->required();
  cmd->callback([args] { run_tokenizer_train(*args); });
}

}  // namespace onebit::cli
