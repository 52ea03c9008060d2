// onebit export: a model dir in another tool's format. One branch per --format: gguf (llama.cpp;
// modeldir/gguf_export.h) and hf (transformers; hfio/export_hf.h); a new format is one more entry in
// run_export and its own options group.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "onebit/core/error.h"
#include "onebit/core/rng.h"
#include "onebit/data/byte_tokenizer.h"
#include "onebit/hfio/export_hf.h"
#include "onebit/model/param_layout.h"
#include "onebit/modeldir/gguf_export.h"

namespace onebit::cli {

namespace {

struct ExportArgs {
  std::string format;
  std::string model;
  std::string out;
  std::string type = "tq2_0";
  std::string embedding_type = "f16";
  std::string name;
  int64_t random_weights = -1;  // >= 0: MODEL is a config, weights N(0, 0.02) from this seed
  std::string hf_weights = "packed";
};

// Weights for speed benchmarks of shapes nobody has trained: linears and the embedding N(0, 0.02)
// from a stream per tensor, norms 1 (one tensor in memory at a time, so a 2B shape fits).
modeldir::ParamReader random_weights(uint64_t seed) {
  return [seed](const model::ParamInfo& info) {
    std::vector<float> v(info.numel, 1.0f);
    if (info.shape.size() == 2) {
      Rng rng(mix_seed(seed, info.offset));
      for (auto& x : v) x = 0.02f * rng.normal();
    }
    return v;
  };
}

void export_gguf(const ExportArgs& a) {
  modeldir::GgufExportOptions opt;
  opt.type = modeldir::gguf_weight_type_from_string(a.type, "--type");
  if (a.embedding_type != "f16" && a.embedding_type != "f32")
    fail("--embedding-type must be f16 or f32 (got \"", printable(a.embedding_type), "\")");
  opt.embedding_f32 = a.embedding_type == "f32";
  opt.name = a.name;
  if (a.random_weights >= 0) {
    const model::ModelConfig cfg = model::load_model_config(a.model);
    if (opt.name.empty()) opt.name = cat("onebit-random-", fs::path(a.model).stem().string());
    modeldir::export_gguf(cfg, random_weights(static_cast<uint64_t>(a.random_weights)),
                          data::make_byte_tokenizer()->to_json(), a.out, opt, a.model);
  } else {
    OB_CHECK(fs::is_directory(a.model), a.model, ": not a model dir (config.json, model.safetensors, tokenizer.json)");
    modeldir::export_model_dir_gguf(a.model, a.out, opt);
  }
  std::fprintf(stderr, "onebit: wrote %s (%s, %.1f MiB)\n", a.out.c_str(), a.type.c_str(),
               static_cast<double>(fs::file_size(a.out)) / (1024.0 * 1024.0));
}

void export_hf(const ExportArgs& a) {
  const hfio::HfWeights w = hfio::hf_weights_from_string(a.hf_weights, "--hf-weights");
  hfio::export_hf(a.model, a.out, w);
  std::printf("exported %s to %s as BitNetForCausalLM (%s: %s; model.safetensors, config.json, tokenizer.json)\n",
              a.model.c_str(), a.out.c_str(), a.hf_weights.c_str(),
              w == hfio::HfWeights::Packed ? "uint8 2B4T layout + weight_scale, autobitlinear offline"
                                           : "f32 master weights, autobitlinear online");
}

void run_export(const ExportArgs& a) {
  if (a.format == "gguf") return export_gguf(a);
  if (a.format == "hf") return export_hf(a);
  fail("--format must be gguf or hf (got \"", printable(a.format), "\")");
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "export",
      "Write an onebit model dir in another tool's format.\n"
      "--format gguf: one GGUF file that upstream llama.cpp runs (bitnet architecture, or llama without\n"
      "sub-norms), ternary weights as TQ2_0 / TQ1_0 (or F16).\n"
      "--format hf: a dir transformers loads with from_pretrained as BitNetForCausalLM (model_type bitnet\n"
      "models only), with quantization_config: --hf-weights packed (microsoft/bitnet-b1.58-2B-4T's layout:\n"
      "uint8[out/4, in] + weight_scale, linear_class autobitlinear, offline) or master (f32 weights,\n"
      "autobitlinear, online: transformers quantizes them, and can fine-tune them).");
  auto a = std::make_shared<ExportArgs>();
  sub->add_option("--format", a->format, "Output format: gguf or hf")->required();
  sub->add_option("model", a->model, "Model dir (config.json, model.safetensors, tokenizer.json)")->required();
  sub->add_option("out", a->out, "Output: a .gguf file (gguf) or a dir, created if needed (hf)")->required();
  auto* gguf = sub->add_option_group("gguf", "--format gguf");
  gguf->add_option("--type", a->type, "Linear weights: tq2_0 (default), tq1_0 or f16 (ternary codes + scale)");
  gguf->add_option("--embedding-type", a->embedding_type, "Embedding / LM head: f16 (default) or f32");
  gguf->add_option("--name", a->name, "general.name (default: the model dir's name)");
  gguf->add_option("--random-weights", a->random_weights,
                   "Benchmarks only: MODEL is a config or preset, weights N(0,0.02) from this seed, byte tokenizer")
      ->check(CLI::NonNegativeNumber);
  auto* hf = sub->add_option_group("hf", "--format hf");
  hf->add_option("--hf-weights", a->hf_weights, "packed (default) or master");
  sub->callback([a]() { run_export(*a); });
}

}  // namespace onebit::cli
