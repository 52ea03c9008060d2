#include "onebit/data/hf/decoders.h"

#include "onebit/core/error.h"
#include "onebit/data/byte_level.h"
#include "onebit/data/hf/json_fields.h"
#include "onebit/data/hf/regex.h"
#include "onebit/data/hf/unicode.h"

namespace onebit::data::hf {

std::string utf8_lossy(std::string_view bytes) {
  std::string scratch;
  std::string_view v = sanitize_utf8(bytes, scratch);
  return std::string(v);
}

namespace {

class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes, tok;
    for (const auto& t : tokens) {
      // A token made only of byte-level symbols maps back to bytes; any other (an added token
      // such as "<|endoftext|>") is kept as its own UTF-8.
      if (symbols_to_bytes(t, tok)) bytes += tok;
      else bytes += t;
      tok.clear();
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string rep, bool strip_first) : rep_(std::move(rep)), strip_first_(strip_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& t = tokens[i];
      size_t pos = 0;
      while (pos < t.size()) {
        if (t.compare(pos, rep_.size(), rep_) == 0) {
          if (!(i == 0 && strip_first_)) out += ' ';
          pos += rep_.size();
        } else {
          out += t[pos++];
        }
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  std::string rep_;
  bool strip_first_;
};

class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (is_valid_utf8(pending)) out.push_back(pending);
      else
        for (size_t k = 0; k < pending.size(); ++k) out.emplace_back("\xEF\xBF\xBD");
      pending.clear();
    };
    for (auto& t : tokens) {
      int byte = parse_byte_token(t);
      if (byte >= 0) {
        pending += static_cast<char>(byte);
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }

 private:
  static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  static int parse_byte_token(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
    int hi = hexval(t[3]), lo = hexval(t[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      // Count in characters, as HF does, but content is one character so compare its bytes.
      size_t begin = 0, end = t.size();
      for (size_t k = 0; k < start_ && end - begin >= content_.size() && t.compare(begin, content_.size(), content_) == 0; ++k)
        begin += content_.size();
      for (size_t k = 0; k < stop_ && end - begin >= content_.size() &&
                         t.compare(end - content_.size(), content_.size(), content_) == 0;
           ++k)
        end -= content_.size();
      t = t.substr(begin, end - begin);
    }
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(const std::string& pattern, std::string content, const std::string& where)
      : re_(pattern, where), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<Match> matches;
    for (auto& t : tokens) {
      std::string_view v = t;
      std::string scratch;
      v = sanitize_utf8(v, scratch);
      re_.find_all(v, matches);
      if (matches.empty()) continue;
      std::string out;
      size_t prev = 0;
      for (const auto& m : matches) {
        out.append(v.substr(prev, m.start - prev));
        out += content_;
        prev = m.end;
      }
      out.append(v.substr(prev));
      t = std::move(out);
    }
  }

 private:
  Regex re_;
  std::string content_;
};

// HF BPEDecoder: the end-of-word suffix becomes a space, except after the last token.
class BpeSuffixDecoder final : public Decoder {
 public:
  explicit BpeSuffixDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      std::string out;
      size_t pos = 0;
      const std::string rep = i + 1 == tokens.size() ? "" : " ";
      while (!suffix_.empty() && pos < t.size()) {
        size_t hit = t.find(suffix_, pos);
        if (hit == std::string::npos) break;
        out.append(t, pos, hit - pos);
        out += rep;
        pos = hit + suffix_.size();
      }
      out.append(t, pos, std::string::npos);
      t = std::move(out);
    }
  }

 private:
  std::string suffix_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps) : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& d : steps_) d->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

}  // namespace

std::unique_ptr<Decoder> make_decoder(const json& j, const std::string& where) {
  std::string type = json_get<std::string>(j, "type", where + ": decoder");
  std::string w = where + ": decoder " + printable(type);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace") {
    // HF's replacement is a Rust char; an empty one would never advance the decode loop.
    std::string rep = json_get_or<std::string>(j, "replacement", "\xE2\x96\x81", w);
    single_char(rep, w + ": \"replacement\"");
    bool strip_first = true;
    if (j.contains("prepend_scheme") && !j["prepend_scheme"].is_null()) {
      const std::string scheme = json_get<std::string>(j, "prepend_scheme", w);
      if (scheme != "always" && scheme != "first" && scheme != "never")
        fail(w, ": unknown prepend_scheme \"", printable(scheme), "\"");
      strip_first = scheme != "never";
    } else {
      strip_first = json_get_or<bool>(j, "add_prefix_space", true, w);
    }
    return std::make_unique<MetaspaceDecoder>(rep, strip_first);
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    // HF's content is a Rust char; an empty one would never advance the strip loop.
    std::string content = json_get<std::string>(j, "content", w);
    single_char(content, w + ": \"content\"");
    return std::make_unique<StripDecoder>(std::move(content), json_get<size_t>(j, "start", w),
                                          json_get<size_t>(j, "stop", w));
  }
  if (type == "Replace") {
    return std::make_unique<ReplaceDecoder>(pattern_to_regex(json_get<json>(j, "pattern", w), w),
                                            json_get<std::string>(j, "content", w), w);
  }
  if (type == "BPEDecoder") return std::make_unique<BpeSuffixDecoder>(json_get_or<std::string>(j, "suffix", "</w>", w));
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Decoder>> steps;
    for (const auto& d : json_array(j, "decoders", w)) steps.push_back(make_decoder(d, where));
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  fail(where, ": unsupported decoder type \"", printable(type), "\"");
}

}  // namespace onebit::data::hf
