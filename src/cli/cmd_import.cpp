// onebit import: checkpoints of other tools -> onebit model dirs; one subcommand per source format:
// hf (here, hfio/import_hf.h) and gguf (cmd_import_gguf.cpp).
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "onebit/hfio/import_hf.h"

namespace onebit::cli {

namespace {

struct ImportArgs {
  std::string source, output;
};

void run_import_hf(const ImportArgs& a) {
  const hfio::ImportSummary s = hfio::import_hf(a.source, a.output);
  const model::ModelConfig& c = s.source.config;
  std::string quant = "full precision (no quantization_config)";
  if (s.source.quantized)
    quant = std::string(hfio::to_string(s.source.linear_class)) + " " + hfio::to_string(s.source.mode);
  std::printf("imported %s (%s, %s): %d layers, d %d, %d heads / %d kv heads, ff %d, vocab %d%s\n", a.source.c_str(),
              hfio::to_string(s.source.family), quant.c_str(), c.num_hidden_layers, c.hidden_size,
              c.num_attention_heads, c.num_key_value_heads, c.intermediate_size, c.vocab_size,
              c.tie_word_embeddings ? ", tied embeddings" : "");
  if (s.packed_tensors)
    std::printf("unpacked %zu ternary tensors (2B4T layout) into master weights that requantize to the same codes\n",
                s.packed_tensors);
  std::printf("wrote %s (config.json model_type %s, model.safetensors with %zu f32 tensors, tokenizer.json)\n",
              a.output.c_str(), c.architecture == model::Architecture::BitNet ? "bitnet" : "onebit", s.tensors);
  if (s.source.family == hfio::HfFamily::Llama || !s.source.quantized)
    std::printf("it computes like the source in the full-precision phase (eval --phase fp); its quantization "
                "block is what ternary training goes towards\n");
}

}  // namespace

void add_import_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("import", "Convert a checkpoint of another tool into an onebit model dir.");
  cmd->require_subcommand(1);
  auto args = std::make_shared<ImportArgs>();
  CLI::App* hf = cmd->add_subcommand(
      "hf",
      "A Hugging Face model dir -> an onebit model dir (config.json, model.safetensors, tokenizer.json) that\n"
      "eval, generate and `train --init-from` use. Reads BitNetForCausalLM (model_type bitnet: f32/bf16/f16\n"
      "master weights, or microsoft/bitnet-b1.58-2B-4T's packed uint8 layout with weight_scale) and\n"
      "LlamaForCausalLM (model_type llama, full precision: a start for ternary continued pre-training).");
  hf->add_option("source", args->source,
                 "Hugging Face model dir (config.json, model.safetensors[.index.json], tokenizer.json)")
      ->required();
  hf->add_option("output", args->output, "onebit model dir to write (created if needed)")->required();
  hf->callback([args] { run_import_hf(*args); });
  add_import_gguf_subcommand(*cmd);
}

}  // namespace onebit::cli
