#include "onebit/train/evaluate.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "onebit/core/error.h"
#include "onebit/core/progress.h"

namespace onebit::train {

EvalResult evaluate(model::Transformer& model, data::ValSource& val, int B, int T, int64_t max_batches,
                    bool show_progress, ScoredPositions positions) {
  const int pos_end = positions.end < 0 ? T : std::min(positions.end, T);
  const bool all_positions = positions.begin <= 0 && pos_end == T;
  std::vector<int32_t> in(static_cast<size_t>(B) * T), tg(in.size());
  double nats = 0;
  EvalResult r;
  const uint64_t pass_batches = (val.eval_windows(T) + static_cast<uint64_t>(B) - 1) / static_cast<uint64_t>(B);
  const uint64_t todo = max_batches > 0 ? std::min(pass_batches, static_cast<uint64_t>(max_batches)) : pass_batches;
  std::optional<ProgressBar> bar;
  if (show_progress) bar.emplace("eval", todo, "batch/s");
  model.set_training(false);
  val.reset_eval();
  model.take_losses();  // nothing of an earlier forward may mix in
  std::vector<uint64_t> scored;  // target tokens of each forward, to weight its mean loss
  for (int64_t b = 0; max_batches <= 0 || b < max_batches; ++b) {
    data::EvalBatch eb = val.next_eval(B, T, in.data(), tg.data());
    if (eb.rows == 0) break;
    ++r.batches;
    if (bar) bar->update(static_cast<uint64_t>(r.batches));
    if (!all_positions)  // unscored positions get the ignored target -1, and leave the counts
      for (int row = 0; row < eb.rows; ++row)
        for (int j = 0; j < T; ++j) {
          int32_t& t = tg[static_cast<size_t>(row) * T + j];
          if ((j >= positions.begin && j < pos_end) || t < 0) continue;
          --eb.target_tokens;
          eb.target_bytes -= val.token_bytes(t);
          t = -1;
        }
    if (eb.target_tokens == 0) continue;
    model.forward_async(in.data(), tg.data(), eb.rows, T);
    scored.push_back(eb.target_tokens);
    r.tokens += eb.target_tokens;
    r.bytes += eb.target_bytes;
  }
  if (bar) bar->finish();
  // The losses waited on the backend: one download for the whole evaluation.
  const std::vector<float> losses = model.take_losses();
  for (size_t i = 0; i < losses.size(); ++i)
    nats += static_cast<double>(losses[i]) * static_cast<double>(scored[i]);
  r.whole_pass = static_cast<uint64_t>(r.batches) >= pass_batches;
  model.set_training(true);
  if (r.tokens == 0) fail("evaluation: the held-out data has no windows of ", T, " tokens to score");
  r.loss = nats / static_cast<double>(r.tokens);
  r.perplexity = std::exp(r.loss);
  r.nats_per_byte = r.bytes ? nats / static_cast<double>(r.bytes) : NAN;
  r.bits_per_byte = r.nats_per_byte / std::log(2.0);
  return r;
}

}  // namespace onebit::train
