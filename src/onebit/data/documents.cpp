#include "onebit/data/documents.h"

#include <simdjson.h>

#include <algorithm>
#include <cstring>

#include "onebit/core/error.h"
#include "onebit/core/log.h"
#include "onebit/data/tokenizer.h"
#include "onebit/data/utf8.h"

namespace onebit::data {
namespace {

constexpr size_t kReadChunk = 1 << 20;
constexpr size_t kTextPiece = 1 << 20;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string strip_compression(std::string name) {
  for (const char* ext : {".gz", ".zst", ".zstd"})
    if (ends_with(name, ext)) return name.substr(0, name.size() - std::strlen(ext));
  return name;
}

// Buffered reads with an exact decompressed offset; supports pushing back a sniffed prefix.
class Buffered {
 public:
  explicit Buffered(std::unique_ptr<ByteStream> s) : s_(std::move(s)) {}
  // Ensures at least one unread byte; false at end.
  bool fill() {
    if (pos_ < buf_.size()) return true;
    buf_.resize(kReadChunk);
    size_t got = s_->read(buf_.data(), buf_.size());
    buf_.resize(got);
    pos_ = 0;
    return got > 0;
  }
  // Reads one line (without '\n') into out; false at end. offset() advances past the '\n'.
  bool line(std::string& out) {
    out.clear();
    bool any = false;
    while (fill()) {
      any = true;
      const char* b = buf_.data() + pos_;
      size_t avail = buf_.size() - pos_;
      const void* nl = std::memchr(b, '\n', avail);
      if (nl) {
        size_t n = static_cast<const char*>(nl) - b;
        out.append(b, n);
        pos_ += n + 1;
        offset_ += n + 1;
        return true;
      }
      out.append(b, avail);
      pos_ += avail;
      offset_ += avail;
    }
    return any && !out.empty();
  }
  // Appends up to n bytes to out; returns bytes appended (0 at end).
  size_t take(std::string& out, size_t n) {
    if (!fill()) return 0;
    size_t k = std::min(n, buf_.size() - pos_);
    out.append(buf_.data() + pos_, k);
    pos_ += k;
    offset_ += k;
    return k;
  }
  void skip_to(uint64_t target, const std::string& name) {
    while (offset_ < target) {
      if (!fill()) fail(name, ": cannot resume at byte ", target, ": the file has only ", offset_, " bytes");
      size_t k = static_cast<size_t>(std::min<uint64_t>(target - offset_, buf_.size() - pos_));
      pos_ += k;
      offset_ += k;
    }
  }
  const char* peek_data() const { return buf_.data() + pos_; }
  size_t peek_size() const { return buf_.size() - pos_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t o) { offset_ = o; }
  ByteStream& stream() { return *s_; }

 private:
  std::unique_ptr<ByteStream> s_;
  std::vector<char> buf_;
  size_t pos_ = 0;
  uint64_t offset_ = 0;
};

class JsonlReader final : public DocumentReader {
 public:
  JsonlReader(std::unique_ptr<Buffered> in, const ReadOptions& opts, uint64_t line)
      : in_(std::move(in)), opts_(opts), name_(in_->stream().name()),
        source_(std::make_shared<const std::string>(name_)), line_no_(line - 1) {}

  bool next(Document& doc) override {
    while (true) {
      uint64_t start = in_->offset();
      if (!in_->line(line_)) {
        stats_.bytes = in_->offset();
        return false;
      }
      ++line_no_;
      if (start == 0 && line_.compare(0, 3, "\xEF\xBB\xBF") == 0) line_.erase(0, 3);  // UTF-8 byte order mark
      if (is_blank(line_)) {
        ++stats_.empty;
        continue;
      }
      std::string_view text;
      std::string problem = parse(text);
      if (problem.empty() && text.empty()) {
        ++stats_.empty;
        continue;
      }
      if (!problem.empty()) {
        if (opts_.skip_bad_lines) {
          ++stats_.bad_lines;
          continue;
        }
        fail(name_, ":", line_no_, ": ", problem, " (use --skip-bad-lines to skip such lines)");
      }
      doc.text.assign(text.data(), text.size());
      doc.offset = start;
      doc.next_offset = in_->offset();
      doc.line = line_no_;
      doc.ends_document = true;
      doc.source = source_;
      ++stats_.documents;
      stats_.bytes = in_->offset();
      return true;
    }
  }
  const ReadStats& stats() const override { return stats_; }
  uint64_t raw_bytes_read() const override { return in_->stream().raw_bytes_read(); }
  const std::string& name() const override { return name_; }

