#include "onebit/data/hf/bpe_model.h"

#include <atomic>
#include <cstdio>
#include <cstring>
#include <queue>

#include "onebit/core/error.h"
#include "onebit/data/hf/json_fields.h"
#include "onebit/data/hf/unicode.h"

namespace onebit::data::hf {
namespace {

std::atomic<uint64_t> next_instance{1};

// 64-bit hash of a short string, eight bytes at a time (words are a few bytes; std::hash is slower).
inline uint64_t word_hash(std::string_view s) {
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ (s.size() * 0xC2B2AE3D27D4EB4FULL);
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
    h ^= h >> 32;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, s.data() + i, s.size() - i);
  h = (h ^ tail) * 0xC4CEB9FE1A85EC53ULL;
  return h ^ (h >> 29);
}

// Per-thread word cache: pre-token → ids, open addressing over flat arrays so a hit touches one
// slot and the key bytes. Keyed by model instance so two tokenizers used from one thread never
// see each other's entries.
class WordCache {
 public:
  void prepare(uint64_t instance) {
    if (owner_ != instance || count_ >= kMaxWords) {
      owner_ = instance;
      slots_.assign(kInitialSlots, Slot{});
      keys_.clear();
      ids_.clear();
      count_ = 0;
    }
  }
  // Appends the cached ids of `word` to `out`; false on a miss.
  bool get(std::string_view word, uint64_t h, std::vector<int32_t>& out) const {
    size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.key_len == kEmpty) return false;
      if (s.hash == h && s.key_len == word.size() && std::memcmp(keys_.data() + s.key_off, word.data(), word.size()) == 0) {
        out.insert(out.end(), ids_.begin() + s.ids_off, ids_.begin() + s.ids_off + s.n_ids);
        return true;
      }
    }
  }
  void put(std::string_view word, uint64_t h, const int32_t* ids, size_t n) {
    if (n > 0xFFFF) return;
    if (2 * (count_ + 1) > slots_.size()) grow();
    Slot s{h, static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(ids_.size()),
           static_cast<uint16_t>(word.size()), static_cast<uint16_t>(n)};
    keys_.append(word);
    ids_.insert(ids_.end(), ids, ids + n);
    insert(s);
    ++count_;
  }

 private:
  // About 8 MB per thread when full; past it the cache starts over (HF keeps 10k words).
  static constexpr size_t kMaxWords = 1 << 17;
  static constexpr size_t kInitialSlots = 1 << 12;
  static constexpr uint16_t kEmpty = 0xFFFF;
  struct Slot {
    uint64_t hash = 0;
    uint32_t key_off = 0, ids_off = 0;
    uint16_t key_len = kEmpty, n_ids = 0;
  };
  void insert(const Slot& s) {
    size_t mask = slots_.size() - 1;
    size_t i = s.hash & mask;
    while (slots_[i].key_len != kEmpty) i = (i + 1) & mask;
    slots_[i] = s;
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.size() * 2, Slot{});
    for (const Slot& s : old)
      if (s.key_len != kEmpty) insert(s);
  }
  uint64_t owner_ = 0;
  std::vector<Slot> slots_;
  std::string keys_;
  std::vector<int32_t> ids_;
  size_t count_ = 0;
};
constexpr size_t kMaxCachedWordBytes = 256;
constexpr size_t kChunkWordsAbove = 24;

WordCache& cache_for(uint64_t instance) {
  thread_local WordCache cache;
  cache.prepare(instance);
  return cache;
}

std::pair<std::string, std::string> parse_merge(const json& m, const std::string& where, size_t index) {
  if (m.is_string()) {
    const std::string& s = m.get_ref<const std::string&>();
    size_t sp = s.find(' ');
    if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
      fail(where, ": model.merges[", index, "] \"", printable(s), "\" is not two tokens separated by one space");
    return {s.substr(0, sp), s.substr(sp + 1)};
  }
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
    return {m[0].get<std::string>(), m[1].get<std::string>()};
  fail(where, ": model.merges[", index, "] must be \"a b\" or [\"a\", \"b\"]");
}

}  // namespace

void MergeMap::reserve(size_t n) {
  size_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  if (cap <= table_.size()) return;
  std::vector<Entry> old = std::move(table_);
  table_.assign(cap, Entry{});
  mask_ = cap - 1;
  shift_ = 64 - __builtin_ctzll(cap);
  count_ = 0;
  for (const Entry& e : old)
    if (e.key != kEmpty) set(e.key, e.rank, e.merged);
}

void MergeMap::set(uint64_t key, uint32_t rank, int32_t merged) {
  if (2 * (count_ + 1) > table_.size()) reserve(count_ + 1);
  for (size_t i = slot(key);; i = (i + 1) & mask_) {
    Entry& e = table_[i];
    if (e.key == kEmpty) {
      e = {key, rank, merged};
      ++count_;
      return;
    }
    if (e.key == key) {
      e.rank = rank;
      e.merged = merged;
      return;
    }
  }
}

