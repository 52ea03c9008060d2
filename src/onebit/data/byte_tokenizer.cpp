#include "onebit/data/byte_tokenizer.h"

#include "onebit/core/error.h"
#include "onebit/data/byte_level.h"

namespace onebit::data {
namespace {

json byte_tokenizer_json() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_to_symbol(static_cast<uint8_t>(b))] = b;
  return byte_level_bpe_tokenizer_json(std::move(vocab), json::array(),
                                       json::array({special_added_token(kByteEosId, kEndOfText)}),
                                       byte_level_component());
}

class ByteTokenizer final : public Tokenizer {
 public:
  ByteTokenizer() {
    json j = byte_tokenizer_json();
    json_text_ = j.dump(2, ' ', false);
    hash_ = tokenizer_json_hash(j);
  }

  std::vector<int32_t> encode(std::string_view text, bool /*add_special*/) const override {
    // Like HF, a literal "<|endoftext|>" in the text is the special token (added tokens are split
    // out before pre-tokenization).
    std::vector<int32_t> ids;
    ids.reserve(text.size());
    const std::string_view eot(kEndOfText);
    size_t pos = 0;
    while (pos < text.size()) {
      size_t hit = text.find(eot, pos);
      size_t end = hit == std::string_view::npos ? text.size() : hit;
      for (size_t i = pos; i < end; ++i) ids.push_back(static_cast<unsigned char>(text[i]));
      if (hit == std::string_view::npos) break;
      ids.push_back(kByteEosId);
      pos = hit + eot.size();
    }
    return ids;
  }

  std::string decode(std::span<const int32_t> ids, bool skip_special) const override {
    std::string out;
    out.reserve(ids.size());
    for (int32_t id : ids) {
      if (id >= 0 && id < 256) {
        out += static_cast<char>(id);
      } else if (id == kByteEosId) {
        if (!skip_special) out += kEndOfText;
      } else {
        fail("byte tokenizer: id ", id, " is out of range [0, ", kByteVocabSize, ")");
      }
    }
    return out;
  }

  int32_t vocab_size() const override { return kByteVocabSize; }
  std::optional<int32_t> eos_id() const override { return kByteEosId; }
  std::optional<int32_t> bos_id() const override { return std::nullopt; }

  std::string id_to_piece(int32_t id) const override {
    if (id >= 0 && id < 256) return std::string(1, static_cast<char>(id));
    if (id == kByteEosId) return kEndOfText;
    fail("byte tokenizer: id ", id, " is out of range [0, ", kByteVocabSize, ")");
  }

  std::string to_json() const override { return json_text_; }
  uint64_t hash() const override { return hash_; }
  // Bytes map one to one and "<|endoftext|>" holds no '\n', so no id depends on text across a '\n'.
  bool encodes_line_start_cuts_independently() const override { return true; }

 private:
  std::string json_text_;
  uint64_t hash_ = 0;
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_tokenizer() { return std::make_unique<ByteTokenizer>(); }

}  // namespace onebit::data
