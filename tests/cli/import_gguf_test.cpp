// `onebit import gguf` through the real binary: a micro bitnet model trained into the Hard phase,
// exported to GGUF (bitnet and llama architectures, TQ2_0/TQ1_0/F16) and imported back, gives the
// same logits as the model dir it came from (the training network's Hard-phase forward; bit-identical
// with an F32 embedding), the same tokenizer.json, and GGUF files that are not a bitnet or
// llama model are refused with one line naming the file and what is wrong.
#include <gtest/gtest.h>

#include <cmath>

#include "cli_util.h"
#include "onebit/core/json_util.h"
#include "onebit/core/rng.h"
#include "onebit/formats/gguf/reader.h"
#include "onebit/formats/gguf/writer.h"
#include "onebit/formats/safetensors.h"
#include "onebit/infer/load_model.h"
#include "onebit/modeldir/gguf_import.h"
#include "test_seed.h"

using namespace onebit;
using namespace onebit::test;

namespace {

class ImportGguf : public TrainedRunSuite<ImportGguf> {
 public:
  static constexpr const char* kName = "import-gguf";
  static constexpr size_t kTextBytes = 20000;
  static std::vector<std::string> train_args(const fs::path& out) {
    return micro_bitnet_hard_phase_train_args(*data, out);
  }

 protected:
  static fs::path model() { return *run_dir; }
};

// Hard-phase logits of a model dir on fixed random tokens.
std::vector<float> logits_of(const fs::path& model_dir, const std::vector<int32_t>& tokens, int T) {
  infer::LoadedModel m = infer::load_model_dir(model_dir);
  m.model->set_quant_state({model::QuantPhase::Hard, 0.0f});
  const int B = static_cast<int>(tokens.size()) / T;
  std::vector<float> out(tokens.size() * static_cast<size_t>(m.model->config().vocab_size));
  m.model->logits(tokens.data(), B, T, out.data(), false);
  return out;
}

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, std::fabs(static_cast<double>(x)));
  return m;
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

// A model dir without the sub-norms (the llama architecture) holding the trained weights; untied, it
// gets an LM head of its own (the embedding, scaled, so that it differs from it).
fs::path llama_variant(const fs::path& from, const fs::path& to, bool untied = false) {
  fs::remove_all(to);
  fs::create_directories(to);
  json cfg = read_json_file(from / "config.json");
  cfg["sub_ln"] = false;
  cfg["tie_word_embeddings"] = !untied;
  write_file_atomic(to / "config.json", cfg.dump(2));
  fs::copy_file(from / "tokenizer.json", to / "tokenizer.json");
  formats::SafetensorsFile st(from / "model.safetensors");
  formats::SafetensorsWriter w;
  std::vector<std::vector<float>> keep;
  keep.reserve(st.tensors().size() + 1);  // no reallocation: the writer holds pointers into it
  for (const auto& t : st.tensors()) {
    if (t.name.find("sub_norm") != std::string::npos) continue;
    keep.emplace_back(t.numel());
    st.read_f32(t.name, t.shape, keep.back());
    w.add_f32(t.name, t.shape, keep.back().data());
    if (untied && t.name == "model.embed_tokens.weight") {
      keep.push_back(keep.back());
      for (float& x : keep.back()) x *= 0.5f;
      w.add_f32("lm_head.weight", t.shape, keep.back().data());
    }
  }
  w.write(to / "model.safetensors");
  return to;
}

TEST_F(ImportGguf, ExportThenImportGivesTheSameLogits) {
  Rng rng(test_seed(1));
  const int T = 24;
  std::vector<int32_t> tokens(2 * T);
  for (auto& t : tokens) t = static_cast<int32_t>(rng.uniform_int(257));
  const fs::path llama = llama_variant(model(), *dir / "llama-src");
  const fs::path llama_untied = llama_variant(model(), *dir / "llama-untied-src", true);
  struct Case {
    fs::path src;
    std::vector<std::string> flags;
    double tol;  // relative to max |logit|
  };
  // Ternary codes and scales round-trip to the bit, so with an F32 embedding the logits are
  // bit-identical; an F16 embedding costs its rounding (2^-11 relative) and the int8 flips it causes
  // (measured about 7e-4 of the largest logit).
  const Case cases[] = {
      {model(), {"--type", "tq2_0", "--embedding-type", "f32"}, 0},
      {model(), {"--type", "tq1_0", "--embedding-type", "f32"}, 0},
      {model(), {"--type", "f16", "--embedding-type", "f32"}, 0},
      {model(), {"--type", "tq2_0"}, 2e-2},
      {llama, {"--type", "tq2_0", "--embedding-type", "f32"}, 0},
      {llama_untied, {"--type", "tq1_0", "--embedding-type", "f32"}, 0},
  };
  int i = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(cat(c.src.filename().string(), " ", c.flags[1], c.flags.size() > 2 ? " f32 embedding" : ""));
    const fs::path gguf = *dir / cat("rt-", i, ".gguf"), back = *dir / cat("rt-", i, "-imported");
    ++i;
    std::vector<std::string> args = {"export", "--format", "gguf", c.src.string(), gguf.string()};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    ASSERT_EQ(run(args, *dir).status, 0);
    RunResult r = run({"import", "gguf", gguf.string(), back.string()}, *dir);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("14 ternary linears"), std::string::npos) << r.out;
    EXPECT_EQ(read_file(back / "tokenizer.json"), read_file(c.src / "tokenizer.json"));
    EXPECT_EQ(read_json_file(back / "config.json"), read_json_file(c.src / "config.json"));
    const auto want = logits_of(c.src, tokens, T), got = logits_of(back, tokens, T);
    // The same file straight into a Transformer, without a model dir (what a runtime loading GGUF does).
    {
      const modeldir::GgufModel g = modeldir::read_gguf_model(gguf);
      model::Transformer t(g.config);
      t.upload_params(g.params);
      t.set_quant_state({model::QuantPhase::Hard, 0.0f});
      std::vector<float> direct(got.size());
      t.logits(tokens.data(), 2, T, direct.data(), false);
      EXPECT_EQ(direct, got);
    }
    const double d = max_diff(want, got);
    std::printf("[ measured ] max |logit diff| %.3g (max |logit| %.3g)\n", d, max_abs(want));
    EXPECT_LE(d, c.tol * max_abs(want));
  }
}

