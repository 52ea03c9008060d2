#pragma once
// Chat prompt formats. The model dir's tokenizer_config.json "chat_template" (a Jinja template) is
// recognised by its markers, not executed: ChatML (<|im_start|>role ... <|im_end|>, Qwen, SmolLM)
// and Llama-3 (<|start_header_id|>role<|end_header_id|> ... <|eot_id|>); without one (or with an
// unknown one) a plain "User: / Assistant:" format.
#include <string>
#include <vector>

#include "onebit/core/fs.h"

namespace onebit::infer {

struct ChatTemplate {
  enum class Kind { Plain, ChatML, Llama3 };
  Kind kind = Kind::Plain;
  std::string begin;            // once at the start of a conversation (after BOS)
  std::string system_prefix, system_suffix;
  std::string user_prefix, user_suffix;
  std::string assistant_prefix;  // opens the model's turn
  std::string assistant_close;   // what ends the model's turn in the history
  std::vector<std::string> stop;  // generation ends at these

  const char* name() const;
  // The text of one turn: [system] user message, then the opening of the assistant's reply. `first`
  // adds `begin` and the system message (empty: none).
  std::string turn(const std::string& user, const std::string& system, bool first) const;
};

ChatTemplate chat_template(ChatTemplate::Kind kind);
// From <dir>/tokenizer_config.json when it has a chat_template this recognises, Plain otherwise.
// A tokenizer_config.json that is not JSON is an error naming it.
ChatTemplate chat_template_for_model_dir(const fs::path& dir);
// From the text of a Jinja chat template (e.g. a GGUF's tokenizer.chat_template): ChatML or Llama-3
// when it has their markers, Plain otherwise.
ChatTemplate chat_template_from_text(const std::string& jinja);

}  // namespace onebit::infer
