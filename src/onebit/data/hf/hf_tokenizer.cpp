#include "onebit/data/hf/hf_tokenizer.h"

#include <omp.h>

#include <optional>
#include <unordered_map>

#include "onebit/core/error.h"
#include "onebit/data/hf/json_fields.h"
#include "onebit/core/json_util.h"
#include "onebit/data/byte_level.h"
#include "onebit/data/hf/added_vocabulary.h"
#include "onebit/data/hf/bpe_model.h"
#include "onebit/data/hf/decoders.h"
#include "onebit/data/hf/normalizers.h"
#include "onebit/data/hf/post_processors.h"
#include "onebit/data/hf/pre_tokenizers.h"
#include "onebit/data/hf/unicode.h"

namespace onebit::data {
namespace {

using namespace hf;

bool is_null_or_missing(const json& j, const char* key) { return !j.contains(key) || j[key].is_null(); }

// Names HF tokenizer.json files use for their document boundary tokens, most specific first.
constexpr const char* kEosNames[] = {"<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>", "<|eot_id|>", "<|im_end|>", "[SEP]"};
constexpr const char* kBosNames[] = {"<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>", "[CLS]"};

class HfTokenizerImpl final : public HfTokenizer {
 public:
  // `config` is the model dir's tokenizer_config.json when there is one: its eos_token and
  // bos_token name the document boundary tokens better than any guess.
  HfTokenizerImpl(std::string_view text, const std::string& where, const json* config = nullptr) : json_text_(text) {
    const json j = parse_json_text(text, where);
    if (!j.is_object()) fail(where, ": a tokenizer.json must be a JSON object");
    hash_ = tokenizer_json_hash(j);
    // "truncation" and "padding" shape model batches; onebit packs whole documents itself, so
    // they are deliberately not applied (encode() returns every id of the text).
    const json& model = json_child(j, "model", where);
    std::string type = json_get_or<std::string>(model, "type", model.contains("merges") ? "BPE" : "", where + ": model");
    if (type != "BPE") fail(where, ": unsupported model type \"", printable(type), "\" (only BPE is supported)");
    model_ = std::make_unique<BpeModel>(model, where);
    if (!is_null_or_missing(j, "normalizer")) normalizer_ = make_normalizer(j["normalizer"], where);
    if (!is_null_or_missing(j, "pre_tokenizer")) pre_tokenizer_ = make_pre_tokenizer(j["pre_tokenizer"], where);
    if (!is_null_or_missing(j, "decoder")) {
      decoder_ = make_decoder(j["decoder"], where);
      byte_level_decoder_ = json_get_or<std::string>(j["decoder"], "type", "", where) == "ByteLevel";
    }
    vocab_bound_ = model_->id_bound();
    if (!is_null_or_missing(j, "added_tokens")) {
      for (const auto& a : json_array(j, "added_tokens", where)) {
        std::string w = where + ": added_tokens";
        AddedToken t;
        t.id = json_get<int32_t>(a, "id", w);
        if (t.id < 0 || t.id >= kMaxTokenIds) fail(w, ": token id ", t.id, " is out of range [0, ", kMaxTokenIds, ")");
        t.content = json_get<std::string>(a, "content", w);
        t.single_word = json_get_or<bool>(a, "single_word", false, w);
        t.lstrip = json_get_or<bool>(a, "lstrip", false, w);
        t.rstrip = json_get_or<bool>(a, "rstrip", false, w);
        t.normalized = json_get_or<bool>(a, "normalized", !json_get_or<bool>(a, "special", false, w), w);
        t.special = json_get_or<bool>(a, "special", false, w);
        added_by_id_[t.id] = static_cast<int32_t>(added_.size());
        added_.push_back(std::move(t));
        vocab_bound_ = std::max(vocab_bound_, added_.back().id + 1);
      }
    }
    // After the added tokens: its special-token ids are checked against the whole vocab.
    if (!is_null_or_missing(j, "post_processor"))
      post_processor_ = make_post_processor(j["post_processor"], vocab_bound_, where);
    std::vector<std::pair<std::string, int32_t>> raw, normalized;
    for (size_t i = 0; i < added_.size(); ++i) {
      AddedToken& t = added_[i];
      t.piece = t.content;
      if (!t.normalized) {
        raw.emplace_back(t.content, static_cast<int32_t>(i));
      } else {
        // HF matches a normalized token by its normalized form.
        if (normalizer_) normalizer_->apply(t.piece);
        normalized.emplace_back(t.piece, static_cast<int32_t>(i));
      }
    }
    raw_matcher_ = std::make_unique<AddedTokenMatcher>(&added_, std::move(raw));
    normalized_matcher_ = std::make_unique<AddedTokenMatcher>(&added_, std::move(normalized));
    // A pure byte-level pipeline (the built-in byte tokenizer's JSON is one) encodes any bytes, so
    // invalid UTF-8 is kept byte for byte rather than repaired, matching the byte tokenizer.
    keep_raw_bytes_ = !normalizer_ && pre_tokenizer_ && !pre_tokenizer_->needs_utf8();
    for (const auto& t : added_) keep_raw_bytes_ = keep_raw_bytes_ && !t.lstrip && !t.rstrip && !t.single_word;
    line_start_cuts_ = (!normalizer_ || normalizer_->keeps_line_start_cuts()) && pre_tokenizer_ &&
                       pre_tokenizer_->line_start() == PreTokenizer::LineStart::Isolates;
    // An added token is matched before anything else: one holding a '\n' could span the cut, and
    // lstrip would swallow the '\n' before a token that starts the second part (with a letter).
    for (const auto& t : added_) {
      const char c0 = t.content.empty() ? 0 : t.content[0];
      const bool starts_with_letter = (c0 >= 'A' && c0 <= 'Z') || (c0 >= 'a' && c0 <= 'z');
      line_start_cuts_ = line_start_cuts_ && !(t.lstrip && starts_with_letter) && t.content.find('\n') == std::string::npos;
    }
    eos_ = find_special(kEosNames);
    if (post_processor_) {
      auto prefix = post_processor_->prefix_ids();
      if (!prefix.empty()) bos_ = prefix.front();
    }
    if (!bos_) bos_ = find_special(kBosNames);
    if (config) {
      if (auto id = config_token(*config, "eos_token")) eos_ = id;
      if (auto id = config_token(*config, "bos_token")) bos_ = id;
    }
  }

