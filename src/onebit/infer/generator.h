#pragma once
// Prefill + decode loop over a Runtime: feeds a prompt after what the KV cache already holds (chat
// keeps it between turns), samples until EOS, a stop string, max_tokens, a full context or the
// callback says stop, and streams text as soon as it is final: complete UTF-8, and not the possible
// start of a stop string.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "onebit/core/rng.h"
#include "onebit/data/tokenizer.h"
#include "onebit/infer/runtime.h"
#include "onebit/infer/sampler.h"

namespace onebit::infer {

struct GenerateOptions {
  int max_tokens = 200;
  SamplingOptions sampling;
  std::vector<std::string> stop;  // generation ends before the first of these (not printed)
};

enum class StopReason { MaxTokens, Eos, StopString, ContextFull, Interrupted };
const char* to_string(StopReason r);

struct GenerateResult {
  std::string text;  // everything streamed
  std::vector<int32_t> tokens;  // generated ids (EOS or a stop token excluded)
  bool last_unfed = false;      // tokens.back() is not in the KV cache yet (feed it before more text)
  int prompt_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;
  StopReason reason = StopReason::MaxTokens;
};

// Text held back until it is final; a stop string ends it. Pure string logic, tested on its own.
class StopStringStream {
 public:
  explicit StopStringStream(std::vector<std::string> stop) : stop_(std::move(stop)) {}
  // `text` is the whole decoded output so far (it only grows, except that its last UTF-8 sequence
  // may be incomplete). Returns the newly final part; sets stopped() when a stop string appeared.
  std::string update(const std::string& text);
  std::string finish(const std::string& text);  // the rest, at the end of generation
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stop_;
  size_t emitted_ = 0;
  bool stopped_ = false;
};

// Bytes of a trailing UTF-8 sequence that is not complete yet.
size_t incomplete_utf8_tail(std::string_view s);

class Generator {
 public:
  Generator(Runtime& rt, const data::Tokenizer& tok) : rt_(rt), tok_(tok) {}
  // on_text gets each final piece; returning false stops (StopReason::Interrupted). A prompt that
  // does not fit the context is an error naming --ctx-size.
  GenerateResult generate(std::span<const int32_t> prompt, const GenerateOptions& opt, Rng& rng,
                          const std::function<bool(std::string_view)>& on_text);

 private:
  Runtime& rt_;
  const data::Tokenizer& tok_;
  std::vector<float> logits_;
  std::vector<int32_t> history_;
};

}  // namespace onebit::infer
