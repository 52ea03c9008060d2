// Fuzzes config.json (model/config.cpp): load_model_config on the file, and for a config it
// accepts, to_json() must load back to the same config.
#include "fuzz_engine.h"
#include "onebit/core/error.h"
#include "onebit/model/config.h"

int main(int argc, char** argv) {
  using namespace onebit;
  fuzz::Target t;
  t.name = "config_json";
  t.input_name = "config.json";
  t.run = [](const fs::path& input) {
    model::ModelConfig c = model::load_model_config(input.string());
    const json saved = c.to_json();
    const json again = model::ModelConfig::from_json(saved, "round trip").to_json();
    if (saved != again) throw std::logic_error("to_json() of an accepted config does not load back to itself");
    c.num_parameters();
  };
  return fuzz::fuzz_main(argc, argv, t);
}