  std::vector<int32_t> encode(std::string_view text, bool add_special) const override {
    std::vector<int32_t> ids;
    encode_into(text, add_special, ids);
    return ids;
  }

  std::vector<std::vector<int32_t>> encode_batch(std::span<const std::string_view> texts, bool add_special,
                                                 int threads) const override {
    std::vector<std::vector<int32_t>> out(texts.size());
    int n = threads > 0 ? threads : omp_get_max_threads();
    std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 1) num_threads(n)
    for (size_t i = 0; i < texts.size(); ++i) {
      try {
        encode_into(texts[i], add_special, out[i]);
      } catch (...) {
#pragma omp critical
        error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    return out;
  }

  std::string decode(std::span<const int32_t> ids, bool skip_special) const override {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (int32_t id : ids) {
      if (id < 0 || id >= vocab_bound_) fail("tokenizer: id ", id, " is out of range [0, ", vocab_bound_, ")");
      auto it = added_by_id_.find(id);
      if (it != added_by_id_.end()) {
        const AddedToken& t = added_[it->second];
        if (skip_special && t.special) continue;
        tokens.push_back(t.piece);
        continue;
      }
      const std::string& tok = model_->id_to_token(id);
      if (!tok.empty()) tokens.push_back(tok);  // ids with no token are dropped, as HF does
    }
    if (!decoder_) {
      std::string out;
      for (size_t i = 0; i < tokens.size(); ++i) {
        if (i) out += ' ';
        out += tokens[i];
      }
      return out;
    }
    std::string out;
    if (keep_raw_bytes_ && byte_level_decoder_) {
      // The byte-level inverse without HF's final lossy UTF-8 step, so bytes round-trip.
      std::string bytes;
      for (const auto& t : tokens) {
        if (symbols_to_bytes(t, bytes)) out += bytes;
        else out += t;
        bytes.clear();
      }
      return out;
    }
    decoder_->decode_chain(tokens);
    for (const auto& t : tokens) out += t;
    return out;
  }

  int32_t vocab_size() const override { return vocab_bound_; }
  std::optional<int32_t> eos_id() const override { return eos_; }
  std::optional<int32_t> bos_id() const override { return bos_; }

  std::string id_to_piece(int32_t id) const override {
    if (id < 0 || id >= vocab_bound_) fail("tokenizer: id ", id, " is out of range [0, ", vocab_bound_, ")");
    auto it = added_by_id_.find(id);
    if (it != added_by_id_.end()) return added_[it->second].piece;
    std::string tok = model_->id_to_token(id);
    std::string bytes;
    if (byte_level_decoder_ && symbols_to_bytes(tok, bytes)) return bytes;
    return tok;
  }

  std::string to_json() const override { return json_text_; }
  uint64_t hash() const override { return hash_; }
  // Normalization is local, the pre-tokenizer isolates the cut, and the BPE model only ever sees
  // single pre-tokens, so the ids on each side cannot depend on the other.
  bool encodes_line_start_cuts_independently() const override { return line_start_cuts_; }

 private:
  std::optional<int32_t> find_special(std::span<const char* const> names) const {
    for (const char* name : names) {
      for (const auto& t : added_)
        if (t.special && t.content == name) return t.id;
    }
    return std::nullopt;
  }

  // tokenizer_config.json names a token as "text" or {"content": "text", ...}.
  std::optional<int32_t> config_token(const json& config, const char* key) const {
    auto it = config.find(key);
    if (it == config.end()) return std::nullopt;
    std::string name;
    if (it->is_string()) name = it->get<std::string>();
    else if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) name = (*it)["content"];
    else return std::nullopt;
    for (const auto& t : added_)
      if (t.content == name) return t.id;
    return model_->token_to_id(name);
  }

