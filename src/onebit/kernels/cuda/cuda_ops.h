#pragma once
// CudaOps: the kernel interface (kernels.h) on one CUDA device, with f32 parameters and bf16
// activations (Ops<float, bf16>). Every call is a launch on the backend's own stream; upload and
// download (and the *_bytes forms) are the only synchronisations. Allocations are counted, so the
// trainer can report the peak device memory of a run (as torch.cuda.max_memory_allocated does).
// Needs no CUDA headers.
#include <cstddef>
#include <memory>

#include "onebit/kernels/cuda/cuda_kernels.h"
#include "onebit/kernels/kernels.h"

namespace onebit::kernels::cuda {

class CudaOps final : public Ops<float, bf16> {
 public:
  CudaOps();  // the current device; fails with a clear message when none is usable
  ~CudaOps() override;
  CudaOps(const CudaOps&) = delete;
  CudaOps& operator=(const CudaOps&) = delete;

  Context& context() { return *ctx_; }
  size_t allocated_bytes() const { return allocated_; }
  size_t peak_allocated_bytes() const { return peak_; }  // including the context's workspace and scratch
  void reset_peak() { peak_ = allocated_; }
  // Waits for every launch queued so far (this backend's stream does not synchronise with the legacy
  // default stream, so code reading its memory through other streams must wait first).
  void synchronize();

  const char* name() const override { return "cuda"; }
  void set_num_threads(int) override {}
  // 64 Mi bf16 logits (128 MiB): 2048 rows at vocab 32000 (whole 256-row multiples; 2097 rows, the budget
  // itself, left every chunk's last 128-row tile of the head's products 38% full in 8 chunks either way),
  // GEMMs still large enough for the tensor cores, half the memory of twice that.
  size_t logits_chunk_elems() const override { return size_t{64} << 20; }
  int logits_chunk_row_multiple() const override { return 256; }

  void* alloc_bytes(size_t bytes) override;
  void free_bytes(void* p) override;
  void zero_bytes(void* p, size_t bytes) override;
  void upload_bytes(void* dst, const void* host, size_t bytes) override;
  void download_bytes(void* host, const void* src, size_t bytes) override;
  void copy_bytes(void* dst, const void* src, size_t bytes) override;

  float* alloc(size_t n) override { return static_cast<float*>(alloc_bytes(n * sizeof(float))); }
  void free(float* p) override { free_bytes(p); }
  void zero(float* p, size_t n) override { zero_bytes(p, n * sizeof(float)); }
  void copy(float* dst, const float* src, size_t n) override { copy_bytes(dst, src, n * sizeof(float)); }
  void upload(float* dst, const float* host, size_t n) override { upload_bytes(dst, host, n * sizeof(float)); }
  void download(float* host, const float* src, size_t n) override { download_bytes(host, src, n * sizeof(float)); }
  void axpy(float* y, float a, const float* x, size_t n) override;
  void scale_act(bf16* y, float a, const bf16* x, size_t n) override;

  void grad_norm_sq(double* norm_sq, const float* g, size_t n) override;
  void clip_factor(float* factor, const double* norm_sq, double max_norm) override;
  void adamw_step(float* params, const float* grads, float* m, float* v, const AdamWRange* ranges, size_t num_ranges,
                  const AdamWHyper& h, const float* clip) override;

