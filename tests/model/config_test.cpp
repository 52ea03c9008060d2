// config.json: presets load and match the agreed shapes, round trip, and every bad input is one error
// naming the key.
#include "onebit/model/config.h"

#include <gtest/gtest.h>

#include <string>

#include "onebit/core/error.h"
#include "onebit/model/param_layout.h"

namespace onebit::model {
namespace {

json minimal() {
  return json{{"vocab_size", 100},        {"hidden_size", 64},        {"num_hidden_layers", 2},
              {"num_attention_heads", 4}, {"intermediate_size", 128}, {"max_position_embeddings", 32}};
}

std::string error_of(const json& j) {
  try {
    ModelConfig::from_json(j, "cfg.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ModelConfig, PresetsHaveTheAgreedShapes) {
  struct P {
    const char* name;
    int V, d, L, h, kv, ff;
  };
  for (const P& p : {P{"25m", 32000, 512, 6, 8, 8, 1408}, P{"125m", 32000, 768, 12, 12, 12, 2048},
                     P{"0.3b-stack", 49152, 1024, 16, 16, 16, 2816}, P{"1b", 32000, 2048, 24, 32, 32, 5632},
                     P{"8b", 128256, 4096, 32, 32, 8, 14336}}) {
    SCOPED_TRACE(p.name);
    const ModelConfig c = load_model_config(p.name);
    EXPECT_EQ(c.vocab_size, p.V);
    EXPECT_EQ(c.hidden_size, p.d);
    EXPECT_EQ(c.num_hidden_layers, p.L);
    EXPECT_EQ(c.num_attention_heads, p.h);
    EXPECT_EQ(c.num_key_value_heads, p.kv);
    EXPECT_EQ(c.intermediate_size, p.ff);
    EXPECT_EQ(c.quantization.embedding, Precision::F32);  // sandwich rule
    EXPECT_EQ(c.quantization.lm_head, Precision::F32);
    EXPECT_EQ(c.quantization.attention, Precision::Ternary);
    uint64_t numel = 0;
    for (const auto& i : build_param_layout(c).info) numel += i.numel;
    EXPECT_EQ(c.num_parameters(), numel);
  }
  const ModelConfig c25 = load_model_config("25m");  // the training-speed peer's "25M"
  EXPECT_TRUE(c25.qk_norm);
  EXPECT_FALSE(c25.sub_ln);
  EXPECT_FALSE(c25.tie_word_embeddings);
  EXPECT_EQ(c25.hidden_act, HiddenAct::SwiGLU);
  EXPECT_FLOAT_EQ(c25.rms_norm_eps, 1e-6f);
  EXPECT_GE(c25.max_position_embeddings, 256);
  EXPECT_EQ(load_model_config("0.3b-stack").max_position_embeddings, 1024);
  const ModelConfig tiny = load_model_config("tiny");
  EXPECT_GE(tiny.vocab_size, 257);  // the byte tokenizer
}

TEST(ModelConfig, RoundTripsThroughJson) {
  ModelConfig c = ModelConfig::from_json(minimal(), "cfg.json");
  c.quantization.overrides["model.layers.1.mlp.down_proj"] = Precision::Int8;
  c.quantization.mlp = Precision::Binary;
  c.hidden_act = HiddenAct::ReLU2;
  c.num_key_value_heads = 2;
  const ModelConfig d = ModelConfig::from_json(c.to_json(), "again.json");
  EXPECT_EQ(d.to_json(), c.to_json());
  EXPECT_EQ(d.precision_of("model.layers.1.mlp.down_proj"), Precision::Int8);
  EXPECT_EQ(d.precision_of("model.layers.1.mlp.down_proj.weight"), Precision::Int8);
  EXPECT_EQ(d.precision_of("model.layers.0.mlp.down_proj"), Precision::Binary);
  EXPECT_EQ(d.precision_of("model.layers.0.self_attn.q_proj"), Precision::Ternary);
  EXPECT_EQ(d.precision_of("lm_head"), Precision::F32);
  EXPECT_EQ(d.precision_of("model.embed_tokens"), Precision::F32);
}

TEST(ModelConfig, BitNetPresetIsThe2B4TShape) {
  // microsoft/bitnet-b1.58-2B-4T's config.json: relu2, tied embeddings, GQA 20/5, rope_theta 5e5.
  const ModelConfig c = load_model_config("bitnet-2b4t");
  EXPECT_EQ(c.architecture, Architecture::BitNet);
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.hidden_size, 2560);
  EXPECT_EQ(c.num_hidden_layers, 30);
  EXPECT_EQ(c.num_attention_heads, 20);
  EXPECT_EQ(c.num_key_value_heads, 5);
  EXPECT_EQ(c.intermediate_size, 6912);
  EXPECT_EQ(c.max_position_embeddings, 4096);
  EXPECT_EQ(c.hidden_act, HiddenAct::ReLU2);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_TRUE(c.sub_ln);
  EXPECT_FLOAT_EQ(c.rope_theta, 500000.0f);
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-5f);
  EXPECT_EQ(c.to_json()["model_type"], "bitnet");
  EXPECT_EQ(ModelConfig::from_json(c.to_json(), "again.json").to_json(), c.to_json());
}

TEST(ModelConfig, BitNetDefaultsAndRefusals) {
  json j = minimal();
  j["model_type"] = "bitnet";
  const ModelConfig c = ModelConfig::from_json(j, "cfg.json");
  EXPECT_EQ(c.architecture, Architecture::BitNet);
  EXPECT_FALSE(c.qk_norm);  // transformers' BitNet has none
  EXPECT_TRUE(c.sub_ln);
  EXPECT_EQ(ModelConfig::from_json(minimal(), "cfg.json").architecture, Architecture::Onebit);
  auto refused = [&](const char* key, const json& v, const std::string& needle) {
    json k = j;
    k[key] = v;
    const std::string e = error_of(k);
    EXPECT_NE(e.find(needle), std::string::npos) << e;
    EXPECT_NE(e.find("bitnet"), std::string::npos) << e;
  };
  refused("qk_norm", true, "\"qk_norm\"");
  refused("sub_ln", false, "\"sub_ln\"");
  refused("residual_scale", 0.5, "\"residual_scale\"");
  refused("hidden_act", "gelu", "\"hidden_act\"");
  json other = minimal();
  other["model_type"] = "llama";
  const std::string e = error_of(other);
  EXPECT_NE(e.find("\"model_type\""), std::string::npos) << e;
  EXPECT_NE(e.find("onebit import hf"), std::string::npos) << e;
}

TEST(ModelConfig, DefaultsForOptionalKeys) {
  const ModelConfig c = ModelConfig::from_json(minimal(), "cfg.json");
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.quantization.activation_bits, ActBits::Int8);
  EXPECT_EQ(c.head_dim(), 16);
}

TEST(ModelConfig, ErrorsNameTheKey) {
  auto expect_error = [](const json& j, const std::string& needle) {
    const std::string e = error_of(j);
    EXPECT_NE(e.find(needle), std::string::npos) << "error \"" << e << "\" should mention " << needle;
    EXPECT_NE(e.find("cfg.json"), std::string::npos) << e;
  };
  json j = minimal();
  j["hidden_sise"] = 3;
  expect_error(j, "\"hidden_sise\"");
  j = minimal();
  j.erase("num_hidden_layers");
  expect_error(j, "\"num_hidden_layers\"");
  j = minimal();
  j["num_attention_heads"] = 5;
  expect_error(j, "\"hidden_size\"");
  j = minimal();
  j["num_key_value_heads"] = 3;
  expect_error(j, "\"num_key_value_heads\"");
  j = minimal();
  j["hidden_size"] = 60;
  j["num_attention_heads"] = 4;  // head_dim 15 is odd: RoPE pairs need an even head dimension
  expect_error(j, "\"hidden_size\"");
  j = minimal();
  j["hidden_size"] = 64.5;
  expect_error(j, "\"hidden_size\"");
  j = minimal();
  j["vocab_size"] = 0;
  expect_error(j, "\"vocab_size\"");
  j = minimal();
  j["hidden_act"] = "tanh";
  expect_error(j, "\"hidden_act\"");
  j = minimal();
  j["dropout"] = 1.5;
  expect_error(j, "\"dropout\"");
  j = minimal();
  j["qk_norm"] = "yes";
  expect_error(j, "\"qk_norm\"");
  j = minimal();
  j["quantization"] = {{"weight_bits", {{"attention", "ternary"}, {"mlp", "3bit"}}}};
  expect_error(j, "quantization.weight_bits.mlp");
  j = minimal();
  j["quantization"] = {{"weight_bits", {{"atention", "ternary"}}}};
  expect_error(j, "quantization.weight_bits.atention");
  j = minimal();
  j["quantization"] = {{"activation_bits", "int4"}};
  expect_error(j, "quantization.activation_bits");
  j = minimal();
  j["quantization"] = {{"precision_map", {{"model.layers.7.mlp.up_proj", "int8"}}}};
  expect_error(j, "quantization.precision_map.model.layers.7.mlp.up_proj");
  j = minimal();
  j["quantization"] = {{"precision_map", {{"model.layers.0.mlp.up_proj", "int3"}}}};
  expect_error(j, "quantization.precision_map.model.layers.0.mlp.up_proj");
  j = minimal();  // a leading zero would never match the module's real name
  j["quantization"] = {{"precision_map", {{"model.layers.01.mlp.up_proj", "int8"}}}};
  expect_error(j, "quantization.precision_map.model.layers.01.mlp.up_proj");
  j = minimal();
  j["quantization"] = {{"precision_map", {{"model.layers.1.input_layernorm", "int8"}}}};
  expect_error(j, "quantization.precision_map.model.layers.1.input_layernorm");
  j = minimal();
  j["quantization"] = {{"precision_map", {{"model.layers.1.mlp.up_proj", "int8"}, {"model.layers.1.mlp.up_proj.weight", "bf16"}}}};
  expect_error(j, "model.layers.1.mlp.up_proj\" a second time");
  j = minimal();
  j["quantization"] = {{"activation_bits", 8}};
  expect_error(j, "quantization.activation_bits");
  j = minimal();
  j["quantization"] = {{"bits", 2}};
  expect_error(j, "quantization.bits");
}

TEST(ModelConfig, UnknownPresetOrPathIsAnError) {
  try {
    load_model_config("no-such-preset");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-preset"), std::string::npos);
  }
}

TEST(ParamLayout, HuggingFaceNamesShapesAndDecay) {
  json j = minimal();
  j["qk_norm"] = true;
  j["sub_ln"] = true;
  j["num_key_value_heads"] = 2;
  const ModelConfig c = ModelConfig::from_json(j, "cfg.json");
  const ParamLayout L = build_param_layout(c);
  auto find = [&](const std::string& n) -> const ParamInfo* {
    for (const auto& p : L.info)
      if (p.name == n) return &p;
    return nullptr;
  };
  ASSERT_TRUE(find("model.embed_tokens.weight"));
  ASSERT_TRUE(find("lm_head.weight"));
  EXPECT_EQ(find("model.layers.1.self_attn.k_proj.weight")->shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(find("model.layers.1.self_attn.q_norm.weight")->shape, (std::vector<int64_t>{16}));
  EXPECT_EQ(find("model.layers.0.self_attn.attn_sub_norm.weight")->shape, (std::vector<int64_t>{64}));
  EXPECT_EQ(find("model.layers.0.mlp.ffn_sub_norm.weight")->shape, (std::vector<int64_t>{128}));
  EXPECT_EQ(find("model.layers.0.mlp.down_proj.weight")->shape, (std::vector<int64_t>{64, 128}));
  EXPECT_FALSE(find("model.norm.weight")->decay);
  EXPECT_TRUE(find("model.layers.0.mlp.up_proj.weight")->decay);
  EXPECT_EQ(find("model.layers.0.mlp.up_proj.weight")->precision, Precision::Ternary);
  size_t end = 0;
  for (const auto& p : L.info) {
    EXPECT_GE(p.offset, end) << p.name;  // no overlap
    end = p.offset + p.numel;
  }
  EXPECT_LE(end, L.total);
  json t = minimal();
  t["tie_word_embeddings"] = true;
  const ParamLayout T = build_param_layout(ModelConfig::from_json(t, "cfg.json"));
  for (const auto& p : T.info) EXPECT_NE(p.name, "lm_head.weight");
}

}  // namespace
}  // namespace onebit::model