  // The per-thread scratch of one encode call.
  struct Scratch {
    std::string clean, normalized;
    std::vector<AddedSplit> raw_splits, norm_splits;
    Pieces a, b;
  };

  void encode_into(std::string_view input, bool add_special, std::vector<int32_t>& ids) const {
    thread_local Scratch s;
    std::string_view text = keep_raw_bytes_ ? input : sanitize_utf8(input, s.clean);
    OB_CHECK(text.size() < (size_t{1} << 32), "tokenizer: a single text must be under 4 GiB, got ", text.size(), " bytes");
    ids.clear();
    ids.reserve(ids.size() + text.size() / 3);
    raw_matcher_->split(text, s.raw_splits);
    for (const AddedSplit& r : s.raw_splits) {
      if (r.token >= 0) {
        ids.push_back(added_[r.token].id);
        continue;
      }
      std::string_view seg = text.substr(r.start, r.end - r.start);
      bool origin = r.start == 0;
      if (normalizer_) {
        s.normalized.assign(seg);
        normalizer_->apply(s.normalized);
        seg = s.normalized;
      }
      if (normalized_matcher_->empty()) {
        encode_segment(seg, origin, ids, s);
        continue;
      }
      normalized_matcher_->split(seg, s.norm_splits);
      for (const AddedSplit& n : s.norm_splits) {
        if (n.token >= 0) ids.push_back(added_[n.token].id);
        else encode_segment(seg.substr(n.start, n.end - n.start), origin && n.start == 0, ids, s);
      }
    }
    if (add_special && post_processor_) post_processor_->add_special(ids);
    release_if_huge(s);
  }

  // One huge text must not pin its buffers to the thread for the rest of the process.
  static void release_if_huge(Scratch& s) {
    constexpr size_t kKeep = size_t{64} << 20;
    if (s.clean.capacity() > kKeep) std::string().swap(s.clean);
    if (s.normalized.capacity() > kKeep) std::string().swap(s.normalized);
    for (Pieces* p : {&s.a, &s.b}) {
      if (p->buf.capacity() > kKeep || p->list.capacity() > kKeep / sizeof(Piece)) *p = Pieces();
    }
  }

  void encode_segment(std::string_view seg, bool origin, std::vector<int32_t>& ids, Scratch& s) const {
    if (seg.empty()) return;
    s.a.clear();
    s.a.add(seg, origin);
    const Pieces* pieces = &s.a;
    if (pre_tokenizer_) {
      pre_tokenizer_->apply(s.a, s.b);
      pieces = &s.b;
    }
    for (const Piece& p : pieces->list) model_->tokenize(pieces->view(p), ids);
  }

  std::string json_text_;
  uint64_t hash_ = 0;
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  bool byte_level_decoder_ = false;
  bool keep_raw_bytes_ = false;
  bool line_start_cuts_ = false;
  std::vector<AddedToken> added_;
  std::unordered_map<int32_t, int32_t> added_by_id_;
  std::unique_ptr<AddedTokenMatcher> raw_matcher_, normalized_matcher_;
  int32_t vocab_bound_ = 0;
  std::optional<int32_t> eos_, bos_;
};

}  // namespace

std::unique_ptr<HfTokenizer> parse_hf_tokenizer(std::string_view json_text, const std::string& where) {
  return std::make_unique<HfTokenizerImpl>(json_text, where);
}

std::unique_ptr<HfTokenizer> load_hf_tokenizer(const fs::path& file) {
  const std::string name = printable(file.string(), 4096);
  std::error_code ec;
  if (fs::is_directory(file, ec)) fail(name, ": is a directory, expected a tokenizer.json file");
  std::string text;
  try {
    text = read_file(file);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail(name, ": cannot read (", printable(e.what()), ")");
  }
  fs::path config_path = file.parent_path() / "tokenizer_config.json";
  if (fs::is_regular_file(config_path, ec)) {
    json config = read_json_file(config_path);
    return std::make_unique<HfTokenizerImpl>(text, name, &config);
  }
  return parse_hf_tokenizer(text, name);
}

}  // namespace onebit::data
