// onebit import gguf: a llama.cpp GGUF file (bitnet or llama architecture; onebit's export or
// llama.cpp's convert_hf_to_gguf.py) → a onebit model dir (modeldir/gguf_import.h).
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "onebit/modeldir/gguf_import.h"

namespace onebit::cli {

namespace {

struct ImportGgufArgs {
  std::string source, output, tokenizer;
};

void run_import_gguf(const ImportGgufArgs& a) {
  const modeldir::GgufModel r = modeldir::import_gguf(a.source, a.output, a.tokenizer);
  const model::ModelConfig& c = r.config;
  std::printf("imported %s (%s): %d layers, d %d, %d heads / %d kv heads, ff %d, vocab %d%s; %d ternary linears%s\n",
              a.source.c_str(), r.architecture.c_str(), c.num_hidden_layers, c.hidden_size, c.num_attention_heads,
              c.num_key_value_heads, c.intermediate_size, c.vocab_size, c.tie_word_embeddings ? ", tied" : "",
              r.ternary_tensors,
              r.other_tensors ? (", " + std::to_string(r.other_tensors) + " not ternary (kept as they are)").c_str() : "");
  std::printf("wrote %s (config.json, model.safetensors, tokenizer.json)\n", a.output.c_str());
}

}  // namespace

void add_import_gguf_subcommand(CLI::App& import_app) {
  auto a = std::make_shared<ImportGgufArgs>();
  CLI::App* sub = import_app.add_subcommand(
      "gguf",
      "A GGUF file of llama.cpp's bitnet or llama architecture (F32/F16/BF16/TQ1_0/TQ2_0 tensors) -> an onebit\n"
      "model dir; ternary tensors become master weights that quantize back to the same codes and scale.");
  sub->add_option("source", a->source, "GGUF file")->required();
  sub->add_option("output", a->output, "onebit model dir to write (created if needed)")->required();
  sub->add_option("--tokenizer", a->tokenizer,
                  "tokenizer.json (or a dir holding one) instead of the one rebuilt from the GGUF metadata");
  sub->callback([a] { run_import_gguf(*a); });
}

}  // namespace onebit::cli
