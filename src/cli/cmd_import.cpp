// onebit import: checkpoints of other tools → onebit model dirs; one subcommand per source format
// (gguf: cmd_import_gguf.cpp).
#include "cli/commands.h"

namespace onebit::cli {

void add_import_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("import", "Convert a checkpoint of another tool into an onebit model dir.");
  cmd->require_subcommand(1);
  add_import_gguf_subcommand(*cmd);
}

}  // namespace onebit::cli
