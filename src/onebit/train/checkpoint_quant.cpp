#include "onebit/train/checkpoint_quant.h"

#include <cmath>
#include <string>

#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/train/schedule.h"

namespace onebit::train {

std::optional<model::QuantState> checkpoint_quant_state(const fs::path& dir) {
  const fs::path sp = dir / "trainer_state.json";
  if (!fs::exists(sp)) return std::nullopt;
  const std::string where = sp.string();
  const json state = read_json_file(sp);
  if (!state.is_object()) fail(where, ": not a JSON object");
  const json quant = json_get<json>(state, "quant", where);
  model::QuantState q;
  q.phase = quant_phase_from_string(json_get<std::string>(quant, "phase", where + ": quant"), where + ": quant.phase");
  q.k = json_get<float>(quant, "k", where + ": quant");
  if (q.phase == model::QuantPhase::Soft && !(std::isfinite(q.k) && q.k > 0))
    fail(where, ": quant.k must be a positive number in the soft phase (got ", q.k, ")");
  return q;
}

}  // namespace onebit::train
