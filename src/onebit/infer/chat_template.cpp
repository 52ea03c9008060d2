#include "onebit/infer/chat_template.h"

#include "onebit/core/error.h"
#include "onebit/core/json_util.h"

namespace onebit::infer {

const char* ChatTemplate::name() const {
  switch (kind) {
    case Kind::ChatML:
      return "chatml";
    case Kind::Llama3:
      return "llama3";
    case Kind::Plain:
      return "plain";
  }
  return "?";
}

std::string ChatTemplate::turn(const std::string& user, const std::string& system, bool first) const {
  std::string out;
  if (first) {
    out += begin;
    if (!system.empty()) out += system_prefix + system + system_suffix;
  }
  return out + user_prefix + user + user_suffix + assistant_prefix;
}

// Not inlined: GCC 12 inlines it into chat_template_from_text and then warns (-Wrestrict, a false
// positive) about its string assignments.
[[gnu::noinline]] ChatTemplate chat_template(ChatTemplate::Kind kind) {
  ChatTemplate t;
  t.kind = kind;
  switch (kind) {
    case ChatTemplate::Kind::ChatML:
      t.system_prefix = "<|im_start|>system\n";
      t.system_suffix = "<|im_end|>\n";
      t.user_prefix = "<|im_start|>user\n";
      t.user_suffix = "<|im_end|>\n";
      t.assistant_prefix = "<|im_start|>assistant\n";
      t.assistant_close = "<|im_end|>\n";
      t.stop = {"<|im_end|>"};
      break;
    case ChatTemplate::Kind::Llama3:
      t.system_prefix = "<|start_header_id|>system<|end_header_id|>\n\n";
      t.system_suffix = "<|eot_id|>";
      t.user_prefix = "<|start_header_id|>user<|end_header_id|>\n\n";
      t.user_suffix = "<|eot_id|>";
      t.assistant_prefix = "<|start_header_id|>assistant<|end_header_id|>\n\n";
      t.assistant_close = "<|eot_id|>";
      t.stop = {"<|eot_id|>", "<|end_of_text|>"};
      break;
    case ChatTemplate::Kind::Plain:
      t.system_suffix = "\n\n";
      t.user_prefix = "User: ";
      t.user_suffix = "\n";
      t.assistant_prefix = "Assistant:";
      t.assistant_close = "\n";
      t.stop = {"\nUser:"};
      break;
  }
  return t;
}

ChatTemplate chat_template_for_model_dir(const fs::path& dir) {
  const fs::path p = dir / "tokenizer_config.json";
  if (!fs::is_regular_file(p)) return chat_template(ChatTemplate::Kind::Plain);
  const json j = read_json_file(p);
  if (!j.is_object()) fail(p.string(), ": not a JSON object");
  auto it = j.find("chat_template");
  std::string tpl;
  if (it != j.end() && it->is_string()) {
    tpl = it->get<std::string>();
  } else if (it != j.end() && it->is_array()) {  // [{"name": "default", "template": "..."}, ...]
    for (const auto& e : *it)
      if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string())
        tpl = e["template"].get<std::string>();
  }
  return chat_template_from_text(tpl);
}

ChatTemplate chat_template_from_text(const std::string& tpl) {
  ChatTemplate::Kind kind = ChatTemplate::Kind::Plain;
  if (tpl.find("<|im_start|>") != std::string::npos)
    kind = ChatTemplate::Kind::ChatML;
  else if (tpl.find("<|start_header_id|>") != std::string::npos)
    kind = ChatTemplate::Kind::Llama3;
  return chat_template(kind);
}

}  // namespace onebit::infer
