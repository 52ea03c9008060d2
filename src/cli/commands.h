#pragma once
// Each subcommand lives in its own cmd_<name>.cpp and registers itself on the root app.
#include <CLI/CLI.hpp>

namespace onebit::cli {

void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_chat_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_tokenizer_command(CLI::App& app);  // tokenizer encode | decode | train
void add_tokenize_command(CLI::App& app);
void add_parquet_to_jsonl_command(CLI::App& app);
void add_hub_command(CLI::App& app);  // hub ls | download
void add_import_command(CLI::App& app);  // import hf | gguf
void add_export_command(CLI::App& app);  // export --format gguf | hf
void add_stack_stream_command(CLI::App& app);  // stack-stream [manifest]
// `onebit import gguf` lives in cmd_import_gguf.cpp; cmd_import.cpp attaches it.
void add_import_gguf_subcommand(CLI::App& import_app);
// `onebit tokenizer train` lives in cmd_tokenizer_train.cpp; cmd_tokenizer.cpp attaches it.
void add_tokenizer_train_subcommand(CLI::App& tokenizer_app);

// onebit's whole command line on `app`: --version, one subcommand required, and every subcommand
// above (commands.cpp). main.cpp parses with it; tests/cli/help_test.cpp walks its options.
void add_all_commands(CLI::App& app);

}  // namespace onebit::cli
