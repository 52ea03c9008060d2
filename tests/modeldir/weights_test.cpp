// check_weights_match / load_weights: a model dir's weights against the layout its config implies.
// Each kind of mismatch is an error naming the file and the tensor; a match loads bit for bit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "onebit/core/error.h"
#include "onebit/core/rng.h"
#include "onebit/formats/safetensors.h"
#include "onebit/model/param_layout.h"
#include "onebit/modeldir/model_dir.h"
#include "onebit/modeldir/weights.h"

using namespace onebit;

namespace {

model::ModelConfig micro_config() {
  model::ModelConfig c;
  c.vocab_size = 17;
  c.hidden_size = 8;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.intermediate_size = 12;
  c.max_position_embeddings = 16;
  c.validate("micro");
  return c;
}

struct TempDir {
  fs::path path = fs::temp_directory_path() / cat("onebit-modeldir-", ::getpid());
  TempDir() {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

// Writes `layout`'s tensors (random values) to `path`, with the changes `edit` makes to the list.
void write_weights(const fs::path& path, const std::vector<model::ParamInfo>& layout,
                   void (*edit)(std::vector<formats::TensorInfo>&)) {
  std::vector<formats::TensorInfo> infos;
  for (const auto& p : layout) infos.push_back({p.name, formats::DType::F32, p.shape});
  if (edit) edit(infos);
  std::vector<std::vector<uint8_t>> bytes;
  formats::SafetensorsWriter w;
  Rng rng(7);
  for (const auto& t : infos) {
    bytes.emplace_back(t.nbytes());
    for (auto& b : bytes.back()) b = static_cast<uint8_t>(rng.next_u64());
    w.add(t.name, t.dtype, t.shape, bytes.back().data());
  }
  w.write(path);
}

std::string mismatch_error(const fs::path& path, const std::vector<model::ParamInfo>& layout) {
  try {
    modeldir::check_weights_match(formats::SafetensorsFile(path), layout);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Weights, EachMismatchNamesTheFileAndTensor) {
  TempDir tmp;
  const auto layout = model::build_param_layout(micro_config()).info;
  const fs::path f = tmp.path / "model.safetensors";
  write_weights(f, layout, nullptr);
  EXPECT_EQ(mismatch_error(f, layout), "");

  write_weights(f, layout, [](std::vector<formats::TensorInfo>& t) { t.erase(t.begin() + 3); });
  std::string e = mismatch_error(f, layout);
  EXPECT_NE(e.find(f.string()), std::string::npos) << e;
  EXPECT_NE(e.find("\"" + layout[3].name + "\" is missing"), std::string::npos) << e;

  write_weights(f, layout, [](std::vector<formats::TensorInfo>& t) { t.push_back({"extra\nname", formats::DType::F32, {2}}); });
  e = mismatch_error(f, layout);
  EXPECT_NE(e.find("\"extra\\nname\" is not a parameter"), std::string::npos) << e;  // printable(): one line

  write_weights(f, layout, [](std::vector<formats::TensorInfo>& t) { t[0].dtype = formats::DType::F16; });
  e = mismatch_error(f, layout);
  EXPECT_NE(e.find("\"" + layout[0].name + "\" is F16"), std::string::npos) << e;

  write_weights(f, layout, [](std::vector<formats::TensorInfo>& t) { t[5].shape.back() += 1; });
  e = mismatch_error(f, layout);
  EXPECT_NE(e.find("\"" + layout[5].name + "\" has shape"), std::string::npos) << e;
  EXPECT_NE(e.find(formats::shape_string(layout[5].shape)), std::string::npos) << e;
}

TEST(Weights, SavedModelDirLoadsBitForBitAndOtherConfigsAreRefused) {
  TempDir tmp;
  const auto cfg = micro_config();
  model::Transformer a(cfg);
  a.init_weights(11);
  modeldir::save_model_dir(tmp.path, a, "{}");
  model::Transformer b(cfg);
  modeldir::load_weights(tmp.path / "model.safetensors", b);
  ASSERT_EQ(a.params().size(), b.params().size());
  for (size_t i = 0; i < a.params().size(); ++i) ASSERT_EQ(a.params()[i], b.params()[i]) << i;
  EXPECT_NO_THROW(modeldir::check_same_config(tmp.path, cfg));

  auto wide = cfg;
  wide.intermediate_size = 16;
  model::Transformer c(wide);
  EXPECT_THROW(modeldir::load_weights(tmp.path / "model.safetensors", c), Error);
  try {
    modeldir::check_same_config(tmp.path, wide);
    ADD_FAILURE() << "a different config was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("intermediate_size"), std::string::npos) << e.what();
  }
}