 private:
  static bool is_blank(const std::string& s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
  }
  // Returns "" and sets text on success; else a description of what is wrong with the line.
  std::string parse(std::string_view& text) {
    padded_.reserve(line_.size() + simdjson::SIMDJSON_PADDING);
    padded_.assign(line_);
    simdjson::dom::element root;
    auto err = parser_.parse(padded_.data(), padded_.size(), false).get(root);
    if (err == simdjson::UTF8_ERROR) return "invalid UTF-8";
    if (err) return cat("malformed JSON (", simdjson::error_message(err), ")");
    simdjson::dom::object obj;
    if (root.get_object().get(obj)) return "line is not a JSON object";
    simdjson::dom::element field;
    if (obj.at_key(opts_.text_field).get(field))
      return cat("missing text field \"", opts_.text_field, "\" (choose another with --text-field)");
    if (field.get_string().get(text))
      return cat("text field \"", opts_.text_field, "\" is not a string (got ", type_name(field.type()), ")");
    return "";
  }
  static const char* type_name(simdjson::dom::element_type t) {
    switch (t) {
      case simdjson::dom::element_type::ARRAY: return "array";
      case simdjson::dom::element_type::OBJECT: return "object";
      case simdjson::dom::element_type::NULL_VALUE: return "null";
      case simdjson::dom::element_type::BOOL: return "bool";
      case simdjson::dom::element_type::STRING: return "string";
      default: return "number";
    }
  }

  std::unique_ptr<Buffered> in_;
  ReadOptions opts_;
  std::string name_;
  std::shared_ptr<const std::string> source_;
  std::string line_, padded_;
  simdjson::dom::parser parser_;
  uint64_t line_no_;
  ReadStats stats_;
};

class TextReader final : public DocumentReader {
 public:
  TextReader(std::unique_ptr<Buffered> in, const ReadOptions& opts, uint64_t line)
      : in_(std::move(in)), opts_(opts), name_(in_->stream().name()),
        source_(std::make_shared<const std::string>(name_)), line_no_(line) {}

  bool next(Document& doc) override {
    // Fill pending_ until it holds a split point past kTextPiece, or the input ends.
    size_t cut = std::string::npos;
    bool eof = false;
    while (true) {
      if (opts_.split_text && pending_.size() >= kTextPiece) {
        cut = find_cut(std::max(kTextPiece, scanned_));
        if (cut != std::string::npos) break;
        scanned_ = pending_.size();
      }
      if (in_->take(pending_, kReadChunk) == 0) {
        eof = true;
        break;
      }
    }
    if (eof) {
      if (pending_.empty()) {
        stats_.bytes = in_->offset();
        if (!delivered_any_) ++stats_.empty;
        return false;
      }
      cut = pending_.size();
    }
    doc.offset = pending_offset_;
    doc.next_offset = pending_offset_ + cut;
    doc.line = line_no_;
    doc.ends_document = eof;
    doc.source = source_;
    std::string_view piece(pending_.data(), cut);
    size_t bad = find_invalid_utf8(piece);
    if (bad != std::string_view::npos) {
      if (!opts_.skip_bad_lines)
        fail(name_, ":", line_no_ + std::count(piece.begin(), piece.begin() + static_cast<long>(bad), '\n'),
             ": invalid UTF-8 at byte ", pending_offset_ + bad, " (use --skip-bad-lines to replace it with U+FFFD)");
      stats_.replaced_utf8 += replace_invalid_utf8(piece, doc.text);
    }
    line_no_ += std::count(piece.begin(), piece.end(), '\n');
    if (bad != std::string_view::npos) {
      pending_.erase(0, cut);
    } else if (cut == pending_.size()) {
      doc.text.swap(pending_);  // a whole file read as one document is not copied again
      pending_.clear();
    } else {
      doc.text.assign(piece);
      pending_.erase(0, cut);
    }
    pending_offset_ += cut;
    scanned_ = 0;
    ++stats_.documents;
    stats_.bytes = pending_offset_;
    delivered_any_ = true;
    return true;
  }
  const ReadStats& stats() const override { return stats_; }
  uint64_t raw_bytes_read() const override { return in_->stream().raw_bytes_read(); }
  const std::string& name() const override { return name_; }
  void set_start(uint64_t offset) { pending_offset_ = offset; }

 private:
  // First line start (is_line_start_cut) at or after `from`.
  size_t find_cut(size_t from) const {
    const std::string_view text(pending_);
    for (size_t i = std::max<size_t>(from, 2); i + 1 < text.size(); ++i)
      if (text[i - 1] == '\n' && is_line_start_cut(text, i)) return i;
    return std::string::npos;
  }

