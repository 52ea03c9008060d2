#pragma once
// The pre-tokenization regexes onebit knows by name (as written in tokenizer.json, Oniguruma
// syntax that PCRE2 with UTF/UCP reads the same), shared by the BPE trainer and the tokenizer.json
// loader, and which of them keep a line start cut (tokenizer.h, is_line_start_cut) a hard boundary.
#include <string_view>

namespace onebit::data {

inline constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
inline constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// True for the patterns above. Used with "Isolated" splitting, each cuts the text "...G\n" + "L..."
// (G ASCII graphic, L ASCII letter) into the same pieces as its two parts alone: the only
// alternatives that can take a '\n' are whitespace runs (and, in Llama 3 / Qwen 2, punctuation
// followed by [\r\n]*), none of them runs on into a letter, none looks behind, and at the lone '\n'
// after G both the whole text and its first part match exactly that '\n' (GPT-2's \s+(?!\S) fails
// before the letter and \s+ takes it; at the end of the part \s+(?!\S) takes the same '\n').
inline bool line_start_isolating_pattern(std::string_view pattern) {
  return pattern == kGpt2Pattern || pattern == kLlama3Pattern || pattern == kQwen2Pattern;
}

}  // namespace onebit::data