// Files written by llama.cpp's own converter (convert_hf_to_gguf.py, tools/make_gguf_fixtures.py) from a
// tiny random transformers BitNetForCausalLM: they import, and the imported model's logits equal the
// HF model's with the weights the files hold (the converter's ternary codes at its f16 scale, the F16
// embedding) and int8 activations, computed by transformers at fixture time (measured: 7e-7 of max
// logit 1.1; the two differ only in the order of float operations).
TEST_F(ImportGguf, FilesFromLlamaCppsConverterImportWithTheReferenceLogits) {
  const fs::path fixtures = fs::path(ONEBIT_TEST_FIXTURES) / "gguf";
  const json ref = read_json_file(fixtures / "llamacpp-bitnet-logits.json");
  const std::vector<int32_t> tokens = ref.at("tokens").get<std::vector<int32_t>>();
  const std::vector<float> want = ref.at("logits").get<std::vector<float>>();
  for (const std::string type : {"tq2_0", "tq1_0", "f16"}) {
    SCOPED_TRACE(type);
    const fs::path out = *dir / cat("llamacpp-", type);
    // Their vocabulary is SentencePiece ("llama"), which onebit cannot rebuild: --tokenizer is required.
    expect_one_error_line(run({"import", "gguf", (fixtures / cat("llamacpp-bitnet-", type, ".gguf")).string(),
                               out.string()},
                              *dir),
                          "tokenizer.ggml.model \"llama\" cannot be rebuilt as a tokenizer.json");
    RunResult r = run({"import", "gguf", (fixtures / cat("llamacpp-bitnet-", type, ".gguf")).string(), out.string(),
                       "--tokenizer", (fs::path(ONEBIT_TEST_FIXTURES) / "data" / "byte_tokenizer.json").string()},
                      *dir);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("14 ternary linears"), std::string::npos) << r.out;
    const json cfg = read_json_file(out / "config.json");
    EXPECT_EQ(cfg.at("hidden_size"), 256);
    EXPECT_EQ(cfg.at("num_key_value_heads"), 2);
    EXPECT_EQ(cfg.at("intermediate_size"), 256);
    EXPECT_EQ(cfg.at("tie_word_embeddings"), true);
    EXPECT_EQ(cfg.at("sub_ln"), true);
    const auto got = logits_of(out, tokens, static_cast<int>(tokens.size()));
    ASSERT_EQ(got.size(), want.size());
    const double diff = max_diff(want, got), scale = max_abs(want);
    std::printf("[ measured ] %s: max |logit diff| %.3g, max |logit| %.3g\n", type.c_str(), diff, scale);
    EXPECT_LE(diff, 1e-5 * scale);
  }
}

TEST_F(ImportGguf, ForeignAndIncompleteFilesAreOneLineErrors) {
  namespace gg = formats::gguf;
  const fs::path bad = *dir / "bad.gguf";
  {
    gg::GgufWriter w;
    w.set_string("general.architecture", "qwen2");
    w.write(bad);
  }
  expect_one_error_line(run({"import", "gguf", bad.string(), (*dir / "out").string()}, *dir),
                        "general.architecture \"qwen2\" cannot be imported (bitnet or llama)");
  // A bitnet file missing a tensor the metadata implies.
  ASSERT_EQ(run({"export", "--format", "gguf", model().string(), (*dir / "good.gguf").string()}, *dir).status, 0);
  {
    gg::GgufReader r(*dir / "good.gguf");
    gg::GgufWriter w;
    for (const auto& [k, v] : r.metadata()) w.set(k, v);
    for (const auto& t : r.tensors()) {
      if (t.name == "blk.1.ffn_up.weight") continue;
      auto bytes = r.bytes(t);
      w.add_tensor(t.name, t.type, t.ne, std::vector<uint8_t>(bytes.begin(), bytes.end()));
    }
    w.write(bad);
  }
  expect_one_error_line(run({"import", "gguf", bad.string(), (*dir / "out").string()}, *dir),
                        "tensor \"blk.1.ffn_up.weight\" is missing");
  EXPECT_FALSE(fs::exists(*dir / "out" / "model.safetensors"));
  expect_one_error_line(run({"import", "gguf", (model() / "config.json").string(), (*dir / "out").string()}, *dir),
                        "not a GGUF file");
}

}  // namespace
