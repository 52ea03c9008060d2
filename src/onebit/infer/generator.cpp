#include "onebit/infer/generator.h"

#include <algorithm>
#include <chrono>

#include "onebit/core/error.h"

namespace onebit::infer {

const char* to_string(StopReason r) {
  switch (r) {
    case StopReason::MaxTokens:
      return "max tokens";
    case StopReason::Eos:
      return "end of sequence";
    case StopReason::StopString:
      return "stop string";
    case StopReason::ContextFull:
      return "context full";
    case StopReason::Interrupted:
      return "interrupted";
  }
  return "?";
}

size_t incomplete_utf8_tail(std::string_view s) {
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const unsigned char c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
    const size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

std::string StopStringStream::update(const std::string& text) {
  if (stopped_) return "";
  // The earliest stop string that now appears completely ends the text there.
  size_t cut = std::string::npos;
  for (const std::string& s : stop_) {
    if (s.empty()) continue;
    const size_t from = emitted_ > s.size() ? emitted_ - s.size() : 0;
    const size_t at = text.find(s, from);
    if (at != std::string::npos) cut = std::min(cut, at);
  }
  if (cut != std::string::npos) {
    stopped_ = true;
    const std::string out = cut > emitted_ ? text.substr(emitted_, cut - emitted_) : "";
    emitted_ = std::max(emitted_, cut);
    return out;
  }
  size_t ready = text.size() - incomplete_utf8_tail(text);
  // Hold back the longest suffix that is a proper prefix of a stop string.
  for (const std::string& s : stop_)
    for (size_t k = std::min(s.size() - (s.empty() ? 0 : 1), ready); k > 0; --k)
      if (text.compare(ready - k, k, s, 0, k) == 0) {
        ready = std::min(ready, text.size() - incomplete_utf8_tail(text) - k);
        break;
      }
  if (ready <= emitted_) return "";
  std::string out = text.substr(emitted_, ready - emitted_);
  emitted_ = ready;
  return out;
}

std::string StopStringStream::finish(const std::string& text) {
  if (stopped_ || text.size() <= emitted_) return "";
  std::string out = text.substr(emitted_);
  emitted_ = text.size();
  return out;
}

GenerateResult Generator::generate(std::span<const int32_t> prompt, const GenerateOptions& opt, Rng& rng,
                                   const std::function<bool(std::string_view)>& on_text) {
  using clock = std::chrono::steady_clock;
  check_sampling_options(opt.sampling);
  if (opt.max_tokens < 0) fail("--max-tokens must be >= 0 (got ", opt.max_tokens, ")");
  const int V = rt_.config().vocab_size;
  if ((size_t)rt_.position() + prompt.size() > (size_t)rt_.context())
    fail("the prompt has ", prompt.size(), " tokens but the context has room for ", rt_.context() - rt_.position(),
         rt_.position() ? " more" : "", " (--ctx-size ", rt_.context(), ")");
  if (rt_.position() == 0) history_.clear();
  GenerateResult res;
  res.prompt_tokens = (int)prompt.size();
  logits_.resize((size_t)V);
  // Stop strings that are one token of the vocabulary (chat templates' <|im_end|>, <|eot_id|>) are
  // special tokens that decoding skips: they stop by id.
  std::vector<int32_t> stop_ids;
  for (const std::string& s : opt.stop) {
    const std::vector<int32_t> ids = tok_.encode(s, false);
    if (ids.size() == 1) stop_ids.push_back(ids[0]);
  }
  const auto t0 = clock::now();
  if (!prompt.empty()) rt_.forward(prompt, logits_.data());
  history_.insert(history_.end(), prompt.begin(), prompt.end());
  const auto t1 = clock::now();
  res.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
  if (prompt.empty() && rt_.position() == 0) fail("generate: an empty prompt on an empty context has no logits");
  // Ids the tokenizer cannot produce (vocab padding) are never sampled.
  const size_t usable = (size_t)std::min<int32_t>(V, tok_.vocab_size());
  StopStringStream stream(opt.stop);
  bool fed_last = false;
  for (int i = 0; i < opt.max_tokens; ++i) {
    const int32_t next = sample_token(std::span<const float>(logits_.data(), usable), opt.sampling, rng, history_);
    if (tok_.eos_id() && next == *tok_.eos_id()) {
      res.reason = StopReason::Eos;
      break;
    }
    if (std::find(stop_ids.begin(), stop_ids.end(), next) != stop_ids.end()) {
      res.reason = StopReason::StopString;
      break;
    }
    res.tokens.push_back(next);
    fed_last = false;
    const std::string text = tok_.decode(res.tokens, true);
    const std::string piece = stream.update(text);
    if (!piece.empty()) {
      res.text += piece;
      if (!on_text(piece)) {
        res.reason = StopReason::Interrupted;
        break;
      }
    }
    if (stream.stopped()) {
      res.reason = StopReason::StopString;
      break;
    }
    if (i + 1 == opt.max_tokens) break;  // the last token needs no forward
    if (rt_.position() >= rt_.context()) {
      res.reason = StopReason::ContextFull;
      break;
    }
    rt_.forward(std::span<const int32_t>(&next, 1), logits_.data());
    history_.push_back(next);
    fed_last = true;
  }
  res.last_unfed = !res.tokens.empty() && !fed_last;
  if (res.reason == StopReason::MaxTokens || res.reason == StopReason::ContextFull || res.reason == StopReason::Eos) {
    const std::string rest = stream.finish(tok_.decode(res.tokens, true));
    if (!rest.empty()) {
      res.text += rest;
      on_text(rest);
    }
  }
  res.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return res;
}

}  // namespace onebit::infer
