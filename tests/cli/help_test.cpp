// Every subcommand's --help, through the real binary, shows every flag the option parser accepts,
// under each of its names, with its description; and every subcommand is listed with a description
// in its parent's --help. The parser is the one main.cpp builds (cli::add_all_commands), walked
// subcommand by subcommand, so a flag added without help text, or hidden from --help, fails here.
#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "cli_util.h"

using namespace onebit;
using namespace onebit::test;

namespace {

struct Command {
  std::vector<std::string> path;  // subcommand names below the root ({} for the root)
  CLI::App* app;
};

void walk(CLI::App* app, const std::vector<std::string>& path, std::vector<Command>& out) {
  out.push_back({path, app});
  for (CLI::App* sub : app->get_subcommands([](CLI::App*) { return true; })) {
    std::vector<std::string> p = path;
    p.push_back(sub->get_name());
    walk(sub, p, out);
  }
}

std::string joined(const std::vector<std::string>& path) {
  std::string s = "onebit";
  for (const auto& p : path) s += " " + p;
  return s;
}

bool flag_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; }

// `name` stands in `text` as a whole word of a flag (not inside a longer one: "-m" is not in "--model").
bool shows_name(const std::string& text, const std::string& name) {
  for (size_t at = text.find(name); at != std::string::npos; at = text.find(name, at + 1)) {
    const size_t end = at + name.size();
    if ((at == 0 || !flag_char(text[at - 1])) && (end == text.size() || !flag_char(text[end]))) return true;
  }
  return false;
}

// The start of a description's first line: what --help shows on the option's line, whatever the
// terminal width does to the rest.
std::string description_head(const std::string& d) { return d.substr(0, std::min<size_t>(d.find('\n'), 40)); }

TEST(Help, EveryCommandShowsEveryFlagItAcceptsWithADescription) {
  CLI::App root{"onebit"};
  cli::add_all_commands(root);
  std::vector<Command> commands;
  walk(&root, {}, commands);
  ASSERT_GE(commands.size(), 20u) << "the walk found too few subcommands";
  const fs::path dir = cli_temp_dir("help");
  size_t flags_checked = 0;
  for (const Command& c : commands) {
    SCOPED_TRACE(joined(c.path));
    std::vector<std::string> args = c.path;
    args.push_back("--help");
    const RunResult r = run(args, dir);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err, "");
    for (CLI::Option* opt : c.app->get_options()) {
      std::vector<std::string> names;
      for (const auto& l : opt->get_lnames()) names.push_back("--" + l);
      for (const auto& s : opt->get_snames()) names.push_back("-" + s);
      if (names.empty()) names.push_back(opt->get_single_name());  // a positional argument
      for (const auto& n : names) EXPECT_TRUE(shows_name(r.out, n)) << n << " is accepted but not in --help";
      EXPECT_FALSE(opt->get_description().empty()) << names[0] << " has no description";
      EXPECT_NE(r.out.find(description_head(opt->get_description())), std::string::npos)
          << names[0] << "'s description is not in --help";
      ++flags_checked;
    }
    for (CLI::App* sub : c.app->get_subcommands([](CLI::App*) { return true; })) {
      EXPECT_TRUE(shows_name(r.out, sub->get_name())) << "subcommand " << sub->get_name() << " is not listed";
      EXPECT_FALSE(sub->get_description().empty()) << "subcommand " << sub->get_name() << " has no description";
      EXPECT_NE(r.out.find(description_head(sub->get_description())), std::string::npos)
          << "subcommand " << sub->get_name() << "'s description is not in --help";
    }
  }
  EXPECT_GE(flags_checked, 150u) << "the walk found too few flags";
  fs::remove_all(dir);
}

}  // namespace
