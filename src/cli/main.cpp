// onebit: one binary for the whole life cycle of ternary / binary language models.
#include <omp.h>

#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "onebit/core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"onebit: train and run ternary (1.58-bit) and binary language models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "onebit 0.1.0");
  onebit::cli::add_train_command(app);
  onebit::cli::add_eval_command(app);
  onebit::cli::add_generate_command(app);
  onebit::cli::add_info_command(app);
  onebit::cli::add_tokenizer_command(app);
  onebit::cli::add_tokenize_command(app);
  onebit::cli::add_hub_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const onebit::Error& e) {
    std::fprintf(stderr, "onebit: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "onebit: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
