// Fuzzes GGUF files (formats/gguf): open (header, metadata of every type, tensor infos, offsets),
// every typed getter on every key, and every tensor's bytes and, where onebit reads the type, its
// dequantized values.
#include "fuzz_engine.h"
#include "onebit/core/error.h"
#include "onebit/formats/gguf/dequantize.h"
#include "onebit/formats/gguf/reader.h"

int main(int argc, char** argv) {
  using namespace onebit;
  using namespace onebit::formats::gguf;
  fuzz::Target t;
  t.name = "gguf";
  t.input_name = "model.gguf";
  t.run = [](const fs::path& input) {
    GgufReader r(input);
    for (const auto& [key, v] : r.metadata()) {
      // Each getter either returns or throws onebit::Error for a value of another type.
      for (int g = 0; g < 4; ++g) {
        try {
          if (g == 0) r.get_string(key);
          if (g == 1) r.get_int(key);
          if (g == 2) r.get_float_array(key);
          if (g == 3) r.get_string_array(key);
        } catch (const Error& e) {
          fuzz::expect_one_line(e.what());
        }
      }
    }
    size_t total = 0;
    for (const auto& ti : r.tensors()) {
      auto b = r.bytes(ti);
      if (b.size() != ti.nbytes) throw std::logic_error("bytes() and nbytes disagree for " + ti.name);
      total += b.size();
      if (can_dequantize(ti.type) && ti.numel() <= (int64_t{1} << 24)) {
        const auto v = r.read_f32(ti);
        if (static_cast<int64_t>(v.size()) != ti.numel()) throw std::logic_error("read_f32 size for " + ti.name);
      }
      if (r.find_tensor(ti.name) != &ti) throw std::logic_error("index lost tensor " + ti.name);
    }
    if (total > fs::file_size(input)) throw std::logic_error("tensors claim more bytes than the file holds");
  };
  return fuzz::fuzz_main(argc, argv, t);
}
