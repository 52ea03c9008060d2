#pragma once
// The quantization phase a checkpoint was trained (and evaluated) in, so that `onebit eval` on a
// checkpoint runs the model exactly as the trainer's eval at that step did.
#include <optional>

#include "onebit/core/fs.h"
#include "onebit/model/transformer.h"

namespace onebit::train {

// trainer_state.json's "quant" ({"phase": "fp"|"soft"|"hard", "k": sharpness}) of the checkpoint in
// `dir`: the state of the last step trained, which is the state the model was in for the eval
// logged at that step. nullopt when `dir` holds no trainer_state.json (a final model dir); a state
// file without a valid "quant" is an error naming the file and field.
std::optional<model::QuantState> checkpoint_quant_state(const fs::path& dir);

}  // namespace onebit::train
