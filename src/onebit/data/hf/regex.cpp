#define PCRE2_CODE_UNIT_WIDTH 8
#include "onebit/data/hf/regex.h"

#include <pcre2.h>

#include "onebit/core/error.h"
#include "onebit/data/hf/unicode.h"

namespace onebit::data::hf {
namespace {

// Per-thread match state. A large JIT stack keeps patterns such as \s+(?!\S) working on very long
// whitespace runs, where the default 32 KiB machine stack would run out.
struct ThreadMatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  ThreadMatchState() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~ThreadMatchState() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(data);
  }
};

ThreadMatchState& thread_state() {
  thread_local ThreadMatchState state;
  return state;
}

}  // namespace

Regex::Regex(const std::string& pattern, const std::string& where) : pattern_(pattern) {
  int err = 0;
  PCRE2_SIZE err_off = 0;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                        &err, &err_off, nullptr);
  if (!code_) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    fail(where, ": regex /", printable(pattern), "/ does not compile at offset ", err_off, ": ",
         reinterpret_cast<const char*>(msg));
  }
  jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() { pcre2_code_free(code_); }

void Regex::find_all(std::string_view text, std::vector<Match>& out) const {
  out.clear();
  ThreadMatchState& st = thread_state();
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos <= text.size()) {
    // The whole text was validated once; re-checking at every call would be quadratic.
    int rc = jit_ ? pcre2_jit_match(code_, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, st.data, st.context)
                  : pcre2_match(code_, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, st.data, st.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0 && jit_) {
      // JIT resource limits: retry with the interpreter, which has no such stack.
      rc = pcre2_match(code_, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, st.data, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
    }
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      fail("regex /", printable(pattern_), "/: matching failed: ", reinterpret_cast<const char*>(msg));
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
    size_t s = ov[0], e = ov[1];
    out.push_back({s, e});
    if (e > s) {
      pos = e;
    } else {
      if (s >= text.size()) break;
      pos = s + utf8_len(static_cast<unsigned char>(text[s]));
    }
  }
}

std::string onig_to_pcre2(std::string_view p) {
  constexpr const char* kWord = R"(\p{L}\p{M}\p{Nd}\p{Pc})";
  constexpr const char* kSpace = R"(\s\x{85})";
  std::string out;
  out.reserve(p.size() + 32);
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char n = p[i + 1];
      ++i;
      if (n == 'w') out += in_class ? std::string(kWord) : cat("[", kWord, "]");
      else if (n == 's') out += in_class ? std::string(kSpace) : cat("[", kSpace, "]");
      else if (n == 'W' && !in_class) out += cat("[^", kWord, "]");
      else if (n == 'S' && !in_class) out += cat("[^", kSpace, "]");
      else {
        out += c;
        out += n;
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (c == '[' && in_class && i + 1 < p.size() && p[i + 1] == ':') {
      // A POSIX class such as [:alpha:] inside a bracket expression: copy it whole.
      size_t end = p.find(":]", i + 2);
      if (end != std::string_view::npos) {
        out.append(p.substr(i, end + 2 - i));
        i = end + 1;
        continue;
      }
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

std::string regex_escape(std::string_view literal) {
  // \Q..\E would break on a literal containing "\E"; escape each metacharacter instead.
  std::string out;
  for (char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}-/#").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

std::string pattern_to_regex(const json& pat, const std::string& where) {
  if (pat.is_object() && pat.contains("Regex")) return onig_to_pcre2(json_get<std::string>(pat, "Regex", where));
  if (pat.is_object() && pat.contains("String")) return regex_escape(json_get<std::string>(pat, "String", where));
  fail(where, ": \"pattern\" must be {\"String\": ...} or {\"Regex\": ...}");
}

}  // namespace onebit::data::hf
