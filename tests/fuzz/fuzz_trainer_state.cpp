// Fuzzes trainer_state.json through the public reader, train::load_checkpoint: a micro model's
// checkpoint is saved once, then each input replaces its trainer_state.json and is loaded back into
// the same model and optimizer (so whatever validation checkpoint.cpp does is exercised).
#include "fuzz_engine.h"
#include "onebit/core/error.h"
#include "onebit/model/transformer.h"
#include "onebit/train/adamw.h"
#include "onebit/train/checkpoint.h"

int main(int argc, char** argv) {
  using namespace onebit;
  const json micro = {{"vocab_size", 257},        {"hidden_size", 32},       {"num_hidden_layers", 1},
                      {"num_attention_heads", 2}, {"intermediate_size", 64}, {"max_position_embeddings", 16}};
  model::Transformer m(model::ModelConfig::from_json(micro, "micro config"));
  m.init_weights(1);
  std::vector<train::DecayRange> ranges;
  for (const auto& p : m.params_info()) ranges.push_back({p.offset, p.numel, p.decay});
  train::AdamW opt(m.num_params(), {}, ranges);

  fuzz::Target t;
  t.name = "trainer_state";
  t.input_name = "run/checkpoints/step-000001/trainer_state.json";
  t.setup = [&](const fs::path& work) {
    const json state = {{"step", 1}, {"optimizer", {{"name", "adamw"}, {"t", 1}}}};
    train::save_checkpoint(work / "run", 1, m, opt, state, "{}", 0);
  };
  t.run = [&](const fs::path& input) {
    const json state = train::load_checkpoint(input.parent_path(), m, opt);
    if (!state.is_object()) throw std::logic_error("load_checkpoint returned a state that is not an object");
  };
  return fuzz::fuzz_main(argc, argv, t);
}
