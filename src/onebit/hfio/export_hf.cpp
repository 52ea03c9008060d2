#include "onebit/hfio/export_hf.h"

#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/data/tokenizer.h"
#include "onebit/formats/safetensors.h"
#include "onebit/hfio/hf_config.h"
#include "onebit/hfio/ternary_pack.h"
#include "onebit/model/param_layout.h"
#include "onebit/modeldir/weights.h"

namespace onebit::hfio {
namespace {

// transformers' BitNet quantizes every linear of the blocks to ternary with int8 inputs and keeps the
// embedding and head in full precision; any other onebit choice has no BitNetForCausalLM equivalent.
void check_exportable(const model::ModelConfig& c, const std::string& where) {
  using model::Precision;
  if (c.architecture != model::Architecture::BitNet)
    fail(where, ": key \"model_type\" is onebit; --format hf exports model_type bitnet models (transformers' "
                "BitNet: no qk_norm, sub_ln, its weight scale), e.g. trained from configs/bitnet-2b4t.json "
                "or an import");
  const auto& q = c.quantization;
  if (q.attention != Precision::Ternary || q.mlp != Precision::Ternary)
    fail(where, ": key \"quantization.weight_bits\": attention and mlp must be ternary for transformers' BitNet");
  if (q.embedding != Precision::F32 || q.lm_head != Precision::F32)
    fail(where, ": key \"quantization.weight_bits\": embedding and lm_head must be f32 for transformers' BitNet");
  if (q.activation_bits != model::ActBits::Int8)
    fail(where, ": key \"quantization.activation_bits\" must be int8 for transformers' BitNet");
  if (!q.overrides.empty())
    fail(where, ": key \"quantization.precision_map\" must be empty for transformers' BitNet (it has ",
         q.overrides.size(), " entries)");
}

}  // namespace

HfWeights hf_weights_from_string(const std::string& s, const std::string& where) {
  if (s == "packed") return HfWeights::Packed;
  if (s == "master") return HfWeights::Master;
  fail(where, ": \"", printable(s), "\" is not packed or master");
}

void export_hf(const fs::path& model_dir, const fs::path& out_dir, HfWeights weights) {
  const fs::path cfg_path = model_dir / "config.json", st_path = model_dir / "model.safetensors",
                 tok_path = model_dir / "tokenizer.json";
  for (const fs::path& p : {cfg_path, st_path, tok_path})
    if (!fs::exists(p))
      fail(printable(p.string(), 4096), ": not found (is ", printable(model_dir.string(), 4096), " a model dir?)");
  const std::string where = printable(cfg_path.string(), 4096);
  const model::ModelConfig c = model::ModelConfig::from_json(read_json_file(cfg_path), where);
  check_exportable(c, where);
  const formats::SafetensorsFile f(st_path);
  const model::ParamLayout layout = model::build_param_layout(c);
  modeldir::check_weights_match(f, layout.info);
  const std::unique_ptr<data::Tokenizer> tok = data::load_tokenizer(tok_path.string());
  if (tok->vocab_size() > c.vocab_size)
    fail(printable(tok_path.string(), 4096), ": ", tok->vocab_size(), " ids, more than vocab_size ", c.vocab_size);

  if (weights == HfWeights::Packed)
    for (const model::ParamInfo& p : layout.info)
      if (p.shape.size() == 2 && p.name.rfind("model.layers.", 0) == 0 && p.shape[0] % 4 != 0)
        fail(where, ": ", p.name, " has ", p.shape[0], " rows, not divisible by 4 as the packed layout needs; "
             "export with --hf-weights master");
  // Everything is read and converted before the first file is written.
  std::vector<std::vector<float>> floats;
  std::vector<std::vector<uint8_t>> bytes;
  floats.reserve(layout.info.size() * 2);
  bytes.reserve(layout.info.size());
  formats::SafetensorsWriter w;
  for (const model::ParamInfo& p : layout.info) {
    std::vector<float> v(p.numel);
    f.read_f32(p.name, p.shape, v);
    const bool linear = p.shape.size() == 2 && p.name.rfind("model.layers.", 0) == 0;
    if (weights == HfWeights::Packed && linear) {
      std::vector<int8_t> codes;
      const float g = ternary_codes(v.data(), v.size(), codes);
      bytes.push_back(pack_ternary_rows(codes.data(), p.shape[0], p.shape[1]));
      w.add(p.name, formats::DType::U8, {p.shape[0] / 4, p.shape[1]}, bytes.back().data());
      // AutoBitLinear (offline) multiplies its output by weight_scale: g gives W_eff = t * g, as in
      // microsoft/bitnet-b1.58-2B-4T (docs/design-notes.md).
      floats.push_back({g});
      w.add_f32(p.name.substr(0, p.name.size() - 6) + "weight_scale", {1}, floats.back().data());
      continue;
    }
    floats.push_back(std::move(v));
    w.add_f32(p.name, p.shape, floats.back().data());
  }
  fs::create_directories(out_dir);
  w.set_metadata("format", "pt");
  w.write(out_dir / "model.safetensors");
  const bool packed = weights == HfWeights::Packed;
  json hf = bitnet_hf_config(c, LinearClass::AutoBitLinear, packed ? QuantMode::Offline : QuantMode::Online);
  // The special ids are the tokenizer's (BitNetConfig's defaults are Llama 3's 128000/128001).
  hf["bos_token_id"] = tok->bos_id() ? json(*tok->bos_id()) : json();
  hf["eos_token_id"] = tok->eos_id() ? json(*tok->eos_id()) : json();
  write_json_atomic(out_dir / "config.json", hf);
  write_file_atomic(out_dir / "tokenizer.json", read_file(tok_path));
  write_json_atomic(out_dir / "tokenizer_config.json", json{{"tokenizer_class", "PreTrainedTokenizerFast"}});
}

}  // namespace onebit::hfio
