#include "onebit/data/bpe_trainer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <omp.h>
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "onebit/core/error.h"
#include "onebit/core/log.h"
#include "onebit/core/progress.h"
#include "onebit/data/byte_level.h"
#include "onebit/data/documents.h"
#include "onebit/data/tokenize_files.h"

namespace onebit::data {


namespace {

class Pcre2Pattern {
 public:
  explicit Pcre2Pattern(const std::string& pattern) {
    int err = 0;
    PCRE2_SIZE off = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP, &err,
                          &off, nullptr);
    if (!code_) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      fail("pre-tokenization pattern: ", reinterpret_cast<const char*>(msg), " at offset ", off, " in ", pattern);
    }
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is unavailable
  }
  ~Pcre2Pattern() { pcre2_code_free(code_); }
  Pcre2Pattern(const Pcre2Pattern&) = delete;
  Pcre2Pattern& operator=(const Pcre2Pattern&) = delete;

  // Calls fn(piece) for every match and every gap between matches (HF Split, behavior Isolated).
  template <typename Fn>
  void split(std::string_view text, pcre2_match_data* md, Fn&& fn) const {
    size_t pos = 0, last = 0;
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    while (pos <= text.size()) {
      int rc = pcre2_match(code_, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) fail("pre-tokenization: regex match failed (PCRE2 error ", rc, ")");
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      size_t s = ov[0], e = ov[1];
      if (s > last) fn(text.substr(last, s - last));
      if (e > s) fn(text.substr(s, e - s));
      last = e;
      if (e == s) {  // empty match: step one UTF-8 character
        pos = e + 1;
        while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
      } else {
        pos = e;
      }
    }
    if (last < text.size()) fn(text.substr(last));
  }
  pcre2_code* code() const { return code_; }

 private:
  pcre2_code* code_ = nullptr;
};

using WordCounts = std::unordered_map<std::string, uint64_t>;

inline uint64_t pair_key(uint32_t a, uint32_t b) { return (static_cast<uint64_t>(a) << 32) | b; }

struct Word {
  std::vector<uint32_t> sym;
  uint64_t count;
};

}  // namespace

std::string resolve_pretokenizer_pattern(const std::string& p) {
  if (p == "gpt2") return kGpt2Pattern;
  if (p == "llama3") return kLlama3Pattern;
  Pcre2Pattern check(p);
  return p;
}

