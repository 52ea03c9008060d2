#include "cli/commands.h"

namespace onebit::cli {

void add_all_commands(CLI::App& app) {
  app.require_subcommand(1);
  app.set_version_flag("--version", "onebit 0.1.0");
  add_train_command(app);
  add_eval_command(app);
  add_generate_command(app);
  add_chat_command(app);
  add_bench_command(app);
  add_info_command(app);
  add_tokenizer_command(app);
  add_tokenize_command(app);
  add_parquet_to_jsonl_command(app);
  add_hub_command(app);
  add_import_command(app);
  add_export_command(app);
  add_stack_stream_command(app);
}

}  // namespace onebit::cli
