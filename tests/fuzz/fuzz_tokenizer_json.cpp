// Fuzzes tokenizer.json (data/hf): load, then encode and decode with whatever loaded, since the
// decoders and post-processors only run there (an empty Strip content used to hang in decode).
#include <string_view>

#include "fuzz_engine.h"
#include "onebit/core/error.h"
#include "onebit/data/hf/hf_tokenizer.h"

int main(int argc, char** argv) {
  using namespace onebit;
  fuzz::Target t;
  t.name = "tokenizer_json";
  t.input_name = "tokenizer.json";
  t.run = [](const fs::path& input) {
    auto tok = data::load_hf_tokenizer(input);
    const std::string_view texts[] = {"Hello world", "  the quick\n\nbrown fox  ", "caf\xC3\xA9 na\xC3\xAFve \xE2\x96\x81x",
                                      "<|endoftext|><s>[CLS]", "12345 3.14", "bad \xFF\xFE utf8", ""};
    try {
      const int32_t vocab = tok->vocab_size();
      for (std::string_view text : texts) {
        for (bool special : {false, true}) {
          auto ids = tok->encode(text, special);
          for (int32_t id : ids)
            if (id < 0 || id >= vocab) throw std::logic_error(cat("encode produced id ", id, " outside [0, ", vocab, ")"));
          tok->decode(ids, false);
          tok->decode(ids, true);
        }
      }
      std::vector<int32_t> all;
      for (int32_t id = 0; id < vocab && id < 512; ++id) {
        all.push_back(id);
        tok->id_to_piece(id);
      }
      tok->decode(all, false);
      tok->decode(all, true);
      std::vector<std::string_view> batch(std::begin(texts), std::end(texts));
      tok->encode_batch(batch, true, 2);
    } catch (const Error& e) {
      fuzz::expect_one_line(e.what());  // a loaded tokenizer may still refuse some text (e.g. a regex limit)
    }
  };
  return fuzz::fuzz_main(argc, argv, t);
}