BpeMerges learn_bpe_merges(const std::vector<std::pair<std::string, uint64_t>>& word_counts, uint64_t max_merges,
                           uint64_t min_frequency, const std::function<void(uint64_t)>& on_merge) {
  // Token ids here: 0..255 = the bytes ranked by their GPT-2 symbol's code point, then one per new token
  // string. Ties in count go to the smallest (left, right) id pair, so this ranking is what makes the
  // merges those of Hugging Face's BpeTrainer, whose alphabet ids are in that order.
  const std::array<uint8_t, 256> by_rank = bytes_in_symbol_order();
  std::vector<std::string> tok_str(256);
  for (int r = 0; r < 256; ++r) tok_str[static_cast<size_t>(r)] = std::string(1, static_cast<char>(by_rank[r]));
  std::array<uint32_t, 256> rank_of{};
  for (uint32_t r = 0; r < 256; ++r) rank_of[by_rank[r]] = r;
  std::unordered_map<std::string, uint32_t> str_id;
  for (uint32_t r = 0; r < 256; ++r) str_id[tok_str[r]] = r;

  std::vector<Word> words;
  words.reserve(word_counts.size());
  for (const auto& [w, c] : word_counts) {
    if (w.size() < 2) continue;  // no pairs
    Word x;
    x.count = c;
    x.sym.reserve(w.size());
    for (unsigned char ch : w) x.sym.push_back(rank_of[ch]);
    words.push_back(std::move(x));
  }

  std::unordered_map<uint64_t, int64_t> counts;
  std::unordered_map<uint64_t, std::vector<uint32_t>> where;
  counts.reserve(words.size() * 2);
  for (uint32_t wi = 0; wi < words.size(); ++wi) {
    const auto& s = words[wi].sym;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      uint64_t k = pair_key(s[i], s[i + 1]);
      counts[k] += static_cast<int64_t>(words[wi].count);
      auto& v = where[k];
      if (v.empty() || v.back() != wi) v.push_back(wi);
    }
  }

  // Max-heap on (count, then smaller key first); stale entries are skipped when popped.
  struct Entry {
    int64_t count;
    uint64_t key;
    bool operator<(const Entry& o) const { return count != o.count ? count < o.count : key > o.key; }
  };
  std::priority_queue<Entry> heap;
  for (const auto& [k, c] : counts)
    if (c > 0) heap.push({c, k});

  BpeMerges out;
  std::vector<std::pair<uint64_t, int64_t>> delta;
  std::vector<uint32_t> before_pairs;
  while (out.merges.size() < max_merges) {
    if (heap.empty()) break;
    Entry top = heap.top();
    heap.pop();
    auto cit = counts.find(top.key);
    if (cit == counts.end() || cit->second != top.count) continue;  // stale
    if (static_cast<uint64_t>(top.count) < min_frequency) {
      out.stopped_by_min_frequency = true;
      break;
    }
    const uint32_t a = static_cast<uint32_t>(top.key >> 32), b = static_cast<uint32_t>(top.key & 0xffffffffu);
    std::string merged = tok_str[a] + tok_str[b];
    uint32_t nid;
    if (auto it = str_id.find(merged); it != str_id.end()) {
      nid = it->second;
    } else {
      nid = static_cast<uint32_t>(tok_str.size());
      tok_str.push_back(merged);
      str_id.emplace(merged, nid);
    }
    out.merges.emplace_back(tok_str[a], tok_str[b]);

    std::vector<uint32_t> affected = std::move(where[top.key]);
    where.erase(top.key);
    std::unordered_map<uint64_t, int64_t> changed;
    for (uint32_t wi : affected) {
      Word& w = words[wi];
      auto& s = w.sym;
      bool has = false;
      for (size_t i = 0; i + 1 < s.size(); ++i)
        if (s[i] == a && s[i + 1] == b) {
          has = true;
          break;
        }
      if (!has) continue;  // stale index entry
      const int64_t c = static_cast<int64_t>(w.count);
      for (size_t i = 0; i + 1 < s.size(); ++i) changed[pair_key(s[i], s[i + 1])] -= c;
      size_t o = 0;
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          s[o++] = nid;
          i += 2;
        } else {
          s[o++] = s[i++];
        }
      }
      s.resize(o);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        uint64_t k = pair_key(s[i], s[i + 1]);
        changed[k] += c;
        if (s[i] == nid || s[i + 1] == nid) {
          auto& v = where[k];
          if (v.empty() || v.back() != wi) v.push_back(wi);
        }
      }
    }
    for (const auto& [k, d] : changed) {
      if (d == 0) continue;
      int64_t& c = counts[k];
      c += d;
      if (c > 0) heap.push({c, k});
      else counts.erase(k);
    }
    counts.erase(top.key);
    if (on_merge) on_merge(out.merges.size());
  }
  return out;
}

