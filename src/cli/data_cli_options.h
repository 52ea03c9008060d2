#pragma once
// Options shared by the data subcommands (tokenize, tokenizer encode/decode/train), so one flag
// means the same thing, with the same spelling and help, everywhere.
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace onebit::cli {

// --tokenizer/-t. Required unless the variable already holds a default (then it is shown).
inline CLI::Option* add_tokenizer_option(CLI::App* cmd, std::string& tokenizer, bool required) {
  CLI::Option* o = cmd->add_option("--tokenizer,-t", tokenizer,
                                   "\"byte\" (the built-in byte tokenizer), a tokenizer.json, or a model directory "
                                   "holding one");
  return required ? o->required() : o->capture_default_str();
}

// The training-text inputs and how to read them (documents.h): --input/-i (repeatable),
// --text-field, --skip-bad-lines, --threads.
inline void add_text_input_options(CLI::App* cmd, const std::string& input_names, std::vector<std::string>& inputs,
                                   std::string& text_field, bool& skip_bad_lines, int& threads,
                                   const std::string& threads_help) {
  cmd->add_option(input_names, inputs, "input files, directories (searched recursively) or - (stdin); repeatable")
      ->required()
      ->expected(1, -1);
  cmd->add_option("--text-field", text_field, "JSONL: the key holding each document's text")->capture_default_str();
  cmd->add_flag("--skip-bad-lines", skip_bad_lines,
                "skip (and count) JSONL lines that are malformed, lack the text field or are not UTF-8,\n"
                "and replace invalid UTF-8 in text files with U+FFFD; without it such input is an error\n"
                "naming file:line");
  cmd->add_option("--threads", threads, threads_help)->capture_default_str();
}

}  // namespace onebit::cli
