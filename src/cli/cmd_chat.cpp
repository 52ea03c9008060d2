// onebit chat: a multi-turn terminal chat on the packed runtime. The KV cache keeps the whole
// conversation, so each turn prefills only its own text. The prompt format comes from the model
// dir's tokenizer_config.json or the GGUF's tokenizer.chat_template (infer/chat_template.h). /reset starts over, /exit (or end of input)
// quits; Ctrl-C stops the reply being written, not the program.
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "cli/runtime_cli_options.h"
#include "cli/runtime_model.h"
#include "onebit/core/error.h"
#include "onebit/core/interrupt.h"
#include "onebit/core/rng.h"
#include "onebit/data/tokenizer.h"
#include "onebit/infer/chat_template.h"
#include "onebit/infer/generator.h"
#include "onebit/infer/model_weights.h"
#include "onebit/kernels/threads.h"

namespace onebit::cli {

namespace {
struct ChatArgs {
  std::string model, tokenizer, system, chat_template = "auto";
  int max_tokens = 512, threads = 0;
  uint64_t seed = 0;
  infer::SamplingOptions sampling;
  RuntimeCliOptions runtime;
};

// --chat-template; nullopt for "auto" (the model's own).
std::optional<infer::ChatTemplate> forced_template(const ChatArgs& a) {
  if (a.chat_template == "auto") return std::nullopt;
  if (a.chat_template == "chatml") return infer::chat_template(infer::ChatTemplate::Kind::ChatML);
  if (a.chat_template == "llama3") return infer::chat_template(infer::ChatTemplate::Kind::Llama3);
  if (a.chat_template == "plain") return infer::chat_template(infer::ChatTemplate::Kind::Plain);
  fail("--chat-template must be auto, chatml, llama3 or plain (got \"", printable(a.chat_template), "\")");
}

void run_chat(const ChatArgs& a) {
  if (a.max_tokens < 0) fail("--max-tokens must be >= 0 (got ", a.max_tokens, ")");
  if (a.threads < 0) fail("--threads must be >= 0 (got ", a.threads, "; 0 = all cores)");
  infer::check_sampling_options(a.sampling);
  const infer::RuntimeOptions ropt = a.runtime.resolve();
  kernels::set_num_threads(a.threads);
  const std::optional<infer::ChatTemplate> forced = forced_template(a);  // a bad flag fails before the load
  RuntimeModel model = load_runtime_model(a.model, a.tokenizer, /*want_tokenizer=*/true);
  const infer::ChatTemplate tpl = forced ? *forced : model.chat_template;
  const std::unique_ptr<data::Tokenizer> tok = std::move(model.tokenizer);
  infer::Runtime rt(std::move(model.weights), ropt);
  infer::Generator gen(rt, *tok);
  infer::GenerateOptions g;
  g.max_tokens = a.max_tokens;
  g.sampling = a.sampling;
  g.stop = tpl.stop;
  Rng rng(a.seed);
  install_interrupt_handler();
  std::fprintf(stderr, "onebit chat: %s template, context %d tokens, kernels %s. /reset starts over, /exit quits, "
               "Ctrl-C stops a reply.\n", tpl.name(), rt.context(), infer::to_string(rt.kernel_path()));
  std::vector<int32_t> carry;  // tokens owed to the cache before the next turn (the reply's last, its close)
  bool first = true;
  std::string line;
  while (true) {
    std::fputs("> ", stdout);
    std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      rt.reset();
      carry.clear();
      first = true;
      std::fputs("(conversation reset)\n", stdout);
      continue;
    }
    if (line.empty()) continue;
    std::vector<int32_t> ids = carry;
    const std::vector<int32_t> turn = tok->encode(tpl.turn(line, a.system, first), /*add_special=*/first);
    ids.insert(ids.end(), turn.begin(), turn.end());
    clear_interrupt();
    infer::GenerateResult r;
    try {
      r = gen.generate(ids, g, rng, [](std::string_view s) {
        std::fwrite(s.data(), 1, s.size(), stdout);
        std::fflush(stdout);
        return !interrupt_requested();
      });
    } catch (const Error& e) {
      // The conversation no longer fits: say so and keep the program (and the cache) as it was.
      std::fprintf(stdout, "\n(%s; /reset to start a new conversation)\n", e.what());
      continue;
    }
    first = false;
    std::fputc('\n', stdout);
    if (r.reason == infer::StopReason::Interrupted) std::fputs("(stopped)\n", stdout);
    if (r.reason == infer::StopReason::ContextFull) {
      std::fputs("(the context is full; /reset to start a new conversation)\n", stdout);
      carry.clear();
      continue;
    }
    carry.clear();
    if (r.last_unfed) carry.push_back(r.tokens.back());
    const std::vector<int32_t> close = tok->encode(tpl.assistant_close, false);
    carry.insert(carry.end(), close.begin(), close.end());
    clear_interrupt();
  }
  std::fputc('\n', stdout);
}
}  // namespace

void add_chat_command(CLI::App& app) {
  auto* sub = app.add_subcommand("chat", "Multi-turn chat with a model dir in the terminal (/reset, /exit)");
  auto a = std::make_shared<ChatArgs>();
  sub->add_option("--model,--model-dir,-m", a->model, "Model dir (config.json, model.safetensors, tokenizer.json) or a llama.cpp .gguf file")
      ->required();
  sub->add_option("--system", a->system, "System message at the start of each conversation");
  sub->add_option("--chat-template", a->chat_template,
                  "Prompt format: auto (from tokenizer_config.json, plain without one), chatml, llama3 or plain")
      ->capture_default_str();
  sub->add_option("--max-tokens,--max-new-tokens,-n", a->max_tokens, "Tokens per reply at most")->capture_default_str();
  add_sampling_options(sub, a->sampling);
  add_seed_option(sub, a->seed, "Sampling seed");
  add_model_run_options(sub, a->tokenizer, a->threads, a->runtime);
  sub->callback([a]() { run_chat(*a); });
}

}  // namespace onebit::cli