json bpe_tokenizer_json(const std::vector<std::pair<std::string, std::string>>& merges,
                        const std::vector<std::string>& special_tokens, const std::string& regex) {
  json vocab = json::object();
  json added = json::array();
  uint32_t next = 0;
  for (const auto& s : special_tokens) {
    if (vocab.contains(s)) fail("special token \"", s, "\" is given twice");
    vocab[s] = next;
    added.push_back(special_added_token(next, s));
    ++next;
  }
  // The alphabet in GPT-2 symbol order of bytes (0..255), then merges in order.
  for (int b = 0; b < 256; ++b) {
    const std::string& sym = byte_to_symbol(static_cast<uint8_t>(b));
    if (vocab.contains(sym)) fail("special token \"", sym, "\" collides with a byte symbol");
    vocab[sym] = next++;
  }
  json jm = json::array();
  for (const auto& [l, r] : merges) {
    std::string ls = bytes_to_symbols(l), rs = bytes_to_symbols(r);
    std::string m = ls + rs;
    if (!vocab.contains(m)) vocab[m] = next++;
    jm.push_back(ls + " " + rs);
  }
  json split = {{"type", "Split"}, {"pattern", json{{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}};
  return byte_level_bpe_tokenizer_json(
      std::move(vocab), std::move(jm), std::move(added),
      json{{"type", "Sequence"}, {"pretokenizers", json::array({std::move(split), byte_level_component()})}});
}

BpeTrainResult train_bpe(const BpeTrainOptions& opts) {
  const uint32_t n_special = static_cast<uint32_t>(opts.special_tokens.size());
  if (opts.vocab_size < 256 + n_special)
    fail("--vocab-size ", opts.vocab_size, " is too small: the 256 byte symbols and ", n_special,
         " special tokens need at least ", 256 + n_special);
  const std::string regex = resolve_pretokenizer_pattern(opts.pattern);
  Pcre2Pattern pat(regex);
  auto files = expand_inputs(opts.inputs);
  ReadOptions ro;
  ro.text_field = opts.text_field;
  ro.skip_bad_lines = opts.skip_bad_lines;
  // Words are counted per piece; with these patterns a line start is a word boundary anyway.
  ro.split_text = line_start_isolating_pattern(regex);
  auto reader = open_documents(files, ro);

  BpeTrainResult res;
  const int nthreads = opts.threads > 0 ? opts.threads : omp_get_max_threads();
  std::vector<WordCounts> local(static_cast<size_t>(nthreads));
  std::vector<uint64_t> local_words(static_cast<size_t>(nthreads), 0);
  uint64_t total_bytes = 0;
  for (const auto& f : files) {
    std::error_code ec;
    if (f != "-") total_bytes += fs::file_size(f, ec);
  }
  auto t0 = std::chrono::steady_clock::now();
  {
    ProgressBar bar("count words", total_bytes, "MB/s", 1e-6);
    std::vector<Document> batch;
    bool more = true;
    while (more) {
      batch.clear();
      size_t bytes = 0;
      Document d;
      while (bytes < (8u << 20)) {
        if (!reader->next(d)) {
          more = false;
          break;
        }
        bytes += d.text.size();
        batch.push_back(std::move(d));
      }
      res.text_bytes += bytes;
      // Long documents are split at '\n' boundaries already (documents.h), so dynamic scheduling balances.
#pragma omp parallel num_threads(nthreads)
      {
        const int t = omp_get_thread_num();
        pcre2_match_data* md = pcre2_match_data_create_from_pattern(pat.code(), nullptr);
        WordCounts& wc = local[static_cast<size_t>(t)];
        uint64_t nw = 0;
#pragma omp for schedule(dynamic, 1)
        for (size_t i = 0; i < batch.size(); ++i) {
          pat.split(batch[i].text, md, [&](std::string_view piece) {
            ++wc[std::string(piece)];
            ++nw;
          });
        }
        local_words[static_cast<size_t>(t)] += nw;
        pcre2_match_data_free(md);
      }
      res.documents += batch.size();
      if (opts.progress) bar.update(reader->raw_bytes_read(), cat(res.documents, " docs"));
    }
    if (opts.progress) bar.finish(cat(res.documents, " docs"));
  }
  // Merge the per-thread tables (largest first, to move the fewest strings).
  std::sort(local.begin(), local.end(), [](const WordCounts& x, const WordCounts& y) { return x.size() > y.size(); });
  WordCounts all = std::move(local[0]);
  for (size_t i = 1; i < local.size(); ++i)
    for (auto& [w, c] : local[i]) all[w] += c;
  local.clear();
  for (uint64_t n : local_words) res.words += n;
  res.unique_words = all.size();
  if (res.words == 0)
    fail(opts.inputs.size() == 1 ? input_name(opts.inputs[0]) : std::string("tokenizer train inputs"),
         ": no text found (empty files, or every line skipped)");
  // Sorted, so the word order (and with it every internal index) does not depend on hashing or threads.
  std::vector<std::pair<std::string, uint64_t>> words(all.begin(), all.end());
  all.clear();
  std::sort(words.begin(), words.end());
  auto t1 = std::chrono::steady_clock::now();
  res.count_seconds = std::chrono::duration<double>(t1 - t0).count();

  const uint64_t max_merges = opts.vocab_size - 256 - n_special;
  BpeMerges m;
  {
    ProgressBar bar("merges", max_merges, "merges/s");
    m = learn_bpe_merges(words, max_merges, std::max<uint64_t>(opts.min_frequency, 1), [&](uint64_t k) {
      if (opts.progress) bar.update(k);
    });
    if (opts.progress) bar.finish();
  }
  res.merge_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  res.merges = m.merges.size();
  res.stopped_by_min_frequency = m.stopped_by_min_frequency;
  res.tokenizer = bpe_tokenizer_json(m.merges, opts.special_tokens, regex);
  res.vocab_size = static_cast<uint32_t>(res.tokenizer["model"]["vocab"].size());
  if (res.merges < max_merges)
    log_warn("tokenizer train: stopped after ", res.merges, " merges (vocab ", res.vocab_size, " < --vocab-size ",
             opts.vocab_size, "): ",
             m.stopped_by_min_frequency ? "no remaining pair reaches --min-frequency" : "no pairs left to merge");
  return res;
}

}  // namespace onebit::data
