#pragma once
// A compiled PCRE2 pattern (UTF + UCP, JIT when available) with HF-style find_iter semantics.
// Safe to share between threads: match data and JIT stacks are per thread.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "onebit/core/json_util.h"

struct pcre2_real_code_8;

namespace onebit::data::hf {

struct Match {
  size_t start, end;
};

class Regex {
 public:
  // `where` names the file and component for the compile error message.
  Regex(const std::string& pattern, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // All non-overlapping matches in `text` (valid UTF-8), left to right. After an empty match the
  // search resumes one character later, as Oniguruma's find_iter (which HF uses) does.
  void find_all(std::string_view text, std::vector<Match>& out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  pcre2_real_code_8* code_ = nullptr;
  bool jit_ = false;
};

// Rewrites the shorthand classes of a pattern written for Oniguruma (the engine HF uses for
// tokenizer.json regexes) so PCRE2 matches the same characters: Oniguruma's Unicode \w also takes
// marks (M) and \s takes U+0085, which PCRE2 10.42's UCP classes do not.
std::string onig_to_pcre2(std::string_view pattern);

// Escapes `literal` so that it matches itself (HF's String patterns).
std::string regex_escape(std::string_view literal);

// An HF pattern object, {"String": literal} or {"Regex": pattern}, as a PCRE2 pattern.
std::string pattern_to_regex(const json& pattern, const std::string& where);

}  // namespace onebit::data::hf