  std::unique_ptr<Buffered> in_;
  ReadOptions opts_;
  std::string name_;
  std::shared_ptr<const std::string> source_;
  std::string pending_;
  uint64_t pending_offset_ = 0;
  size_t scanned_ = 0;  // pending_ has no split point before here
  uint64_t line_no_;
  bool delivered_any_ = false;
  ReadStats stats_;
};

class MultiReader final : public DocumentReader {
 public:
  MultiReader(std::vector<fs::path> paths, const ReadOptions& opts) : paths_(std::move(paths)), opts_(opts) {}
  bool next(Document& doc) override {
    while (true) {
      if (!cur_) {
        if (i_ >= paths_.size()) return false;
        cur_ = open_documents(paths_[i_++], opts_);
      }
      if (cur_->next(doc)) {
        ++stats_.documents;
        return true;
      }
      const ReadStats& s = cur_->stats();
      if (s.documents == 0) log_warn(cur_->name(), ": no text (empty file, or every line skipped)");
      stats_.bad_lines += s.bad_lines;
      stats_.replaced_utf8 += s.replaced_utf8;
      stats_.empty += s.empty;
      stats_.bytes += s.bytes;
      raw_done_ += cur_->raw_bytes_read();
      cur_.reset();
    }
  }
  const ReadStats& stats() const override { return stats_; }
  uint64_t raw_bytes_read() const override { return raw_done_ + (cur_ ? cur_->raw_bytes_read() : 0); }
  const std::string& name() const override { return cur_ ? cur_->name() : name_; }

 private:
  std::vector<fs::path> paths_;
  ReadOptions opts_;
  size_t i_ = 0;
  std::unique_ptr<DocumentReader> cur_;
  ReadStats stats_;
  uint64_t raw_done_ = 0;
  std::string name_ = "<inputs>";
};

}  // namespace

InputFormat input_format_of(const fs::path& path) {
  return ends_with(strip_compression(path.filename().string()), ".jsonl") ? InputFormat::Jsonl : InputFormat::Text;
}

std::unique_ptr<DocumentReader> open_documents(const fs::path& path, const ReadOptions& opts, uint64_t start_offset,
                                               uint64_t start_line) {
  auto in = std::make_unique<Buffered>(open_byte_stream(path));
  InputFormat fmt = input_format_of(path);
  if (path == "-") {
    fmt = InputFormat::Text;
    while (in->fill()) {
      const char* p = in->peek_data();
      size_t n = in->peek_size(), i = 0;
      while (i < n && (p[i] == ' ' || p[i] == '\n' || p[i] == '\r' || p[i] == '\t')) ++i;
      if (i < n) {
        fmt = p[i] == '{' ? InputFormat::Jsonl : InputFormat::Text;
        break;
      }
      std::string discard;  // an all-blank first chunk: consume it, keep counting lines
      in->take(discard, n);
      start_line += std::count(discard.begin(), discard.end(), '\n');
    }
  }
  in->skip_to(start_offset, path.string());
  if (fmt == InputFormat::Jsonl) return std::make_unique<JsonlReader>(std::move(in), opts, start_line);
  auto r = std::make_unique<TextReader>(std::move(in), opts, start_line);
  r->set_start(start_offset);
  return r;
}

std::unique_ptr<DocumentReader> open_documents(const std::vector<fs::path>& paths, const ReadOptions& opts) {
  return std::make_unique<MultiReader>(paths, opts);
}

std::vector<fs::path> expand_inputs(const std::vector<std::string>& inputs) {
  std::vector<fs::path> out;
  for (const std::string& in : inputs) {
    if (in == "-") {
      out.emplace_back("-");
      continue;
    }
    fs::path p(in);
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<fs::path> found;
      for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::recursive_directory_iterator();
           it.increment(ec)) {
        if (!it->is_regular_file()) continue;
        std::string base = strip_compression(it->path().filename().string());
        if (ends_with(base, ".txt") || ends_with(base, ".jsonl") || ends_with(base, ".md")) found.push_back(it->path());
      }
      if (ec) fail(in, ": cannot list directory: ", ec.message());
      if (found.empty()) fail(in, ": directory holds no .txt, .md or .jsonl files (optionally .gz / .zst)");
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else if (fs::exists(p, ec)) {
      out.push_back(p);
    } else {
      fail(in, ": no such file or directory");
    }
  }
  return out;
}

}  // namespace onebit::data
