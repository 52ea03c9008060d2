// `onebit export --format gguf` through the real binary, on a micro bitnet-shaped model trained for a
// few steps into the Hard phase: the file's metadata and tensors read back by onebit's reader give
// exactly the model's quantized weights (codes * scale equal the training kernels' Hard-phase
// effective weights), the `gguf` package agrees (tools/check_gguf.py export, with the oracle
// Python), and configs llama.cpp cannot run are refused with one line naming the config key.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <tuple>

#include "cli_util.h"
#include "onebit/core/json_util.h"
#include "onebit/formats/gguf/reader.h"
#include "onebit/formats/safetensors.h"
#include "onebit/kernels/kernels.h"
#include "oracle_python.h"

using namespace onebit;
using namespace onebit::test;
namespace gg = onebit::formats::gguf;

namespace {

class ExportGguf : public TrainedRunSuite<ExportGguf> {
 public:
  static constexpr const char* kName = "export-gguf";
  static constexpr size_t kTextBytes = 20000;
  static std::vector<std::string> train_args(const fs::path& out) {
    return micro_bitnet_hard_phase_train_args(*data, out);
  }

 protected:
  static fs::path model() { return *run_dir; }
};

// A config.json variant of the trained model's, in its own model dir (same weights file).
fs::path variant(const fs::path& from, const fs::path& to, const json& patch) {
  fs::remove_all(to);
  fs::create_directories(to);
  json cfg = read_json_file(from / "config.json");
  cfg.merge_patch(patch);
  write_file_atomic(to / "config.json", cfg.dump(2));
  fs::copy_file(from / "model.safetensors", to / "model.safetensors");
  fs::copy_file(from / "tokenizer.json", to / "tokenizer.json");
  return to;
}

TEST_F(ExportGguf, TernaryTensorsAreTheModelsHardPhaseWeightsExactly) {
  for (const std::string type : {"tq2_0", "tq1_0", "f16"}) {
    SCOPED_TRACE(type);
    const fs::path out = *dir / cat("m-", type, ".gguf");
    RunResult r = run({"export", "--format", "gguf", "--type", type, model().string(), out.string()}, *dir);
    ASSERT_EQ(r.status, 0) << r.err;
    gg::GgufReader g(out);
    EXPECT_EQ(g.get_string("general.architecture"), "bitnet");
    EXPECT_EQ(g.get_int("bitnet.block_count"), 2);
    EXPECT_EQ(g.get_int("bitnet.attention.head_count_kv"), 2);
    EXPECT_EQ(g.get_int("bitnet.feed_forward_length"), 512);
    EXPECT_EQ(g.get_string("tokenizer.ggml.model"), "gpt2");
    EXPECT_EQ(g.get_string_array("tokenizer.ggml.tokens").size(), 257u);
    EXPECT_EQ(g.get_int("tokenizer.ggml.eos_token_id"), 256);
    EXPECT_EQ(g.find_tensor("output.weight"), nullptr);  // tied: llama.cpp's bitnet graph reuses token_embd
    const auto want_type = type == "tq2_0" ? gg::GgmlType::TQ2_0 : type == "tq1_0" ? gg::GgmlType::TQ1_0 : gg::GgmlType::F16;
    formats::SafetensorsFile st(model() / "model.safetensors");
    const std::pair<const char*, const char*> linears[] = {
        {"blk.1.attn_q", "model.layers.1.self_attn.q_proj.weight"},
        {"blk.0.attn_k", "model.layers.0.self_attn.k_proj.weight"},
        {"blk.1.ffn_down", "model.layers.1.mlp.down_proj.weight"},
        {"blk.0.ffn_gate", "model.layers.0.mlp.gate_proj.weight"}};
    for (const auto& [gname, hf] : linears) {
      const auto& t = g.tensor(cat(gname, ".weight"));
      EXPECT_EQ(t.type, want_type) << gname;
      const auto& info = st.info(hf);
      EXPECT_EQ(t.shape(), info.shape) << gname;
      std::vector<float> w(info.numel()), eff(info.numel());
      st.read_f32(hf, info.shape, w);
      auto& ops = kernels::cpu_ops();
      kernels::QuantScale s;
      ops.weight_quant_scale(&s, w.data(), w.size(), kernels::WeightQuant::Ternary);
      ops.weight_quantize(eff.data(), w.data(), w.size(), kernels::WeightQuant::Ternary, &s, 0.0f);
      const auto codes = g.read_f32(t);
      const auto scale = g.read_f32(g.tensor(cat(gname, ".scale")));
      ASSERT_EQ(scale.size(), 1u);
      EXPECT_EQ(scale[0], s.scale) << gname;
      size_t nonzero = 0;
      for (size_t i = 0; i < w.size(); ++i) {
        ASSERT_EQ(codes[i] * scale[0], eff[i]) << gname << " element " << i;
        nonzero += codes[i] != 0;
      }
      EXPECT_GT(nonzero, w.size() / 4) << gname;  // a real ternary matrix, not all zeros
    }
    // Norms are F32 and exact; the embedding F16 (within its rounding).
    const auto& sub = g.tensor("blk.1.ffn_sub_norm.weight");
    EXPECT_EQ(sub.type, gg::GgmlType::F32);
    std::vector<float> want(512);
    st.read_f32("model.layers.1.mlp.ffn_sub_norm.weight", {512}, want);
    EXPECT_EQ(g.read_f32(sub), want);
    EXPECT_EQ(g.tensor("token_embd.weight").type, gg::GgmlType::F16);
  }
}

// The scale of every ternary tensor follows the model's own rule, exactly as the trainer's Hard phase
// computes it: model_type onebit g = mean|W| + 1e-5 (weight_quant_scale), model_type bitnet
// g = max(mean|W|, 1e-5) (ternary_scale_clamped, transformers' rule). The same weights exported under
// both model types give scales 1e-5 apart, and each file's codes * scale are that rule's effective
// weights bit for bit.
TEST_F(ExportGguf, TernaryScalesFollowTheModelTypesRule) {
  const fs::path bitnet = variant(model(), *dir / "bitnet-type", {{"model_type", "bitnet"}});
  const fs::path out_onebit = *dir / "rule-onebit.gguf", out_bitnet = *dir / "rule-bitnet.gguf";
  for (const auto& [m, out] : {std::pair{model(), out_onebit}, std::pair{bitnet, out_bitnet}}) {
    RunResult r = run({"export", "--format", "gguf", "--type", "tq2_0", m.string(), out.string()}, *dir);
    ASSERT_EQ(r.status, 0) << r.err;
  }
  gg::GgufReader go(out_onebit), gb(out_bitnet);
  formats::SafetensorsFile st(model() / "model.safetensors");
  auto& ops = kernels::cpu_ops();
  const std::pair<const char*, const char*> linears[] = {{"blk.0.attn_v", "model.layers.0.self_attn.v_proj.weight"},
                                                         {"blk.1.attn_output", "model.layers.1.self_attn.o_proj.weight"},
                                                         {"blk.0.ffn_up", "model.layers.0.mlp.up_proj.weight"},
                                                         {"blk.1.ffn_down", "model.layers.1.mlp.down_proj.weight"}};
  for (const auto& [gname, hf] : linears) {
    const auto& info = st.info(hf);
    std::vector<float> w(info.numel());
    st.read_f32(hf, info.shape, w);
    double sum = 0;
    for (float x : w) sum += std::abs(static_cast<double>(x));
    const double mean = sum / static_cast<double>(w.size());
    kernels::QuantScale s_onebit, s_bitnet;
    ops.weight_quant_scale(&s_onebit, w.data(), w.size(), kernels::WeightQuant::Ternary);
    ops.ternary_scale_clamped(&s_bitnet, w.data(), w.size());
    for (auto [g, s, want] : {std::tuple{&go, s_onebit, mean + 1e-5}, std::tuple{&gb, s_bitnet, std::max(mean, 1e-5)}}) {
      const float scale = g->read_f32(g->tensor(cat(gname, ".scale")))[0];
      EXPECT_EQ(scale, s.scale) << gname;           // the training kernel's value, to the bit
      EXPECT_NEAR(scale, want, 1e-6 * want) << gname;  // and the rule it implements
      std::vector<float> eff(w.size());
      ops.weight_quantize(eff.data(), w.data(), w.size(), kernels::WeightQuant::Ternary, &s, 0.0f);
      const auto codes = g->read_f32(g->tensor(cat(gname, ".weight")));
      for (size_t i = 0; i < w.size(); ++i) ASSERT_EQ(codes[i] * scale, eff[i]) << gname << " element " << i;
    }
    const float a = go.read_f32(go.tensor(cat(gname, ".scale")))[0], b = gb.read_f32(gb.tensor(cat(gname, ".scale")))[0];
    EXPECT_NEAR(a - b, 1e-5, 1e-7) << gname;  // the two rules really differ on these weights
  }
}

TEST_F(ExportGguf, TheGgufPackageAgreesWithEveryTensor) {
  ONEBIT_ORACLE_PYTHON_OR_SKIP(py);
  const fs::path llama = variant(model(), *dir / "llama-variant", {{"sub_ln", false}});
  // sub_ln false drops the sub-norm tensors: a model dir of that config needs weights without them.
  fs::remove(llama / "model.safetensors");
  {
    formats::SafetensorsFile st(model() / "model.safetensors");
    formats::SafetensorsWriter w;
    std::vector<std::vector<float>> keep;
    keep.reserve(st.tensors().size());
    for (const auto& t : st.tensors()) {
      if (t.name.find("sub_norm") != std::string::npos) continue;
      keep.emplace_back(t.numel());
      st.read_f32(t.name, t.shape, keep.back());
      w.add_f32(t.name, t.shape, keep.back().data());
    }
    w.write(llama / "model.safetensors");
  }
  const fs::path bitnet = variant(model(), *dir / "bitnet-type-oracle", {{"model_type", "bitnet"}});
  const std::pair<fs::path, std::vector<std::string>> cases[] = {
      {model(), {"--type", "tq2_0"}},
      {bitnet, {"--type", "tq2_0"}},  // transformers' scale rule; the oracle computes it on its own
      {model(), {"--type", "tq1_0", "--embedding-type", "f32"}},
      {model(), {"--type", "f16"}},
      {llama, {"--type", "tq2_0"}},
  };
  int i = 0;
  for (const auto& [m, flags] : cases) {
    const fs::path out = *dir / cat("oracle-", i++, ".gguf");
    std::vector<std::string> args = {"export", "--format", "gguf", m.string(), out.string()};
    args.insert(args.end(), flags.begin(), flags.end());
    RunResult r = run(args, *dir);
    ASSERT_EQ(r.status, 0) << r.err;
    const std::string cmd = cat(py, " ", ONEBIT_SOURCE_DIR, "/tools/check_gguf.py export ", m.string(), " ",
                                out.string(), " > ", (*dir / "check.log").string(), " 2>&1");
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd << "\n" << read_file(*dir / "check.log");
  }
  EXPECT_EQ(gg::GgufReader(*dir / "oracle-4.gguf").get_string("general.architecture"), "llama");
}

TEST_F(ExportGguf, ConfigsLlamaCppCannotRunAreRefusedNamingTheKey) {
  const std::pair<json, std::string> cases[] = {
      {{{"qk_norm", true}}, "\"qk_norm\" is true"},
      {{{"hidden_act", "relu2"}},
       "\"hidden_act\" is \"relu2\" and no upstream llama.cpp graph runs relu2(gate) * up: its only BitNet graph, "
       "\"bitnet\" (src/models/bitnet.cpp"},
      {{{"hidden_act", "relu2"}, {"model_type", "bitnet"}}, "its relu2 graphs (arcee, nemotron, plm, jais2) have no gate and no sub-norms"},
      {{{"hidden_act", "gelu"}}, "\"hidden_act\" is not \"swiglu\""},
      {{{"tie_word_embeddings", false}}, "\"tie_word_embeddings\" is false"},
      {{{"residual_scale", 0.5}}, "\"residual_scale\" is not 1"},
      {{{"quantization", {{"precision_map", {{"model.layers.0.mlp.up_proj", "int8"}}}}}},
       "\"quantization.precision_map.model.layers.0.mlp.up_proj\" is not \"ternary\""},
  };
  int i = 0;
  for (const auto& [patch, says] : cases) {
    const fs::path m = variant(model(), *dir / cat("bad-", i++), patch);
    expect_one_error_line(run({"export", "--format", "gguf", m.string(), (*dir / "bad.gguf").string()}, *dir), says);
    EXPECT_FALSE(fs::exists(*dir / "bad.gguf"));
  }
  // Rows that are not a multiple of 256 cannot be TQ blocks; the message says what to use instead,
  // and --type f16 then works.
  json narrow = read_json_file(micro_bitnet_config_path());
  narrow["intermediate_size"] = 320;
  write_file_atomic(*dir / "narrow.json", narrow.dump());
  expect_one_error_line(run({"export", "--format", "gguf", "--random-weights", "1", (*dir / "narrow.json").string(),
                             (*dir / "bad.gguf").string()},
                            *dir),
                        "\"intermediate_size\" is 320, not a multiple of 256 (the TQ1_0/TQ2_0 block); use --type f16");
  EXPECT_EQ(run({"export", "--format", "gguf", "--type", "f16", "--random-weights", "1", (*dir / "narrow.json").string(),
                 (*dir / "narrow.gguf").string()},
                *dir)
                .status,
            0);
  expect_one_error_line(run({"export", "--format", "gguf", "--type", "q4_0", model().string(), (*dir / "b.gguf").string()},
                            *dir),
                        "--type must be tq2_0, tq1_0 or f16");
  expect_one_error_line(run({"export", "--format", "onnx", model().string(), (*dir / "b.gguf").string()}, *dir),
                        "--format must be gguf");
}

}  // namespace
