#include "onebit/data/hf/post_processors.h"

#include "onebit/core/error.h"
#include "onebit/data/hf/json_fields.h"

namespace onebit::data::hf {
namespace {

// One template: special-token id runs and one slot for the sequence.
class TemplateProcessor final : public PostProcessor {
 public:
  TemplateProcessor(std::vector<int32_t> before, std::vector<int32_t> after)
      : before_(std::move(before)), after_(std::move(after)) {}
  void add_special(std::vector<int32_t>& ids) const override {
    ids.insert(ids.begin(), before_.begin(), before_.end());
    ids.insert(ids.end(), after_.begin(), after_.end());
  }
  std::vector<int32_t> prefix_ids() const override { return before_; }

 private:
  std::vector<int32_t> before_, after_;
};

class NoopProcessor final : public PostProcessor {
 public:
  void add_special(std::vector<int32_t>&) const override {}
  std::vector<int32_t> prefix_ids() const override { return {}; }
};

class SequenceProcessor final : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> steps) : steps_(std::move(steps)) {}
  void add_special(std::vector<int32_t>& ids) const override {
    for (const auto& p : steps_) p->add_special(ids);
  }
  std::vector<int32_t> prefix_ids() const override {
    std::vector<int32_t> all;
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
      auto p = (*it)->prefix_ids();
      all.insert(all.begin(), p.begin(), p.end());
    }
    return all;
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

std::unique_ptr<PostProcessor> make_template(const json& j, int32_t vocab_size, const std::string& w) {
  const json& single = json_array(j, "single", w);
  const json& specials = json_child(j, "special_tokens", w);
  if (!specials.is_object()) fail(w, ": \"special_tokens\" must be an object");
  std::vector<int32_t> before, after;
  bool seen_sequence = false;
  for (const auto& item : single) {
    if (item.is_object() && item.contains("Sequence")) {
      std::string id = json_get<std::string>(item["Sequence"], "id", w + " single Sequence");
      if (id != "A") fail(w, ": the single template refers to sequence \"", printable(id), "\" (only A exists)");
      if (seen_sequence) fail(w, ": the single template uses the sequence twice");
      seen_sequence = true;
    } else if (item.is_object() && item.contains("SpecialToken")) {
      std::string name = json_get<std::string>(item["SpecialToken"], "id", w + " single SpecialToken");
      auto it = specials.find(name);
      if (it == specials.end())
        fail(w, ": special token \"", printable(name), "\" is used in the template but not defined");
      const std::string where_ids = w + " special_tokens." + printable(name) + ".ids";
      const json& ids = json_array(*it, "ids", w + " special_tokens." + printable(name));
      auto& dst = seen_sequence ? after : before;
      for (const json& id : ids) dst.push_back(json_token_id(id, vocab_size, where_ids));
    } else {
      fail(w, ": template item ", json_excerpt(item), " is neither Sequence nor SpecialToken");
    }
  }
  return std::make_unique<TemplateProcessor>(std::move(before), std::move(after));
}

int32_t pair_id(const json& j, const char* key, int32_t vocab_size, const std::string& w) {
  const json& p = json_child(j, key, w);
  if (!p.is_array() || p.size() != 2) fail(w, ": \"", key, "\" must be [token, id]");
  return json_token_id(p[1], vocab_size, cat(w, ": \"", key, "\""));
}

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const json& j, int32_t vocab_size, const std::string& where) {
  std::string type = json_get<std::string>(j, "type", where + ": post_processor");
  std::string w = where + ": post_processor " + printable(type);
  if (type == "TemplateProcessing") return make_template(j, vocab_size, w);
  if (type == "ByteLevel") return std::make_unique<NoopProcessor>();
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    return std::make_unique<TemplateProcessor>(std::vector<int32_t>{pair_id(j, "cls", vocab_size, w)},
                                               std::vector<int32_t>{pair_id(j, "sep", vocab_size, w)});
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (const auto& p : json_array(j, "processors", w)) steps.push_back(make_post_processor(p, vocab_size, where));
    return std::make_unique<SequenceProcessor>(std::move(steps));
  }
  fail(where, ": unsupported post_processor type \"", printable(type), "\"");
}

}  // namespace onebit::data::hf
