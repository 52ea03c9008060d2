#include "onebit/formats/parquet/file_reader.h"

#include <cstring>
#include <new>

#include "onebit/core/error.h"

namespace onebit::parquet {

namespace {

constexpr char kMagic[4] = {'P', 'A', 'R', '1'};

// A top-level field of the schema: a primitive column we can read, or something nested.
struct TopField {
  std::string name;
  bool flat = false;
  ColumnInfo info;
};

// Walks the depth-first schema list: fills the top-level fields and counts leaves, so each flat
// column knows its position among a row group's column chunks.
std::vector<TopField> top_level_fields(const std::vector<SchemaElement>& schema, const std::string& what) {
  std::vector<TopField> fields;
  size_t idx = 1, leaf = 0;
  // Skips the subtree at idx, counting its leaves; the depth bound keeps crafted input off the stack.
  auto skip_subtree = [&](auto&& self, int depth) -> void {
    if (depth > 100) fail(what, ": schema nested more than 100 levels");
    if (idx >= schema.size()) fail(what, ": schema ends inside a group (num_children lies)");
    const SchemaElement& e = schema[idx++];
    if (e.num_children == 0) {
      ++leaf;
      return;
    }
    for (int32_t c = 0; c < e.num_children; ++c) self(self, depth + 1);
  };
  const int32_t n = schema[0].num_children;
  for (int32_t c = 0; c < n; ++c) {
    if (idx >= schema.size()) fail(what, ": schema ends before the root's ", n, " children");
    const SchemaElement& e = schema[idx];
    TopField f;
    f.name = e.name;
    if (e.num_children == 0 && e.type && e.repetition.value_or(Repetition::Required) != Repetition::Repeated) {
      f.flat = true;
      f.info.name = e.name;
      f.info.type = *e.type;
      f.info.type_length = e.type_length;
      f.info.nullable = e.repetition == Repetition::Optional;
      f.info.leaf_index = leaf;
      if (*e.type == PhysicalType::FixedLenByteArray && e.type_length < 0)
        fail(what, ": column \"", printable(e.name), "\" has a negative type_length");
    }
    skip_subtree(skip_subtree, 0);
    fields.push_back(std::move(f));
  }
  if (idx != schema.size()) fail(what, ": schema has ", schema.size() - idx, " elements outside the root");
  return fields;
}

size_t count_leaves(const std::vector<SchemaElement>& schema) {
  size_t n = 0;
  for (size_t i = 1; i < schema.size(); ++i) n += schema[i].num_children == 0;
  return n;
}

}  // namespace

FileReader::FileReader(const fs::path& path, const std::vector<std::string>& columns)
    : map_(path), name_(printable(path.string())), data_(map_.data()), size_(map_.size()) {
  open(columns);
}

FileReader::FileReader(std::string name, const uint8_t* data, size_t size, const std::vector<std::string>& columns)
    : name_(printable(name)), data_(data), size_(size) {
  open(columns);
}

void FileReader::open(const std::vector<std::string>& columns) {
  // Layout: "PAR1" <column chunks> <footer: FileMetaData> <u32 footer length> "PAR1".
  if (size_ < 12) fail(name_, ": not a Parquet file (", size_, " bytes, shorter than the 12 of an empty one)");
  if (std::memcmp(data_ + size_ - 4, "PARE", 4) == 0) fail(name_, ": encrypted Parquet footers are not supported");
  if (std::memcmp(data_, kMagic, 4) != 0 || std::memcmp(data_ + size_ - 4, kMagic, 4) != 0)
    fail(name_, ": not a Parquet file (no PAR1 magic at the start and end; truncated?)");
  uint32_t footer_len;
  std::memcpy(&footer_len, data_ + size_ - 8, 4);
  if (footer_len > size_ - 12)
    fail(name_, ": footer length ", footer_len, " is larger than the file's ", size_ - 12, " bytes of content (truncated?)");
  data_end_ = size_ - 8 - footer_len;
  meta_ = parse_file_metadata(data_ + data_end_, footer_len, name_);

  std::vector<TopField> fields = top_level_fields(meta_.schema, name_);
  const size_t leaves = count_leaves(meta_.schema);
  auto list_names = [&] {
    std::string s;
    for (const TopField& f : fields) s += (s.empty() ? "" : ", ") + printable(f.name, 60);
    return s;
  };
  auto pick = [&](const TopField& f) {
    if (!f.flat)
      fail(name_, ": column \"", printable(f.name), "\" is nested or repeated; only flat columns can be read");
    selected_.push_back(f.info);
  };
  if (columns.empty()) {
    for (const TopField& f : fields) pick(f);
  } else {
    for (const std::string& c : columns) {
      const TopField* found = nullptr;
      for (const TopField& f : fields)
        if (f.name == c) found = &f;
      if (!found) fail(name_, ": no column \"", printable(c), "\" (columns: ", list_names(), ")");
      pick(*found);
    }
  }
  // Every row group must describe every leaf, with the path and type the schema gives it.
  for (size_t g = 0; g < meta_.row_groups.size(); ++g) {
    const RowGroup& rg = meta_.row_groups[g];
    if (rg.columns.size() != leaves)
      fail(name_, ": row group ", g, " has ", rg.columns.size(), " column chunks, the schema has ", leaves, " columns");
    for (const ColumnInfo& c : selected_) {
      const ColumnChunk& ch = rg.columns[c.leaf_index];
      if (ch.path.size() != 1 || ch.path[0] != c.name || ch.type != c.type)
        fail(name_, ": row group ", g, ": column chunk ", c.leaf_index, " does not match column \"", printable(c.name),
             "\" (path or type differ)");
    }
  }
  readers_.resize(selected_.size());
}

uint64_t FileReader::row_group_bytes(size_t g) const {
  uint64_t n = 0;
  for (const ColumnInfo& c : selected_) n += static_cast<uint64_t>(meta_.row_groups.at(g).columns[c.leaf_index].total_compressed_size);
  return n;
}

void FileReader::read_row_group(size_t g, RowGroupData& out) {
  if (g >= meta_.row_groups.size()) fail(name_, ": row group ", g, " of ", meta_.row_groups.size(), " does not exist");
  const RowGroup& rg = meta_.row_groups[g];
  out.columns.resize(selected_.size());
  out.num_rows = static_cast<size_t>(rg.num_rows);
  for (size_t i = 0; i < selected_.size(); ++i) {
    const ColumnInfo& c = selected_[i];
    std::string what = cat(name_, ": row group ", g, ", column \"", printable(c.name), "\"");
    try {
      readers_[i].read(data_, data_end_, rg.columns[c.leaf_index], c, rg.num_rows, out.columns[i], what);
    } catch (const std::bad_alloc&) {
      // Only a lying count or size in the file can ask for this much.
      fail(what, ": out of memory (the file claims sizes or counts this machine cannot hold)");
    }
  }
}

}  // namespace onebit::parquet
