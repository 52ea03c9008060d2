// onebit: one binary for the whole life cycle of ternary / binary language models.
#include <omp.h>

#include <cstdio>
#include <exception>
#include <string>

#include "cli/commands.h"
#include "onebit/core/error.h"

namespace {

// CLI11 messages may span lines (e.g. a list of excluded options); an error is one line.
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return onebit::printable(s, 500);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"onebit: train and run ternary (1.58-bit) and binary language models"};
  onebit::cli::add_all_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);  // --help: the help text on stdout, status 0
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // a subcommand's own non-zero status; it has reported already
  } catch (const CLI::ParseError& e) {
    // CLI11's own message, made one `onebit: error:` line like every other error.
    std::fprintf(stderr, "onebit: error: %s (see --help)\n", one_line(e.what()).c_str());
    return e.get_exit_code() != 0 ? e.get_exit_code() : 1;
  } catch (const onebit::Error& e) {
    std::fprintf(stderr, "onebit: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "onebit: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
