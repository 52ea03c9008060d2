// onebit info: parameters by precision, bits per weight, and sizes on disk packed vs f16, for a
// model dir (tensors read from its safetensors header) or a config (preset name or path).
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/formats/safetensors.h"
#include "onebit/model/model_size.h"
#include "onebit/model/param_layout.h"
#include "onebit/train/memory_plan.h"

namespace onebit::cli {

namespace {

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
  return buf;
}

std::string human_count(uint64_t n) {
  char buf[32];
  if (n >= 1000000000ull) std::snprintf(buf, sizeof buf, "%.2fB", static_cast<double>(n) / 1e9);
  else if (n >= 1000000ull) std::snprintf(buf, sizeof buf, "%.2fM", static_cast<double>(n) / 1e6);
  else if (n >= 1000ull) std::snprintf(buf, sizeof buf, "%.1fK", static_cast<double>(n) / 1e3);
  else std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(n));
  return buf;
}

struct InfoArgs {
  std::string target;
  bool json_out = false;
  // The training memory plan per data-parallel rank (train/memory_plan.h).
  int ranks = 1;
  int batch_size = 1;
  int seq_len = 0;  // 0: the model's context
  int checkpoint_segments = 0;
};

void run_info(const InfoArgs& a) {
  const fs::path p = a.target;
  const bool model_dir = fs::is_directory(p) && fs::exists(p / "model.safetensors");
  model::ModelConfig cfg = model::load_model_config(a.target);
  std::vector<model::ParamInfo> layout;
  double file_bytes = 0;
  if (model_dir) {
    formats::SafetensorsFile f(p / "model.safetensors");
    file_bytes = static_cast<double>(fs::file_size(p / "model.safetensors"));
    for (const auto& t : f.tensors()) {
      const bool is_linear = t.shape.size() == 2;
      const std::string module = t.name.size() > 7 && t.name.compare(t.name.size() - 7, 7, ".weight") == 0
                                     ? t.name.substr(0, t.name.size() - 7)
                                     : t.name;
      model::ParamInfo pi;
      pi.name = t.name;
      pi.shape = t.shape;
      pi.numel = t.numel();
      pi.precision = is_linear ? cfg.precision_of(module) : model::Precision::F32;
      layout.push_back(std::move(pi));
    }
  } else {
    layout = model::build_param_layout(cfg).info;
  }
  const model::ModelSize s = model::model_size(layout);
  const int T = a.seq_len > 0 ? a.seq_len : cfg.max_position_embeddings;
  if (T > cfg.max_position_embeddings)
    fail("--seq-len ", T, " exceeds the model's max_position_embeddings ", cfg.max_position_embeddings);
  if (a.checkpoint_segments > cfg.num_hidden_layers)
    fail("--gradient-checkpointing-segments ", a.checkpoint_segments, " exceeds the model's ", cfg.num_hidden_layers, " layers");
  const train::MemoryPlan plan = train::memory_plan(cfg, a.batch_size, T, a.checkpoint_segments, a.ranks);
  if (a.json_out) {
    json by = json::object();
    for (const auto& [prec, t] : s.by_precision) by[model::to_string(prec)] = {{"params", t.params}, {"tensors", t.tensors}};
    json j{{"source", a.target},
           {"total_params", s.total_params},
           {"quantized_params", s.quantized_params},
           {"high_precision_params", s.high_precision_params},
           {"by_precision", by},
           {"bits_per_weight_packed", s.bits_per_weight()},
           {"bits_per_quantized_weight", s.bits_per_quantized_weight()},
           {"packed_bytes", s.packed_bytes},
           {"ideal_bytes", s.ideal_bytes},
           {"f16_bytes", s.f16_bytes},
           {"f32_bytes", s.f32_bytes}};
    if (model_dir) j["model_safetensors_bytes"] = file_bytes;
    j["training_memory_per_rank"] = {{"ranks", plan.world_size},      {"batch_size", a.batch_size},
                                     {"seq_len", T},                   {"checkpoint_segments", a.checkpoint_segments},
                                     {"params_bytes", plan.params_bytes}, {"grads_bytes", plan.grads_bytes},
                                     {"optimizer_bytes", plan.optimizer_bytes},
                                     {"activation_bytes", plan.activation_bytes}, {"total_bytes", plan.total_bytes()}};
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("%s: %s\n", model_dir ? "model dir" : "config", a.target.c_str());
  std::printf("  layers %d, hidden %d, heads %d (kv %d), ff %d, vocab %d, context %d%s\n", cfg.num_hidden_layers,
              cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.intermediate_size, cfg.vocab_size,
              cfg.max_position_embeddings, cfg.tie_word_embeddings ? ", tied embeddings" : "");
  std::printf("parameters: %s total = %s quantized + %s high precision\n", human_count(s.total_params).c_str(),
              human_count(s.quantized_params).c_str(), human_count(s.high_precision_params).c_str());
  for (const auto& [prec, t] : s.by_precision)
    std::printf("  %-8s %10s params in %3llu tensors, %g bits/weight packed\n", model::to_string(prec),
                human_count(t.params).c_str(), static_cast<unsigned long long>(t.tensors), model::packed_bits(prec));
  std::printf("bits per weight: %.3f overall packed, %.3f over quantized weights\n", s.bits_per_weight(),
              s.bits_per_quantized_weight());
  std::printf("size on disk: %s packed (%s at the 1.58-bit ideal) vs %s f16 (packed/f16 = %.3f), %s f32 master\n",
              human_bytes(s.packed_bytes).c_str(), human_bytes(s.ideal_bytes).c_str(), human_bytes(s.f16_bytes).c_str(),
              s.f16_bytes > 0 ? s.packed_bytes / s.f16_bytes : 0.0, human_bytes(s.f32_bytes).c_str());
  if (model_dir) std::printf("model.safetensors on disk: %s\n", human_bytes(file_bytes).c_str());
  std::printf("training, micro-batch %d x %d, %d checkpoint segments: %s\n", a.batch_size, T, a.checkpoint_segments,
              train::describe(plan).c_str());
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "info", "Parameter counts, bits per weight and packed size of a model dir or a model config");
  auto a = std::make_shared<InfoArgs>();
  sub->add_option("model,--model,--model-dir,-m", a->target,
                  "Model dir, config.json, or preset name (tiny, 25m, 125m, 0.3b-stack, 1b, 8b, bitnet-2b4t)")
      ->required();
  sub->add_flag("--json", a->json_out, "Print JSON instead of text");
  sub->add_option("--ranks", a->ranks, "Data-parallel ranks (GPUs) for the training memory plan (ZeRO-1 shards AdamW)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  sub->add_option("--batch-size,-b", a->batch_size, "Micro-batch per rank for the training memory plan")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  sub->add_option("--seq-len", a->seq_len, "Sequence length for the training memory plan (default: the model's context)")
      ->check(CLI::Range(1, 1 << 20));
  sub->add_option("--gradient-checkpointing-segments", a->checkpoint_segments,
                  "Segments for the training memory plan (0: every layer's activations kept)")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  sub->callback([a]() { run_info(*a); });
}

}  // namespace onebit::cli
