// onebit export: an onebit model dir -> another tool's format. Each --format is one branch of
// run_export: hf (hfio/export_hf.h).
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "onebit/core/error.h"
#include "onebit/hfio/export_hf.h"

namespace onebit::cli {

namespace {

struct ExportArgs {
  std::string format;
  std::string model, output;
  std::string hf_weights = "packed";
};

void run_export(const ExportArgs& a) {
  if (a.format == "hf") {
    const hfio::HfWeights w = hfio::hf_weights_from_string(a.hf_weights, "--hf-weights");
    hfio::export_hf(a.model, a.output, w);
    std::printf("exported %s to %s as BitNetForCausalLM (%s: %s; model.safetensors, config.json, tokenizer.json)\n",
                a.model.c_str(), a.output.c_str(), a.hf_weights.c_str(),
                w == hfio::HfWeights::Packed ? "uint8 2B4T layout + weight_scale, autobitlinear offline"
                                             : "f32 master weights, autobitlinear online");
    return;
  }
  fail("--format \"", printable(a.format), "\" is not a format onebit exports (hf)");
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto args = std::make_shared<ExportArgs>();
  CLI::App* cmd = app.add_subcommand(
      "export",
      "Write an onebit model dir in another tool's format.\n"
      "--format hf: a dir transformers loads with from_pretrained as BitNetForCausalLM (model_type bitnet\n"
      "models only), with quantization_config: --hf-weights packed (microsoft/bitnet-b1.58-2B-4T's layout:\n"
      "uint8[out/4, in] + weight_scale, linear_class autobitlinear, offline) or master (f32 weights,\n"
      "autobitlinear, online: transformers quantizes them, and can fine-tune them).");
  cmd->add_option("--format", args->format, "Output format: hf")->required();
  cmd->add_option("model", args->model, "onebit model dir (config.json, model.safetensors, tokenizer.json)")
      ->required();
  cmd->add_option("output", args->output, "Output dir (created if needed)")->required();
  cmd->add_option("--hf-weights", args->hf_weights, "hf: packed or master")->capture_default_str();
  cmd->callback([args] { run_export(*args); });
}

}  // namespace onebit::cli
