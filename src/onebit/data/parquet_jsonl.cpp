#include "onebit/data/parquet_jsonl.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>

#include "onebit/core/error.h"
#include "onebit/core/progress.h"
#include "onebit/data/utf8.h"

namespace onebit::data {

namespace {

// Which bytes json.dumps escapes (ensure_ascii=False): control characters, '"' and '\\'.
struct EscapeTable {
  bool esc[256] = {};
  constexpr EscapeTable() {
    for (int c = 0; c < 0x20; ++c) esc[c] = true;
    esc[static_cast<unsigned char>('"')] = true;
    esc[static_cast<unsigned char>('\\')] = true;
  }
};
constexpr EscapeTable kEscape;

void escape_valid(std::string& out, std::string_view s) {
  static const char* hex = "0123456789abcdef";
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (!kEscape.esc[c]) continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default: {
        char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        out.append(u, 6);
      }
    }
  }
  out.append(s.data() + run, s.size() - run);
}

template <typename T>
T load(std::string_view v) {
  T x;
  std::memcpy(&x, v.data(), sizeof(T));
  return x;
}

void append_value(std::string& out, const parquet::ColumnInfo& c, std::string_view v, size_t& replaced) {
  using parquet::PhysicalType;
  char buf[32];
  switch (c.type) {
    case PhysicalType::ByteArray:
    case PhysicalType::FixedLenByteArray:
      replaced += append_json_string(out, v);
      return;
    case PhysicalType::Boolean:
      out += v[0] ? "true" : "false";
      return;
    case PhysicalType::Int32: {
      auto r = std::to_chars(buf, buf + sizeof buf, load<int32_t>(v));
      out.append(buf, r.ptr);
      return;
    }
    case PhysicalType::Int64: {
      auto r = std::to_chars(buf, buf + sizeof buf, load<int64_t>(v));
      out.append(buf, r.ptr);
      return;
    }
    case PhysicalType::Float:
      append_python_float(out, static_cast<double>(load<float>(v)));
      return;
    case PhysicalType::Double:
      append_python_float(out, load<double>(v));
      return;
    case PhysicalType::Int96:
      break;
  }
  fail("column \"", printable(c.name), "\": INT96 values have no JSON form");
}

}  // namespace

size_t append_json_string(std::string& out, std::string_view s) {
  out += '"';
  size_t replaced = 0;
  if (is_valid_utf8(s)) {
    escape_valid(out, s);
  } else {
    std::string fixed;
    replaced = replace_invalid_utf8(s, fixed);
    escape_valid(out, fixed);
  }
  out += '"';
  return replaced;
}

void append_python_float(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "Infinity" : "-Infinity";
    return;
  }
  // Shortest round-trip digits (what repr picks too), then Python's layout: fixed notation for
  // decimal exponents in [-4, 16), else d.ddde+XX with at least two exponent digits.
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(r.ptr - buf));
  bool neg = sci[0] == '-';
  if (neg) sci.remove_prefix(1);
  size_t e = sci.find('e');
  std::string digits;
  for (char ch : sci.substr(0, e))
    if (ch != '.') digits += ch;
  int exp = 0;
  std::from_chars(sci.data() + e + 1 + (sci[e + 1] == '+'), sci.data() + sci.size(), exp);
  if (neg) out += '-';
  if (exp >= 16 || exp < -4) {
    out += digits[0];
    if (digits.size() > 1) {
      out += '.';
      out.append(digits, 1);
    }
    out += 'e';
    out += exp < 0 ? '-' : '+';
    int a = exp < 0 ? -exp : exp;
    if (a < 10) out += '0';
    out += std::to_string(a);
  } else if (exp < 0) {
    out += "0.";
    out.append(static_cast<size_t>(-exp - 1), '0');
    out += digits;
  } else {
    size_t int_len = static_cast<size_t>(exp) + 1;
    if (digits.size() <= int_len) {
      out += digits;
      out.append(int_len - digits.size(), '0');
      out += ".0";
    } else {
      out.append(digits, 0, int_len);
      out += '.';
      out.append(digits, int_len);
    }
  }
}

size_t append_json_row(std::string& out, const std::vector<parquet::ColumnInfo>& columns,
                       const parquet::RowGroupData& rg, size_t row) {
  size_t replaced = 0;
  out += '{';
  for (size_t i = 0; i < columns.size(); ++i) {
    if (i) out += ", ";
    replaced += append_json_string(out, columns[i].name);
    out += ": ";
    const parquet::ColumnData& col = rg.columns[i];
    if (col.is_null(row)) out += "null";
    else append_value(out, columns[i], col.value(row), replaced);
  }
  out += "}\n";
  return replaced;
}

ParquetToJsonlResult parquet_to_jsonl(const fs::path& in, const fs::path& out, const std::vector<std::string>& columns,
                                      bool progress) {
  auto t0 = std::chrono::steady_clock::now();
  parquet::FileReader reader(in, columns);
  for (const parquet::ColumnInfo& c : reader.columns())
    if (c.type == parquet::PhysicalType::Int96)
      fail(printable(in.string()), ": column \"", printable(c.name), "\" is INT96, which has no JSON form");
  uint64_t total = 0;
  for (size_t g = 0; g < reader.num_row_groups(); ++g) total += reader.row_group_bytes(g);
  ParquetToJsonlResult res;
  AtomicFileWriter w(out);
  parquet::RowGroupData rg;
  std::string buf;
  std::unique_ptr<ProgressBar> bar;
  if (progress && total > (64u << 20)) bar = std::make_unique<ProgressBar>("parquet-to-jsonl", total, "MB/s", 1e-6);
  uint64_t done = 0;
  for (size_t g = 0; g < reader.num_row_groups(); ++g) {
    reader.read_row_group(g, rg);
    for (size_t row = 0; row < rg.num_rows; ++row) {
      res.replaced_utf8 += append_json_row(buf, reader.columns(), rg, row);
      if (buf.size() >= (1u << 20)) {
        w.write(buf);
        buf.clear();
      }
    }
    res.rows += rg.num_rows;
    ++res.row_groups;
    done += reader.row_group_bytes(g);
    if (bar) bar->update(done);
  }
  w.write(buf);
  res.bytes_written = w.bytes_written();
  w.commit();
  if (bar) bar->finish();
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace onebit::data
