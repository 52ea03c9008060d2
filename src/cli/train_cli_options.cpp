#include "cli/train_cli_options.h"

#include <type_traits>
#include <variant>

namespace onebit::cli {

TrainCliOptions::TrainCliOptions(CLI::App* sub, std::shared_ptr<train::TrainOptions> o,
                                 const std::set<std::string>& skip, bool mark_required)
    : o_(std::move(o)) {
  for (const train::TrainOption& spec : train::train_options()) {
    if (skip.count(spec.key)) continue;
    CLI::Option* opt = std::visit(
        [&](auto member) -> CLI::Option* {
          auto& value = (*o_).*member;
          if constexpr (std::is_same_v<std::remove_reference_t<decltype(value)>, bool>)
            return sub->add_flag(spec.names, value, spec.help);
          else
            return sub->add_option(spec.names, value, spec.help);
        },
        spec.field);
    if (mark_required && spec.required) opt->required();
    if (spec.show_default) opt->capture_default_str();
    named_.emplace_back(opt, spec.key);
  }
}

void TrainCliOptions::record_explicit_flags() const {
  for (const auto& [opt, key] : named_)
    if (opt->count() > 0) o_->explicit_flags.insert(key);
}

}  // namespace onebit::cli