  void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const bf16* a, int lda, const bf16* b,
            int ldb, float beta, bf16* c, int ldc) override;
  void gemm_acc(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const bf16* a, int lda, const bf16* b,
                int ldb, float beta, float* c, int ldc) override;
  void embedding_forward(bf16* out, const int32_t* tokens, const bf16* table, int N, int C, int vocab) override;
  void embedding_backward(float* dtable, const bf16* dout, const int32_t* tokens, int N, int C) override;
  void rmsnorm_forward(bf16* out, bf16* out_q, float* rstd, const bf16* x, const float* w, int N, int C,
                       float eps) override;
  // Rows of 512 to 1024 on the block-a-row kernel of wider rows, narrower ones on the lane-group kernel;
  // $ONEBIT_CUDA_NORM_ROWS_BY_BLOCK 1 / 0 puts every row up to 1024 on the one / the other (read once; any value
  // but 0 or 1 is an error naming it).
  void rmsnorm_backward(bf16* dx, float* dw, const bf16* dout, const bf16* x, const float* w, const float* rstd, int N,
                        int C) override;
  void act_quant_int8(bf16* out, const bf16* x, int N, int C) override;
  void weight_quant_scale(QuantScale* scale, const float* w, size_t n, WeightQuant q) override;
  void ternary_scale_clamped(QuantScale* scale, const float* w, size_t n) override;
  void weight_quantize(bf16* out, const float* w, size_t n, WeightQuant q, const QuantScale* scale,
                       float soft_k) override;
  void weight_code_counts(int64_t* counts, const float* w, size_t n, WeightQuant q, const QuantScale* scale) override;
  void rope(bf16* x, const float* cos, const float* sin, int B, int Tn, int H, int hd, bool inverse) override;
  void attention_forward(bf16* y, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int Tn, int H,
                         int KV, int hd, float p, uint64_t seed) override;
  void attention_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dy, const bf16* q, const bf16* k, const bf16* v,
                          const bf16* y, const float* lse, int B, int Tn, int H, int KV, int hd, float p,
                          uint64_t seed) override;
  void gated_act_forward(bf16* out, const bf16* gate, const bf16* up, size_t n, GatedAct act) override;
  void qk_norm_rope_forward(bf16* out, float* rstd, const bf16* x, const float* w, const float* cos, const float* sin,
                            int B, int Tn, int H, int hd, float eps) override;
  void qk_norm_rope_backward(bf16* dx, float* dw, bf16* dout, const bf16* x, const float* w, const float* rstd,
                             const float* cos, const float* sin, int B, int Tn, int H, int hd) override;
  void gated_act_quant_forward(bf16* out, bf16* out_q, const bf16* gate, const bf16* up, int N, int C,
                               GatedAct act) override;
  void weight_quantize_many(const QuantJob* jobs, size_t njobs, int64_t* counts) override;
  void gated_act_backward(bf16* dgate, bf16* dup, const bf16* dout, const bf16* gate, const bf16* up, size_t n,
                          GatedAct act) override;
  // The fused Q/K/V and gate/up products (one dx and one dW product per group): on unless
  // $ONEBIT_CUDA_FUSED_PROJECTIONS is 0 (read once; any value but 0 or 1 is an error naming it).
  bool prefers_fused_projections() const override;
  void attention_backward_ld(bf16* dq, bf16* dk, bf16* dv, int ld_dv, const bf16* dy, const bf16* q, const bf16* k,
                             const bf16* v, const bf16* y, const float* lse, int B, int Tn, int H, int KV, int hd,
                             float p, uint64_t seed) override;
  void qk_norm_rope_backward_ld(bf16* dx, int ld_dx, float* dw, bf16* dout, const bf16* x, const float* w,
                                const float* rstd, const float* cos, const float* sin, int B, int Tn, int H,
                                int hd) override;
  void gated_act_backward_ld(bf16* dgate, bf16* dup, int ld, const bf16* dout, const bf16* gate, const bf16* up,
                             int N, int C, GatedAct act) override;
  // These two: on unless $ONEBIT_CUDA_FUSED_SUB_NORM is 0 (read once; any value but 0 or 1 is an error naming it).
  bool gated_sub_norm_forward(bf16* out, bf16* out_q, float* rstd, const bf16* gate, const bf16* up, const float* w,
                              int N, int C, float eps, GatedAct act) override;
  bool sub_norm_gated_backward(bf16* dgate, bf16* dup, int ld, float* dw, const bf16* dout, const float* w,
                               const float* rstd, const bf16* gate, const bf16* up, int N, int C,
                               GatedAct act) override;
  void residual_forward(bf16* out, const bf16* x, const bf16* y, float scale, float p, uint64_t seed,
                        size_t n) override;
  void residual_backward(bf16* dy, const bf16* dout, float scale, float p, uint64_t seed, size_t n) override;
  void cross_entropy(bf16* logits, float* losses, double* loss_sum, const int32_t* targets, int N, int V, float dscale,
                     bool want_grad) override;

  // The Hard-phase forward on int8 tensor cores (int8_gemm.cu): on where int8_gemm_available(), unless
  // $ONEBIT_CUDA_INT8_FORWARD is 0 (read when the backend is made; any value but 0 or 1 is an error naming
  // it). pack_ternary keeps the effective weight and its scale; while a pack is alive the int8 quantizers also
  // write their codes and row factors (one buffer: the last quantization), and ternary_linear_forward
  // multiplies those codes by the weight's ternary codes (converted for a run of the packs, in the order they
  // were made, at the first product that needs them after each weight quantization) when its input is that
  // last quantization, else runs the bf16 product of the same effective values.
  bool pack_ternary(std::unique_ptr<PackedTernary>& packed, const bf16* w_eff, int out, int in,
                    const QuantScale* scale) override;
  void ternary_linear_forward(bf16* y, const bf16* xq, int N, const PackedTernary& packed) override;
  // A group's int8 products as one (int8_linear_forward_group) where the input is the last quantization, the
  // packs share their input width, were made one after another (so their codes convert into one [sum of outs,
  // in] matrix) and their outputs suit one launch (every width but the last a multiple of 256, all multiples of
  // 8, 16-byte aligned); else false. Counts as one int8 product. On unless $ONEBIT_CUDA_INT8_GROUPS is 0 (read
  // when the backend is made; any value but 0 or 1 is an error naming it).
  bool ternary_linear_forward_group(bf16* const* ys, const bf16* xq, int N, const PackedTernary* const* packs,
                                    int count) override;
  // Products that ran on int8 codes / fell back to bf16 since construction (tests, the profile).
  int64_t int8_products() const;
  int64_t int8_fallbacks() const;

 private:
  // The quantizers' codes and row factors for an output of N x C (null when no pack is alive).
  Int8Rows int8_rows_for(const bf16* out_q, int N, int C);
  // Where packed's ternary codes start in the converted buffer, converting a run that starts with it where they
  // are not there.
  size_t weight_codes(const PackedTernary& packed);
  // The group's codes as one matrix, member after member in the converted buffer (converted again from the
  // first member where a run ended inside the group); null where the packs were not made one after another.
  const int8_t* stacked_codes(const PackedTernary* const* packs, int count);
  // Makes p hold at least `need` elements (a counted allocation; the old contents are dropped).
  template <typename U>
  void grow_buffer(U*& p, size_t& cap, size_t need) {
    if (cap >= need) return;
    free_bytes(p);
    p = static_cast<U*>(alloc_bytes(need * sizeof(U)));
    cap = need;
  }
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<Context> ctx_;
  size_t allocated_ = 0, peak_ = 0;
  float* loss_tmp_ = nullptr;  // one f32 for cross_entropy's chunk sum on its way into the f64 total
};

}  // namespace onebit::kernels::cuda
