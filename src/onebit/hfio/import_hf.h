#pragma once
// `onebit import hf`: a Hugging Face BitNetForCausalLM dir (f32/bf16/f16 master weights, or the packed
// microsoft/bitnet-b1.58-2B-4T layout) or LlamaForCausalLM dir (full precision) -> an onebit model dir
// (config.json, model.safetensors with f32 master weights, tokenizer.json), which eval, generate and
// `onebit train --init-from` use. Every missing tensor, wrong shape or dtype, and packed tensor that
// is not the 2B4T layout is an error naming the tensor.
#include <string>

#include "onebit/core/fs.h"
#include "onebit/hfio/hf_config.h"

namespace onebit::hfio {

struct ImportSummary {
  HfModel source;
  size_t tensors = 0;         // onebit parameters written
  size_t packed_tensors = 0;  // of them, unpacked from uint8 (2B4T layout)
};

// Reads everything and checks it before anything is written; out_dir is created if needed.
ImportSummary import_hf(const fs::path& hf_dir, const fs::path& out_dir);

}  // namespace onebit::hfio
