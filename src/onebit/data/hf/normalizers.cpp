#include "onebit/data/hf/normalizers.h"

#include <vector>

#include "onebit/core/error.h"
#include "onebit/data/hf/json_fields.h"
#include "onebit/data/hf/regex.h"
#include "onebit/data/hf/unicode.h"

namespace onebit::data::hf {
namespace {

class FormNormalizer final : public Normalizer {
 public:
  explicit FormNormalizer(std::string form) : form_(std::move(form)) {}
  void apply(std::string& s) const override { s = normalize_form(s, form_); }
  bool keeps_line_start_cuts() const override { return true; }

 private:
  std::string form_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  void apply(std::string& s) const override { s = lowercase(s); }
  bool keeps_line_start_cuts() const override { return true; }
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string p) : prefix_(std::move(p)) {}
  void apply(std::string& s) const override {
    if (!s.empty()) s.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(const std::string& pattern, std::string content, const std::string& where)
      : re_(pattern, where), content_(std::move(content)) {}
  void apply(std::string& s) const override {
    thread_local std::vector<Match> matches;
    re_.find_all(s, matches);
    if (matches.empty()) return;
    std::string out;
    out.reserve(s.size());
    size_t prev = 0;
    for (const auto& m : matches) {
      out.append(s, prev, m.start - prev);
      out += content_;
      prev = m.end;
    }
    out.append(s, prev, std::string::npos);
    s = std::move(out);
  }

 private:
  Regex re_;
  std::string content_;
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void apply(std::string& s) const override {
    size_t begin = 0, end = s.size();
    if (left_) {
      while (begin < end) {
        size_t i = begin;
        if (!is_whitespace(next_codepoint(s, i))) break;
        begin = i;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
        size_t i = start;
        if (!is_whitespace(next_codepoint(s, i))) break;
        end = start;
      }
    }
    s = s.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  void apply(std::string& s) const override {
    for (const auto& n : steps_) n->apply(s);
  }
  bool keeps_line_start_cuts() const override {
    for (const auto& n : steps_)
      if (!n->keeps_line_start_cuts()) return false;
    return true;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const json& j, const std::string& where) {
  std::string type = json_get<std::string>(j, "type", where + ": normalizer");
  std::string w = where + ": normalizer " + printable(type);
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") return std::make_unique<FormNormalizer>(type);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(json_get<std::string>(j, "prepend", w));
  if (type == "Replace") {
    return std::make_unique<ReplaceNormalizer>(pattern_to_regex(json_get<json>(j, "pattern", w), w),
                                               json_get<std::string>(j, "content", w), w);
  }
  if (type == "Strip") {
    return std::make_unique<StripNormalizer>(json_get_or<bool>(j, "strip_left", true, w),
                                             json_get_or<bool>(j, "strip_right", true, w));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (const auto& s : json_array(j, "normalizers", w)) steps.push_back(make_normalizer(s, where));
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  fail(where, ": unsupported normalizer type \"", printable(type), "\"");
}

}  // namespace onebit::data::hf