BpeModel::BpeModel(const json& model, const std::string& where) : instance_(next_instance++) {
  std::string w = where + ": model";
  if (json_get_or<double>(model, "dropout", 0.0, w) != 0.0)
    fail(w, ": BPE dropout is not supported (it makes encoding random)");
  const json& vocab = json_child(model, "vocab", w);
  if (!vocab.is_object()) fail(w, ": \"vocab\" must be an object of token → id");
  vocab_.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer())
      fail(w, ": vocab entry \"", printable(it.key()), "\" has a non-integer id ", json_excerpt(it.value()));
    int64_t id = it.value().get<int64_t>();
    if (id < 0 || id >= kMaxTokenIds)
      fail(w, ": vocab entry \"", printable(it.key()), "\" has id ", id, " out of range [0, ", kMaxTokenIds, ")");
    vocab_[it.key()] = static_cast<int32_t>(id);
    if (static_cast<size_t>(id) >= id_to_token_.size()) id_to_token_.resize(id + 1);
    id_to_token_[id] = it.key();
  }
  prefix_ = json_get_or<std::string>(model, "continuing_subword_prefix", "", w);
  suffix_ = json_get_or<std::string>(model, "end_of_word_suffix", "", w);
  byte_fallback_ = json_get_or<bool>(model, "byte_fallback", false, w);
  fuse_unk_ = json_get_or<bool>(model, "fuse_unk", false, w);
  ignore_merges_ = json_get_or<bool>(model, "ignore_merges", false, w);
  if (model.contains("unk_token") && !model["unk_token"].is_null()) {
    std::string unk = json_get<std::string>(model, "unk_token", w);
    auto it = vocab_.find(unk);
    if (it == vocab_.end()) fail(w, ": unk_token \"", printable(unk), "\" is not in the vocab");
    unk_id_ = it->second;
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    auto it = vocab_.find(std::string_view(name));
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }
  if (model.contains("merges") && !model["merges"].is_null()) {
    const json& merges = model["merges"];
    if (!merges.is_array()) fail(w, ": \"merges\" must be an array");
    merges_.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) {
      auto [a, b] = parse_merge(merges[i], w, i);
      auto ia = vocab_.find(a), ib = vocab_.find(b);
      if (ia == vocab_.end()) fail(w, ": merges[", i, "] token \"", printable(a), "\" is not in the vocab");
      if (ib == vocab_.end()) fail(w, ": merges[", i, "] token \"", printable(b), "\" is not in the vocab");
      std::string merged = a + (b.size() >= prefix_.size() ? b.substr(prefix_.size()) : std::string());
      auto im = vocab_.find(merged);
      if (im == vocab_.end()) fail(w, ": merges[", i, "] result \"", printable(merged), "\" is not in the vocab");
      merges_.set(MergeMap::key(ia->second, ib->second), static_cast<uint32_t>(i), im->second);
    }
  }
  plan_chunking();
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string& BpeModel::id_to_token(int32_t id) const {
  static const std::string empty;
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size()) return empty;
  return id_to_token_[id];
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    auto it = vocab_.find(word);
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (!boundaries_.empty() && word.size() > kChunkWordsAbove) {
    size_t start = 0;
    for (size_t pos = 1; pos < word.size(); ++pos) {
      if (cuttable(word, pos)) {
        tokenize_cached(word.substr(start, pos - start), out);
        start = pos;
      }
    }
    tokenize_cached(word.substr(start), out);
    return;
  }
  tokenize_cached(word, out);
}

bool BpeModel::cuttable(std::string_view word, size_t pos) const {
  for (const Boundary& b : boundaries_) {
    if (word[pos] != b.text[0] || word.compare(pos, b.text.size(), b.text) != 0) continue;
    size_t start = pos - 1;
    while (start > 0 && (static_cast<unsigned char>(word[start]) & 0xC0) == 0x80) --start;
    size_t i = start;
    char32_t c = next_codepoint(word, i);
    return !b.joins_after.count(c);
  }
  return false;
}

