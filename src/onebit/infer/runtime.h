#pragma once
// The forward-only runtime over a packed model: prefill (a prompt chunk at a time, GEMM) and decode
// (one token, GEMV), a KV cache sized to the context, f32 norms, per-token int8 activations. Its
// logits equal the training network's Hard-phase forward (model::Transformer, QuantState{Hard}) up
// to float summation order and the f16 KV cache (tests/infer/runtime_test.cpp states the tolerances).
// Nothing here depends on train/.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "onebit/infer/kernels/dot.h"
#include "onebit/infer/kv_cache.h"
#include "onebit/infer/matmul.h"
#include "onebit/infer/model_weights.h"
#include "onebit/infer/packed_weights.h"

namespace onebit::infer {

// The LM head's storage: as the config says (the sandwich rule: f32 unless quantized), or smaller
// for speed when the vocabulary is large: bf16, or int8 / 6-bit codes with one scale per row (its
// input then is quantized to int8 per token too; an approximation the training never saw).
enum class HeadType { Model, BF16, Int8, Q6 };
const char* to_string(HeadType h);

struct RuntimeOptions {
  int context = 0;  // positions the KV cache holds; 0: the config's max_position_embeddings
  KvType kv = KvType::F16;
  PackedFormat ternary = PackedFormat::Ternary2;  // or Ternary1_6
  HeadType head = HeadType::Model;
  std::optional<KernelPath> kernel;  // default_path() (ONEBIT_INFER_KERNEL or CPUID) when unset
  // Prompt tokens per forward pass (bounds the scratch buffers); 0: auto_prefill_chunk(threads) at
  // each forward, with scratch for kMaxAutoPrefillChunk.
  int prefill_chunk = 0;
};

// The auto prefill chunk: larger chunks share each weight row's decode among more tokens, which is
// what lets many threads outrun the memory bus, while on one or two threads a 64-token chunk keeps
// the activations in L2 and measured fastest (docs/benchmarks.md, "AMX prefill").
inline constexpr int kMaxAutoPrefillChunk = 512;
int auto_prefill_chunk(int threads);

class Runtime {
 public:
  // Packs `weights` tensor by tensor, releasing each master tensor once packed.
  Runtime(ModelWeights weights, const RuntimeOptions& opt = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  const model::ModelConfig& config() const;
  int context() const;
  int position() const;  // tokens in the KV cache
  void reset();          // forget every position
  // Drops positions >= n (n <= position()), e.g. to re-run the last token.
  void truncate(int n);
  // Runs `tokens` at positions position().. and appends them to the KV cache. `logits` receives
  // [tokens.size(), vocab] when all_logits, else the last token's [vocab]. A token outside the vocab
  // or more tokens than the context has room for is an error (and nothing is changed).
  void forward(std::span<const int32_t> tokens, float* logits, bool all_logits = false);

  KernelPath kernel_path() const;
  int prefill_chunk() const;  // the prompt tokens one forward pass takes now (auto: at the pool's threads)
  size_t weight_bytes() const;            // every packed tensor
  size_t weight_bytes_per_token() const;  // what one decoded token reads: the linears and the head
  size_t kv_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace onebit::infer
