// onebit export: a model dir in a deployment format. One branch per --format (gguf today); a new
// format is one more entry in run_export and its own options group.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "onebit/core/error.h"
#include "onebit/core/rng.h"
#include "onebit/data/byte_tokenizer.h"
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

void run_export(const ExportArgs& a) {
  if (a.format == "gguf") return export_gguf(a);
  fail("--format must be gguf (got \"", printable(a.format), "\")");
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto* sub = app.add_subcommand("export", "Write a model dir in a deployment format (GGUF for llama.cpp)");
  auto a = std::make_shared<ExportArgs>();
  sub->add_option("--format", a->format, "Output format: gguf")->required();
  sub->add_option("model", a->model, "Model dir (config.json, model.safetensors, tokenizer.json)")->required();
  sub->add_option("out", a->out, "Output file")->required();
  auto* gguf = sub->add_option_group("gguf", "--format gguf");
  gguf->add_option("--type", a->type, "Linear weights: tq2_0 (default), tq1_0 or f16 (ternary codes + scale)");
  gguf->add_option("--embedding-type", a->embedding_type, "Embedding / LM head: f16 (default) or f32");
  gguf->add_option("--name", a->name, "general.name (default: the model dir's name)");
  gguf->add_option("--random-weights", a->random_weights,
                   "Benchmarks only: MODEL is a config or preset, weights N(0,0.02) from this seed, byte tokenizer")
      ->check(CLI::NonNegativeNumber);
  sub->callback([a]() { run_export(*a); });
}

}  // namespace onebit::cli
