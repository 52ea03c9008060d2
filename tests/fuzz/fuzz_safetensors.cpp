// Fuzzes safetensors files (formats/safetensors): open (header, dtypes, shapes, offsets), then read
// every tensor's bytes and every F32 tensor through read_f32.
#include "fuzz_engine.h"
#include "onebit/core/error.h"
#include "onebit/formats/safetensors.h"

int main(int argc, char** argv) {
  using namespace onebit;
  fuzz::Target t;
  t.name = "safetensors";
  t.input_name = "model.safetensors";
  t.run = [](const fs::path& input) {
    formats::SafetensorsFile f(input);
    size_t total = 0;
    for (const auto& ti : f.tensors()) {
      auto b = f.bytes(ti.name);
      if (b.size() != ti.nbytes()) throw std::logic_error("bytes() and nbytes() disagree for " + ti.name);
      total += b.size();
      if (ti.dtype == formats::DType::F32) {
        std::vector<float> out(ti.numel());
        f.read_f32(ti.name, ti.shape, out);
      }
      if (!f.contains(ti.name) || &f.info(ti.name) != &ti) throw std::logic_error("index lost tensor " + ti.name);
    }
    if (total > fs::file_size(input)) throw std::logic_error("tensors claim more bytes than the file holds");
  };
  return fuzz::fuzz_main(argc, argv, t);
}