void BpeModel::plan_chunking() {
  // Prefixes, suffixes and ignore_merges change what a chunk's symbols look like; keep it exact.
  if (!prefix_.empty() || !suffix_.empty() || ignore_merges_) return;
  for (const char* text : {"\xE2\x96\x81", " "}) {
    if (!vocab_.count(std::string_view(text))) continue;  // the boundary must be its own symbol
    Boundary b{text, {}};
    for (const auto& [tok, id] : vocab_) {
      for (size_t p = tok.find(b.text, 1); p != std::string::npos; p = tok.find(b.text, p + 1)) {
        size_t start = p - 1;
        while (start > 0 && (static_cast<unsigned char>(tok[start]) & 0xC0) == 0x80) --start;
        size_t i = start;
        b.joins_after.insert(next_codepoint(tok, i));
      }
    }
    // A left symbol that is a byte-fallback token ends in '>', an unk token in its last char.
    bool safe = !b.joins_after.count('>');
    if (unk_id_) {
      // The unk token's text (id_to_token_ keeps one of the keys sharing its id): an empty one
      // has no last character, so no cut next to it is known to be safe.
      const std::string& unk = id_to_token_[*unk_id_];
      if (unk.empty()) {
        safe = false;
      } else {
        size_t start = unk.size() - 1;
        while (start > 0 && (static_cast<unsigned char>(unk[start]) & 0xC0) == 0x80) --start;
        size_t i = start;
        safe = safe && !b.joins_after.count(next_codepoint(unk, i));
      }
    }
    if (safe) boundaries_.push_back(std::move(b));
  }
}

void BpeModel::tokenize_cached(std::string_view word, std::vector<int32_t>& out) const {
  if (word.size() > kMaxCachedWordBytes) {
    merge_word(word, out);
    return;
  }
  WordCache& cache = cache_for(instance_);
  uint64_t h = word_hash(word);
  if (cache.get(word, h, out)) return;
  size_t before = out.size();
  merge_word(word, out);
  cache.put(word, h, out.data() + before, out.size() - before);
}

void BpeModel::merge_word(std::string_view w, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    bool alive;
  };
  thread_local std::vector<Symbol> sym;
  thread_local std::string piece;
  sym.clear();
  auto add = [&](int32_t id) {
    int32_t n = static_cast<int32_t>(sym.size());
    sym.push_back({id, n - 1, n + 1, true});
  };
  // Pending unknown run: HF adds it lazily so that fuse_unk can extend it.
  bool unk_pending = false;
  size_t i = 0;
  while (i < w.size()) {
    size_t b = i;
    i += utf8_len(static_cast<unsigned char>(w[b]));
    std::string_view ch = w.substr(b, i - b);
    bool decorated = (b != 0 && !prefix_.empty()) || (i == w.size() && !suffix_.empty());
    if (decorated) {
      piece.clear();
      if (b != 0) piece += prefix_;
      piece.append(ch);
      if (i == w.size()) piece += suffix_;
      ch = piece;
    }
    auto it = vocab_.find(ch);
    if (it != vocab_.end()) {
      if (unk_pending) {
        add(*unk_id_);
        unk_pending = false;
      }
      add(it->second);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char c : ch) all &= byte_ids_[c] >= 0;
      if (all) {
        if (unk_pending) {
          add(*unk_id_);
          unk_pending = false;
        }
        for (unsigned char c : ch) add(byte_ids_[c]);
        continue;
      }
    }
    if (unk_id_) {
      if (unk_pending && !fuse_unk_) add(*unk_id_);
      unk_pending = true;
    }
    // Without an unk token HF drops the character silently; so do we, for parity.
  }
  if (unk_pending) add(*unk_id_);
  if (sym.empty()) return;
  sym.back().next = -1;

  struct Cand {
    uint32_t rank;
    int32_t pos;
    int32_t new_id;
    bool operator<(const Cand& o) const {  // min-heap on (rank, pos)
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  auto lookup = [&](int32_t a, int32_t b) { return merges_.find(MergeMap::key(a, b)); };
  thread_local std::vector<Cand> heap_storage;
  heap_storage.clear();
  std::priority_queue<Cand, std::vector<Cand>> queue(std::less<Cand>(), std::move(heap_storage));
  for (size_t k = 0; k + 1 < sym.size(); ++k) {
    if (auto m = lookup(sym[k].id, sym[k + 1].id)) queue.push({m->rank, static_cast<int32_t>(k), m->merged});
  }
  while (!queue.empty()) {
    Cand top = queue.top();
    queue.pop();
    Symbol& s = sym[top.pos];
    if (!s.alive || s.next < 0) continue;
    Symbol& right = sym[s.next];
    auto m = lookup(s.id, right.id);
    if (!m || m->merged != top.new_id) continue;  // a stale entry
    s.id = top.new_id;
    right.alive = false;
    s.next = right.next;
    if (right.next >= 0) sym[right.next].prev = top.pos;
    if (s.prev >= 0) {
      if (auto pm = lookup(sym[s.prev].id, s.id)) queue.push({pm->rank, s.prev, pm->merged});
    }
    if (s.next >= 0) {
      if (auto nm = lookup(s.id, sym[s.next].id)) queue.push({nm->rank, top.pos, nm->merged});
    }
  }
  for (const auto& s : sym)
    if (s.alive) out.push_back(s.id);
}

}  // namespace onebit::data::hf
