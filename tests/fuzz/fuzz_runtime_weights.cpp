// Fuzzes the runtime's loading of a model dir (infer/model_weights.cpp, the packers and the runtime
// itself): a fixed config.json beside a mutated model.safetensors, loaded, packed and run on a few
// tokens, prefill and decode. Bad weights must end in onebit::Error, never a crash or a sanitizer
// report (the infer sources are instrumented here).
#include "fuzz_engine.h"
#include "onebit/core/error.h"
#include "onebit/infer/model_weights.h"
#include "onebit/infer/runtime.h"

int main(int argc, char** argv) {
  using namespace onebit;
  fuzz::Target t;
  t.name = "runtime_weights";
  t.input_name = "model/model.safetensors";
  t.setup = [](const fs::path& work) {
    fs::create_directories(work / "model");
    fs::copy_file(fs::path(ONEBIT_TEST_FIXTURES) / "oracle" / "gqa_qknorm_subln_swiglu" / "config.json",
                  work / "model" / "config.json", fs::copy_options::overwrite_existing);
  };
  t.run = [](const fs::path& input) {
    infer::RuntimeOptions opt;
    opt.prefill_chunk = 3;
    infer::Runtime rt(infer::load_model_dir_weights(input.parent_path()), opt);
    std::vector<float> logits((size_t)rt.config().vocab_size * 5);
    const std::vector<int32_t> tokens = {1, 7, 3, 0, 2};
    rt.forward(tokens, logits.data(), true);
    rt.forward(std::vector<int32_t>{4}, logits.data());
  };
  return fuzz::fuzz_main(argc, argv, t);
}
