#include "cli/runtime_model.h"

#include "onebit/core/error.h"
#ifdef ONEBIT_HAVE_HF_TOKENIZER
#include "onebit/data/hf/hf_tokenizer.h"
#endif

namespace onebit::cli {

RuntimeModel load_runtime_model(const std::string& model, const std::string& tokenizer_override, bool want_tokenizer) {
  RuntimeModel m;
  if (infer::is_gguf_path(model)) {
    std::string tokenizer_json, jinja;
    const bool own_tokenizer = want_tokenizer && tokenizer_override.empty();
    m.weights = infer::load_gguf_weights(model, own_tokenizer ? &tokenizer_json : nullptr, &jinja);
    m.chat_template = infer::chat_template_from_text(jinja);
    if (own_tokenizer) {
#ifdef ONEBIT_HAVE_HF_TOKENIZER
      m.tokenizer = data::parse_hf_tokenizer(tokenizer_json, model + " (tokenizer metadata)");
#else
      fail(model, ": this build has no tokenizer.json loader (src/onebit/data/hf is missing); pass --tokenizer byte");
#endif
    }
  } else {
    if (!fs::is_directory(model)) fail(model, ": model dir not found (or a .gguf file)");
    m.weights = infer::load_model_dir_weights(model);
    m.chat_template = infer::chat_template_for_model_dir(model);
    if (want_tokenizer && tokenizer_override.empty()) m.tokenizer = data::load_tokenizer(model);
  }
  if (want_tokenizer && !tokenizer_override.empty()) m.tokenizer = data::load_tokenizer(tokenizer_override);
  if (m.tokenizer && m.tokenizer->vocab_size() > m.weights.config.vocab_size)
    fail(model, ": tokenizer has ", m.tokenizer->vocab_size(), " ids but the model's vocab_size is ",
         m.weights.config.vocab_size);
  return m;
}

}  // namespace onebit::cli
