#pragma once
// A model's weights in model.safetensors: checked against the parameter layout a config implies,
// and copied into a built Transformer.
#include <vector>

#include "onebit/core/fs.h"
#include "onebit/formats/safetensors.h"
#include "onebit/model/transformer.h"

namespace onebit::modeldir {

// Errors naming the file and tensor unless `file` holds exactly the tensors of `layout` (from
// model::build_param_layout(cfg).info, which allocates nothing), each F32 with the layout's shape.
// Run it before building the Transformer: a config.json that does not belong to the weights (or
// claims a huge model) is then refused without allocating what it describes.
void check_weights_match(const formats::SafetensorsFile& file, const std::vector<model::ParamInfo>& layout);

// Copies every parameter from a safetensors file after check_weights_match (e.g. a checkpoint from
// another config is an error naming the file and tensor).
void load_weights(const fs::path& safetensors_path, model::Transformer& model);

}  // namespace onebit::modeldir
