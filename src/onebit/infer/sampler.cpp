#include "onebit/infer/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "onebit/core/error.h"

namespace onebit::infer {

void check_sampling_options(const SamplingOptions& opt) {
  // Written as !(ok) so that NaN, which fails every comparison, is refused too.
  if (!(std::isfinite(opt.temperature) && opt.temperature >= 0.0f))
    fail("--temperature must be a finite number >= 0 (got ", opt.temperature, ")");
  if (opt.top_k < 0) fail("--top-k must be >= 0 (got ", opt.top_k, ")");
  if (!(opt.top_p > 0.0f && opt.top_p <= 1.0f)) fail("--top-p must be in (0, 1] (got ", opt.top_p, ")");
  if (!(opt.min_p >= 0.0f && opt.min_p < 1.0f)) fail("--min-p must be in [0, 1) (got ", opt.min_p, ")");
  if (!(std::isfinite(opt.repeat_penalty) && opt.repeat_penalty > 0.0f))
    fail("--repeat-penalty must be a finite number > 0 (got ", opt.repeat_penalty, ")");
  if (opt.repeat_last_n < 0) fail("--repeat-last-n must be >= 0 (got ", opt.repeat_last_n, ")");
}

int32_t sample_token(std::span<const float> logits_in, const SamplingOptions& opt, Rng& rng,
                     std::span<const int32_t> history) {
  OB_CHECK(!logits_in.empty(), "sample_token: empty logits");
  check_sampling_options(opt);
  const int n = static_cast<int>(logits_in.size());
  std::span<const float> logits = logits_in;
  std::vector<float> penalized;
  if (opt.repeat_penalty != 1.0f && opt.repeat_last_n > 0 && !history.empty()) {
    penalized.assign(logits_in.begin(), logits_in.end());
    const size_t from = history.size() > (size_t)opt.repeat_last_n ? history.size() - opt.repeat_last_n : 0;
    std::vector<bool> seen((size_t)n, false);
    for (size_t i = from; i < history.size(); ++i) {
      const int32_t id = history[i];
      if (id < 0 || id >= n || seen[id]) continue;  // each token once, however often it repeats
      seen[id] = true;
      float& l = penalized[id];
      l = l > 0 ? l / opt.repeat_penalty : l * opt.repeat_penalty;
    }
    logits = penalized;
  }
  // Ties break by id so that sampling is a pure function of (logits, rng state).
  auto better = [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  if (opt.temperature <= 0.0f) {
    int best = 0;
    for (int i = 1; i < n; ++i)
      if (better(i, best)) best = i;
    return best;
  }
  std::vector<int> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  int keep = (opt.top_k > 0 && opt.top_k < n) ? opt.top_k : n;
  std::partial_sort(idx.begin(), idx.begin() + keep, idx.end(), better);
  idx.resize(static_cast<size_t>(keep));
  std::vector<double> p(idx.size());
  const double mx = logits[idx[0]];
  double sum = 0;
  for (size_t i = 0; i < idx.size(); ++i) {
    p[i] = std::exp((logits[idx[i]] - mx) / opt.temperature);
    sum += p[i];
  }
  size_t cut = idx.size();
  if (opt.top_p > 0.0f && opt.top_p < 1.0f) {
    double c = 0;
    for (size_t i = 0; i < idx.size(); ++i) {
      c += p[i] / sum;
      if (c >= opt.top_p) {
        cut = i + 1;
        break;
      }
    }
  }
  if (opt.min_p > 0.0f) {
    // p is sorted descending and p[0] is the most likely token's (unnormalised) weight.
    size_t m = 1;
    while (m < cut && p[m] >= opt.min_p * p[0]) ++m;
    cut = m;
  }
  double total = 0;
  for (size_t i = 0; i < cut; ++i) total += p[i];
  double u = rng.uniform_double() * total;
  for (size_t i = 0; i < cut; ++i) {
    u -= p[i];
    if (u < 0) return idx[i];
  }
  return idx[cut - 1];
}

}  // namespace onebit::infer
