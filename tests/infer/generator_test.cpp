// The generator: greedy generation equals argmax over full recomputes, streaming holds back
// incomplete UTF-8 and possible stop-string starts and stops before a stop string, a prompt longer
// than the context is an error naming --ctx-size, a full context ends generation; chat templates
// are recognised from tokenizer_config.json.
#include <gtest/gtest.h>

#include <algorithm>

#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/data/tokenizer.h"
#include "onebit/infer/chat_template.h"
#include "onebit/infer/generator.h"
#include "onebit/infer/model_weights.h"

using namespace onebit;
using namespace onebit::infer;

namespace {
const fs::path kModel = fs::path(ONEBIT_TEST_FIXTURES) / "oracle" / "gqa_qknorm_subln_swiglu";
}

TEST(StopStrings, HoldBackPossibleStartsAndCutAtTheFirstStop) {
  StopStringStream s({"\nUser:", "END"});
  EXPECT_EQ(s.update("Hello"), "Hello");
  EXPECT_EQ(s.update("Hello wor"), " wor");
  EXPECT_EQ(s.update("Hello world\nUs"), "ld");  // "\nUs" may start a stop string
  EXPECT_EQ(s.update("Hello world\nUsa"), "\nUsa");  // it did not
  EXPECT_EQ(s.update("Hello world\nUsa E"), " ");
  EXPECT_EQ(s.update("Hello world\nUsa EN"), "");
  EXPECT_EQ(s.update("Hello world\nUsa END and more"), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.finish("Hello world\nUsa END and more"), "");
  // Incomplete UTF-8 waits for its last byte.
  StopStringStream u({});
  EXPECT_EQ(u.update("a\xE2\x82"), "a");
  EXPECT_EQ(u.update("a\xE2\x82\xAC"), "\xE2\x82\xAC");
  EXPECT_EQ(incomplete_utf8_tail("x\xF0\x9F"), 2u);
  EXPECT_EQ(incomplete_utf8_tail("x\xF0\x9F\x98\x80"), 0u);
}

TEST(Generator, GreedyEqualsArgmaxOfFullRecomputeAndStopsWhereItShould) {
  auto tok = data::load_tokenizer("byte");
  RuntimeOptions opt;
  opt.kv = KvType::F32;
  Runtime rt(load_model_dir_weights(kModel), opt);
  Runtime ref(load_model_dir_weights(kModel), opt);
  const int V = rt.config().vocab_size;
  const std::vector<int32_t> prompt = {3, 14, 15};
  GenerateOptions g;
  g.max_tokens = 8;
  g.sampling.temperature = 0.0f;
  Rng rng(1);
  std::string streamed;
  Generator gen(rt, *tok);
  GenerateResult r = gen.generate(prompt, g, rng, [&](std::string_view s) {
    streamed += s;
    return true;
  });
  ASSERT_EQ(r.tokens.size(), 8u);
  EXPECT_EQ(r.reason, StopReason::MaxTokens);
  EXPECT_EQ(streamed, r.text);
  EXPECT_EQ(r.text, tok->decode(r.tokens, true));
  EXPECT_TRUE(r.last_unfed);
  EXPECT_EQ(rt.position(), 3 + 7);
  // Greedy by recomputing the whole sequence each step (vocab ids the byte tokenizer has: all 48).
  std::vector<int32_t> seq = prompt;
  std::vector<float> logits((size_t)V * 16);
  for (int i = 0; i < 8; ++i) {
    ref.reset();
    ref.forward(seq, logits.data(), true);
    const float* last = logits.data() + (seq.size() - 1) * V;
    seq.push_back((int32_t)(std::max_element(last, last + V) - last));
  }
  EXPECT_EQ(std::vector<int32_t>(seq.begin() + 3, seq.end()), r.tokens);

  // A stop string taken from the greedy text ends generation before its first occurrence.
  ASSERT_EQ(r.text.size(), 8u) << "the byte tokenizer decodes each id to one byte";
  GenerateOptions s = g;
  s.stop = {r.text.substr(3, 2)};
  rt.reset();
  GenerateResult stopped = gen.generate(prompt, s, rng, [](std::string_view) { return true; });
  EXPECT_EQ(stopped.reason, StopReason::StopString);
  EXPECT_EQ(stopped.text, r.text.substr(0, r.text.find(s.stop[0])));
  // The callback stops it.
  rt.reset();
  GenerateResult ri = gen.generate(prompt, g, rng, [](std::string_view) { return false; });
  EXPECT_EQ(ri.reason, StopReason::Interrupted);

  // Context: a prompt longer than the context is an error naming --ctx-size; a full one ends it.
  RuntimeOptions small = opt;
  small.context = 6;
  Runtime rs(load_model_dir_weights(kModel), small);
  Generator gs(rs, *tok);
  try {
    gs.generate(std::vector<int32_t>(7, 1), g, rng, [](std::string_view) { return true; });
    ADD_FAILURE() << "accepted a prompt longer than the context";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--ctx-size"), std::string::npos) << e.what();
  }
  GenerateResult full = gs.generate(prompt, g, rng, [](std::string_view) { return true; });
  EXPECT_EQ(full.reason, StopReason::ContextFull);
  EXPECT_EQ(full.tokens.size(), 4u);  // 3 fed after the prompt fill the 6 positions, the 4th is sampled
}

TEST(ChatTemplates, RecognisedFromTokenizerConfig) {
  const fs::path dir = fs::temp_directory_path() / cat("onebit-chat-template-", ::getpid());
  fs::create_directories(dir);
  EXPECT_EQ(chat_template_for_model_dir(dir).kind, ChatTemplate::Kind::Plain);
  write_json_atomic(dir / "tokenizer_config.json",
                    json{{"chat_template", "{% for m in messages %}<|im_start|>{{m.role}}\n{{m.content}}<|im_end|>"}});
  ChatTemplate c = chat_template_for_model_dir(dir);
  EXPECT_EQ(c.kind, ChatTemplate::Kind::ChatML);
  EXPECT_EQ(c.turn("hi", "be brief", true),
            "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(c.turn("again", "be brief", false), "<|im_start|>user\nagain<|im_end|>\n<|im_start|>assistant\n");
  write_json_atomic(dir / "tokenizer_config.json",
                    json{{"chat_template", "<|start_header_id|>{{ message['role'] }}<|end_header_id|>"}});
  c = chat_template_for_model_dir(dir);
  EXPECT_EQ(c.kind, ChatTemplate::Kind::Llama3);
  EXPECT_EQ(c.turn("hi", "", true), "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
                                    "<|start_header_id|>assistant<|end_header_id|>\n\n");
  write_json_atomic(dir / "tokenizer_config.json", json{{"chat_template", "{{ messages }}"}});
  EXPECT_EQ(chat_template_for_model_dir(dir).kind, ChatTemplate::Kind::Plain);
  write_file_atomic(dir / "tokenizer_config.json", "{not json");
  EXPECT_THROW(chat_template_for_model_dir(dir), Error);
  fs::remove_all(dir);
}
