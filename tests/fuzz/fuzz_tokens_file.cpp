// Fuzzes .tokens files (data/token_file): open (header checks), validate every id, read both ends.
#include "fuzz_engine.h"
#include "onebit/core/error.h"
#include "onebit/data/token_file.h"

int main(int argc, char** argv) {
  using namespace onebit;
  fuzz::Target t;
  t.name = "tokens_file";
  t.input_name = "data.tokens";
  t.run = [](const fs::path& input) {
    data::TokenFile f(input);
    f.validate();
    if (f.size() > 0) {
      const int32_t first = f.at(0), last = f.at(f.size() - 1);
      if (first < 0 || static_cast<uint32_t>(last) >= f.header().vocab_size) throw std::logic_error("validated id out of range");
      std::vector<int32_t> buf(std::min<uint64_t>(f.size(), 64));
      f.read(f.size() - buf.size(), buf.size(), buf.data());
    }
    int32_t x;
    f.read(f.size(), 0, &x);  // an empty read at the end is allowed
  };
  return fuzz::fuzz_main(argc, argv, t);
}
