#pragma once
// The flags of the training option table (train/train_options.h) on a subcommand: `onebit train`
// takes them all, `onebit stack-stream` all but those a stream has no use for. One binding for both,
// so a flag behaves and reads the same wherever it is accepted.
#include <CLI/CLI.hpp>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "onebit/train/train_options.h"

namespace onebit::cli {

class TrainCliOptions {
 public:
  // Adds every option of train::train_options() whose key is not in `skip`, bound to the field of
  // *o, with the table's names, help text and shown default. `mark_required`: the table's required
  // options are required by the parser too (not for stack-stream, whose `manifest` subcommand runs
  // without them; it checks --output-dir itself).
  TrainCliOptions(CLI::App* sub, std::shared_ptr<train::TrainOptions> o, const std::set<std::string>& skip,
                  bool mark_required);
  // After parsing: the keys of the flags given on the command line go into o->explicit_flags (what a
  // resume may change and what it keeps from the checkpoint).
  void record_explicit_flags() const;

 private:
  std::shared_ptr<train::TrainOptions> o_;
  std::vector<std::pair<CLI::Option*, std::string>> named_;  // each option with its table key
};

}  // namespace onebit::cli
