// CudaOps: each virtual of the kernel interface as launches of the CUDA kernels on one stream.
#include "onebit/kernels/cuda/cuda_ops.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "onebit/kernels/cuda/common.cuh"

namespace onebit::kernels::cuda {
namespace {

// ONEBIT_CUDA_PROFILE=1: every CudaOps call is bracketed by a pair of CUDA events on the stream and
// the GPU time per call kind is printed to stderr at exit. The events are resolved in batches (once
// 4096 pairs are pending, those already complete; everything at exit), never by waiting for the GPU
// mid-run: a blocking drain let the GPU run dry while the host read thousands of events, and that idle
// showed up as a gap before whichever call came next. So the stream is not serialised:
// the step runs as it would, and a call's time is what the GPU spent between its two events, which
// includes any gap in which the GPU waited for the host to launch it. Two more figures tell a
// host-bound step from a GPU-bound one: the host time spent inside each kind of call (launch
// overhead, cuBLASLt's host work), and the GPU time between one call's end and the next call's
// start (the GPU idle while the host was elsewhere: data loading, bookkeeping, synchronisation).
// The first two training steps (plan search, buffer growth) are left out. A diagnostic; off by
// default and then free.
class Profile {
 public:
  static Profile& get() {
    static Profile p;
    return p;
  }
  bool on() const { return on_; }
  void add(const char* what, cudaEvent_t a, cudaEvent_t b, double host_ms) {
    pending_.push_back({what, a, b, last_b_, last_what_, ordinal_++});
    last_b_ = b;
    last_what_ = what;
    totals_[what].host_ms += host_ms;
    if (pending_.size() >= 4096) drain(/*wait=*/false);
    // The first optimizer steps find cuBLASLt plans and grow buffers: left out, so the figures are
    // the steady state's (one adamw_step call ends each training step).
    if (std::strcmp(what, "adamw_step") != 0) return;
    ordinal_ = 0;  // calls are numbered within a step; AdamW ends one
    if (++steps_ == kSkipSteps) {
      drain(/*wait=*/true);
      totals_.clear();
      idle_at_.clear();
      gaps_ms_ = 0;
    }
  }
  // Resolves the pending pairs in order: all of them (wait), or those whose end event has completed.
  void drain(bool wait) {
    size_t done = 0;
    for (; done < pending_.size(); ++done) {
      const Pending& p = pending_[done];
      if (wait)
        cudaEventSynchronize(p.b);
      else if (cudaEventQuery(p.b) != cudaSuccess)
        break;
      float ms = 0;
      cudaEventElapsedTime(&ms, p.a, p.b);
      auto& e = totals_[p.what];
      e.gpu_ms += ms;
      e.calls += 1;
      if (p.prev) {
        float gap = 0;
        cudaEventElapsedTime(&gap, p.prev, p.a);
        gaps_ms_ += gap;
        e.gap_before_ms += gap;
        if (gap > 0.01f) {
          auto& w = idle_at_[{p.ordinal, std::string(p.prev_what ? p.prev_what : "") + " -> " + p.what}];
          w.first += gap;
          w.second += 1;
        }
      }
    }
    if (done == 0) return;
    // Every resolved event goes back to the pool except the last resolved end event: the next pair's gap
    // starts there.
    if (held_) free_.push_back(held_);
    for (size_t i = 0; i < done; ++i) {
      free_.push_back(pending_[i].a);
      if (i + 1 < done) free_.push_back(pending_[i].b);
    }
    held_ = pending_[done - 1].b;
    pending_.erase(pending_.begin(), pending_.begin() + (std::ptrdiff_t)done);
  }
  cudaEvent_t event() {
    if (free_.empty()) {
      cudaEvent_t e;
      cudaEventCreate(&e);
      return e;
    }
    cudaEvent_t e = free_.back();
    free_.pop_back();
    return e;
  }
  ~Profile() {
    if (!on_) return;
    drain(/*wait=*/true);
    if (totals_.empty()) return;
    double all = 0, host = 0;
    for (auto& [k, v] : totals_) {
      all += v.gpu_ms;
      host += v.host_ms;
    }
    const int steps = steps_ - kSkipSteps;
    std::fprintf(stderr,
                 "ONEBIT_CUDA_PROFILE: %.1f ms of GPU time in CudaOps calls, %.1f ms of GPU time between calls "
                 "(waiting for the host), %.1f ms of host time inside the calls",
                 all, gaps_ms_, host);
    if (steps > 0)
      std::fprintf(stderr, "; over %d training steps after the first %d: %.2f ms of GPU time per step", steps,
                   kSkipSteps, (all + gaps_ms_) / steps);
    std::fprintf(stderr, "\n");
    std::multimap<double, std::string, std::greater<>> order;
    for (auto& [k, v] : totals_) order.emplace(v.gpu_ms, k);
    // "idle before": GPU time between the previous call's end and this kind's starts, summed: where the GPU
    // waited (for the host to launch, or for a copy to or from the host, which is not a call).
    std::fprintf(stderr, "  %-26s %10s %6s %8s %9s %9s %14s\n", "call", "GPU ms", "%", "calls", "GPU us/c", "host us/c",
                 "idle before ms");
    for (auto& [ms, k] : order) {
      const Total& t = totals_[k];
      std::fprintf(stderr, "  %-26s %10.2f %5.1f%% %8ld %9.1f %9.1f %14.2f\n", k.c_str(), ms, 100 * ms / all, t.calls,
                   1e3 * ms / (double)t.calls, 1e3 * t.host_ms / (double)t.calls, t.gap_before_ms);
    }
    // Where in the step the GPU waited longest: call number within the step (0 = the first call after
    // the previous step's AdamW), the calls on either side of the gap, total idle and how often.
    std::multimap<double, std::string, std::greater<>> idle;
    for (auto& [k, v] : idle_at_)
      idle.emplace(v.first, cat("  call ", k.first, " (", k.second, "): ", v.first, " ms in ", v.second, " steps"));
    std::fprintf(stderr, "  largest GPU idle gaps (over 10 us), summed over the steps:\n");
    int shown = 0;
    for (auto& [ms, line] : idle)
      if (shown++ < 12) std::fprintf(stderr, "%s\n", line.c_str());
  }

 private:
  struct Pending {
    const char* what;
    cudaEvent_t a, b, prev;
    const char* prev_what;
    int ordinal;
  };
  struct Total {
    double gpu_ms = 0, host_ms = 0, gap_before_ms = 0;
    long calls = 0;
  };
  Profile() {
    const char* e = std::getenv("ONEBIT_CUDA_PROFILE");
    on_ = e && *e && *e != '0';
  }
  static constexpr int kSkipSteps = 2;
  bool on_ = false;
  int steps_ = 0;
  std::vector<Pending> pending_;
  std::vector<cudaEvent_t> free_;
  cudaEvent_t last_b_ = nullptr, held_ = nullptr;
  const char* last_what_ = nullptr;
  int ordinal_ = 0;
  std::map<std::pair<int, std::string>, std::pair<double, int>> idle_at_;
  double gaps_ms_ = 0;
  std::map<std::string, Total> totals_;
};

// Times one call when profiling (see Profile); otherwise does nothing.
class Timed {
 public:
  Timed(const char* what, cudaStream_t s) : what_(what), s_(s) {
    if (!Profile::get().on()) return;
    a_ = Profile::get().event();
    b_ = Profile::get().event();
    cudaEventRecord(a_, s_);
    t0_ = std::chrono::steady_clock::now();
  }
  ~Timed() {
    if (!a_) return;
    const double host_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0_).count();
    cudaEventRecord(b_, s_);
    Profile::get().add(what_, a_, b_, host_ms);
  }

 private:
  const char* what_;
  cudaStream_t s_;
  cudaEvent_t a_ = nullptr, b_ = nullptr;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace

#define OB_TIMED(name) Timed ob_timed_(name, impl_->stream)

namespace {
struct CudaPackedTernary;
// The live packs in the order they were made: the network packs its linears in forward order, so the
// packs after a weight are the ones its layer multiplies next.
struct PackRegistry {
  std::vector<const CudaPackedTernary*> order;
};
}  // namespace

struct CudaOps::Impl {
  cudaStream_t stream = nullptr;
  std::unordered_map<void*, size_t> sizes;  // live allocations, for the byte counts
  // The int8 forward (pack_ternary, ternary_linear_forward).
  bool int8_on = false;
  std::shared_ptr<PackRegistry> packs = std::make_shared<PackRegistry>();
  int8_t* codes = nullptr;   // the last quantization's codes [slot_n, slot_c] and row factors
  float* factors = nullptr;
  size_t codes_cap = 0, factors_cap = 0;
  // Weights' ternary codes, converted a run of packs at a time (see ternary_linear_forward); `converted`
  // says where each pack's codes are, until a weight quantization rewrites the effective weights.
  int8_t* tcodes = nullptr;
  size_t tcodes_cap = 0;
  std::unordered_map<const PackedTernary*, size_t> converted;
  const void* slot = nullptr;  // the bf16 output whose codes `codes` holds (null: none)
  int slot_n = 0, slot_c = 0;
  int64_t int8_products = 0, int8_fallbacks = 0;
  bool int8_groups = true;  // ternary_linear_forward_group's one product per group (ONEBIT_CUDA_INT8_GROUPS)
};

namespace {
// A 0/1 switch from the environment: unset or empty gives `unset`; any value but 0 or 1 is an error naming it.
bool env_switch(const char* name, bool unset) {
  const char* e = std::getenv(name);
  if (!e || !*e) return unset;
  OB_CHECK(std::string(e) == "0" || std::string(e) == "1", name, " must be 0 or 1 (got '", e, "')");
  return std::string(e) == "1";
}

// On by default where the kernel can run: on the H200 the int8 products run at 1.55-1.89x cuBLASLt's bf16 rate,
// more than the weight-code conversion and the codes the quantizers write cost (docs/benchmarks.md "The
// Hard-phase forward on int8 tensor cores"); ONEBIT_CUDA_INT8_FORWARD=0 turns it off for A/B runs.
bool int8_forward_enabled() { return env_switch("ONEBIT_CUDA_INT8_FORWARD", true) && int8_gemm_available(); }

// What pack_ternary keeps: the effective weight, whose codes are converted into one buffer a few weights
// at a time before their products, so the packs cost no memory of their own (a per-weight int8 copy is
// 0.3 GB at the 0.3b shape, more than the memory margin under torch.compile).
struct CudaPackedTernary final : PackedTernary {
  explicit CudaPackedTernary(std::shared_ptr<PackRegistry> reg) : reg_(std::move(reg)) { reg_->order.push_back(this); }
  ~CudaPackedTernary() override { reg_->order.erase(std::find(reg_->order.begin(), reg_->order.end(), this)); }
  const bf16* w_eff = nullptr;
  const QuantScale* scale = nullptr;
  int out = 0, in = 0;
  // Its product runs with the next pack's (ternary_linear_forward_group reads their codes as one matrix), so a
  // conversion run does not end between the two. Set by the group's first product, kept for later ones.
  mutable bool joins_next = false;

 private:
  std::shared_ptr<PackRegistry> reg_;
};

// Codes converted per launch: a layer's weights at the presets' shapes (7.1M at 125m, 12.8M at 0.3b-stack).
constexpr size_t kCodesRun = size_t{16} << 20;
}  // namespace

CudaOps::CudaOps() : impl_(std::make_unique<Impl>()) {
  OB_CHECK(device_available(), "--device cuda: no usable CUDA device is visible (check nvidia-smi and "
                               "CUDA_VISIBLE_DEVICES)");
  (void)default_attention_kernels();  // a bad $ONEBIT_CUDA_ATTENTION fails here, before any work
  OB_CUDA(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking));
  constexpr size_t kWorkspace = size_t{32} << 20;
  ctx_ = std::make_unique<Context>(impl_->stream, kWorkspace);
  allocated_ = peak_ = ctx_->held_bytes();
  // The context's scratch and counters grow during the first step: part of the peak as much as any
  // buffer of the network (torch.cuda.max_memory_allocated counts its workspaces too).
  ctx_->on_growth([this](size_t bytes) {
    allocated_ += bytes;
    peak_ = std::max(peak_, allocated_);
  });
  loss_tmp_ = static_cast<float*>(alloc_bytes(sizeof(float)));
  impl_->int8_on = int8_forward_enabled();
  impl_->int8_groups = env_switch("ONEBIT_CUDA_INT8_GROUPS", true);
}

CudaOps::~CudaOps() {
  cudaStreamSynchronize(impl_->stream);
  for (auto& [p, n] : impl_->sizes) cudaFree(p);
  ctx_.reset();
  cudaStreamDestroy(impl_->stream);
}

void* CudaOps::alloc_bytes(size_t bytes) {
  if (bytes == 0) bytes = 16;
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    fail("CUDA: out of device memory allocating ", bytes >> 20, " MiB (", free_b >> 20, " MiB free of ",
         total_b >> 20, "); use a smaller --batch-size or more --gradient-checkpointing-segments");
  }
  OB_CUDA(cudaMemsetAsync(p, 0, bytes, impl_->stream));
  impl_->sizes[p] = bytes;
  allocated_ += bytes;
  peak_ = std::max(peak_, allocated_);
  return p;
}

void CudaOps::free_bytes(void* p) {
  if (!p) return;
  auto it = impl_->sizes.find(p);
  OB_CHECK(it != impl_->sizes.end(), "CudaOps::free: not memory of this backend");
  allocated_ -= it->second;
  impl_->sizes.erase(it);
  OB_CUDA(cudaStreamSynchronize(impl_->stream));  // queued launches may still use it
  OB_CUDA(cudaFree(p));
}

void CudaOps::synchronize() { OB_CUDA(cudaStreamSynchronize(impl_->stream)); }

void CudaOps::zero_bytes(void* p, size_t bytes) {
  OB_TIMED("zero");
  OB_CUDA(cudaMemsetAsync(p, 0, bytes, impl_->stream));
}
void CudaOps::upload_bytes(void* dst, const void* host, size_t bytes) { cuda::upload(dst, host, bytes, impl_->stream); }
void CudaOps::download_bytes(void* host, const void* src, size_t bytes) {
  cuda::download(host, src, bytes, impl_->stream);
}
void CudaOps::copy_bytes(void* dst, const void* src, size_t bytes) {
  OB_TIMED("copy");
  OB_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, impl_->stream));
}

void CudaOps::axpy(float* y, float a, const float* x, size_t n) {
  OB_TIMED("axpy");
  cuda::axpy(*ctx_, y, a, x, n);
}
void CudaOps::scale_act(bf16* y, float a, const bf16* x, size_t n) {
  OB_TIMED("scale_act");
  cuda::scale(*ctx_, y, a, x, n);
}

void CudaOps::grad_norm_sq(double* norm_sq, const float* g, size_t n) {
  OB_TIMED("grad_norm_sq");
  cuda::grad_norm_sq(*ctx_, norm_sq, g, n);
}
void CudaOps::clip_factor(float* factor, const double* norm_sq, double max_norm) {
  OB_TIMED("clip_factor");
  cuda::clip_factor(*ctx_, factor, norm_sq, max_norm);
}
void CudaOps::adamw_step(float* params, const float* grads, float* m, float* v, const AdamWRange* ranges,
                         size_t num_ranges, const AdamWHyper& h, const float* clip) {
  OB_TIMED("adamw_step");
  cuda::adamw_step(*ctx_, params, grads, m, v, ranges, num_ranges, h, clip);
}

void CudaOps::gemm(bool ta, bool tb, int M, int N, int K, float alpha, const bf16* a, int lda, const bf16* b, int ldb,
                   float beta, bf16* c, int ldc) {
  OB_TIMED("gemm");
  matmul(*ctx_, ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc, OutType::BF16);
}
void CudaOps::gemm_acc(bool ta, bool tb, int M, int N, int K, float alpha, const bf16* a, int lda, const bf16* b,
                       int ldb, float beta, float* c, int ldc) {
  OB_TIMED("gemm_acc (dW)");
  matmul(*ctx_, ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc, OutType::F32);
}

void CudaOps::embedding_forward(bf16* out, const int32_t* tokens, const bf16* table, int N, int C, int vocab) {
  OB_TIMED("embedding_forward");
  cuda::embedding_forward(*ctx_, out, tokens, table, N, C, vocab);
}
void CudaOps::embedding_backward(float* dtable, const bf16* dout, const int32_t* tokens, int N, int C) {
  OB_TIMED("embedding_backward");
  cuda::embedding_backward(*ctx_, dtable, dout, tokens, N, C);
}
void CudaOps::rmsnorm_forward(bf16* out, bf16* out_q, float* rstd, const bf16* x, const float* w, int N, int C,
                              float eps) {
  const Int8Rows codes = out_q ? int8_rows_for(out_q, N, C) : Int8Rows{};
  OB_TIMED(C <= 256 ? "rmsnorm_forward (qk)" : "rmsnorm_forward");
  cuda::rmsnorm_forward(*ctx_, out, out_q, rstd, x, w, N, C, eps, codes);
}
void CudaOps::rmsnorm_backward(bf16* dx, float* dw, const bf16* dout, const bf16* x, const float* w,
                               const float* rstd, int N, int C) {
  // Rows of 512 and more go block-a-row by default: in one H200 call (session 19) the 0.3b-stack step (rows of 1024)
  // ran 297,671 -> 301,595 tok/s with it, the 125m step (768) unchanged within the spread; the kernel alone is
  // 10-21% faster at both. $ONEBIT_CUDA_NORM_ROWS_BY_BLOCK 0 / 1 puts every row up to 1024 on one kernel.
  static const char* env = std::getenv("ONEBIT_CUDA_NORM_ROWS_BY_BLOCK");
  static const int forced = env && *env ? (int)env_switch("ONEBIT_CUDA_NORM_ROWS_BY_BLOCK", false) : -1;
  const bool by_block = forced >= 0 ? forced == 1 : C >= 512;
  OB_TIMED(C <= 256 ? "rmsnorm_backward (qk)" : "rmsnorm_backward");
  cuda::rmsnorm_backward(*ctx_, dx, dw, dout, x, w, rstd, N, C, by_block);
}
void CudaOps::act_quant_int8(bf16* out, const bf16* x, int N, int C) {
  const Int8Rows codes = int8_rows_for(out, N, C);
  OB_TIMED("act_quant_int8");
  cuda::act_quant_int8(*ctx_, out, x, N, C, codes);
}
void CudaOps::weight_quant_scale(QuantScale* scale, const float* w, size_t n, WeightQuant q) {
  OB_TIMED("weight_quant_scale");
  cuda::weight_quant_scale(*ctx_, scale, w, n, q);
}
void CudaOps::ternary_scale_clamped(QuantScale* scale, const float* w, size_t n) {
  OB_TIMED("weight_quant_scale");
  cuda::ternary_scale_clamped(*ctx_, scale, w, n);
}
void CudaOps::weight_quantize(bf16* out, const float* w, size_t n, WeightQuant q, const QuantScale* scale,
                              float soft_k) {
  impl_->converted.clear();  // the codes of any weight may change
  OB_TIMED("weight_quantize");
  weight_quantize_scaled(*ctx_, out, scale, w, n, q, soft_k);
}
void CudaOps::weight_code_counts(int64_t* counts, const float* w, size_t n, WeightQuant q, const QuantScale* scale) {
  OB_TIMED("weight_code_counts");
  cuda::weight_code_counts(*ctx_, counts, w, n, q, scale);
}
void CudaOps::rope(bf16* x, const float* cos, const float* sin, int B, int Tn, int H, int hd, bool inverse) {
  OB_TIMED("rope");
  cuda::rope(*ctx_, x, cos, sin, B, Tn, H, hd, inverse);
}
void CudaOps::attention_forward(bf16* y, float* lse, const bf16* q, const bf16* k, const bf16* v, int B, int Tn,
                                int H, int KV, int hd, float p, uint64_t seed) {
  OB_TIMED("attention_forward");
  cuda::attention_forward(*ctx_, y, lse, q, k, v, B, Tn, H, KV, hd, p, seed);
}
void CudaOps::attention_backward(bf16* dq, bf16* dk, bf16* dv, const bf16* dy, const bf16* q, const bf16* k,
                                 const bf16* v, const bf16* y, const float* lse, int B, int Tn, int H, int KV, int hd,
                                 float p, uint64_t seed) {
  OB_TIMED("attention_backward");
  cuda::attention_backward(*ctx_, dq, dk, dv, dy, q, k, v, y, lse, B, Tn, H, KV, hd, p, seed);
}
void CudaOps::gated_act_forward(bf16* out, const bf16* gate, const bf16* up, size_t n, GatedAct act) {
  OB_TIMED("gated_act_forward");
  cuda::gated_act_forward(*ctx_, out, gate, up, n, act);
}
void CudaOps::qk_norm_rope_forward(bf16* out, float* rstd, const bf16* x, const float* w, const float* cos,
                                   const float* sin, int B, int Tn, int H, int hd, float eps) {
  if (!cuda::qk_norm_rope_fusable(hd) || !aligned16(out) || !aligned16(x))
    return Ops::qk_norm_rope_forward(out, rstd, x, w, cos, sin, B, Tn, H, hd, eps);
  OB_TIMED("qk_norm_rope_forward");
  cuda::qk_norm_rope_forward(*ctx_, out, rstd, x, w, cos, sin, B, Tn, H, hd, eps);
}
void CudaOps::qk_norm_rope_backward(bf16* dx, float* dw, bf16* dout, const bf16* x, const float* w, const float* rstd,
                                    const float* cos, const float* sin, int B, int Tn, int H, int hd) {
  if (!cuda::qk_norm_rope_fusable(hd) || !aligned16(dx) || !aligned16(dout) || !aligned16(x))
    return Ops::qk_norm_rope_backward(dx, dw, dout, x, w, rstd, cos, sin, B, Tn, H, hd);
  OB_TIMED("qk_norm_rope_backward");
  cuda::qk_norm_rope_backward(*ctx_, dx, dw, dout, x, w, rstd, cos, sin, B, Tn, H, hd);
}
void CudaOps::gated_act_quant_forward(bf16* out, bf16* out_q, const bf16* gate, const bf16* up, int N, int C,
                                      GatedAct act) {
  {
    const Int8Rows codes = int8_rows_for(out_q, N, C);
    OB_TIMED("gated_act_quant_forward");
    if (cuda::gated_act_quant_forward(*ctx_, out, out_q, gate, up, N, C, act, codes)) return;
    impl_->slot = nullptr;  // not written
  }
  Ops::gated_act_quant_forward(out, out_q, gate, up, N, C, act);  // its act_quant_int8 writes codes
}

Int8Rows CudaOps::int8_rows_for(const bf16* out_q, int N, int C) {
  Impl& m = *impl_;
  m.slot = nullptr;  // every quantization replaces the last one's codes
  if (!m.int8_on || m.packs->order.empty() || C % 16 != 0) return {};
  grow_buffer(m.codes, m.codes_cap, (size_t)N * C);
  grow_buffer(m.factors, m.factors_cap, (size_t)N);
  m.slot = out_q, m.slot_n = N, m.slot_c = C;
  return Int8Rows{m.codes, m.factors};
}

bool CudaOps::pack_ternary(std::unique_ptr<PackedTernary>& packed, const bf16* w_eff, int out, int in,
                           const QuantScale* scale) {
  // K a multiple of 16 (16-byte code rows) and an even output width (bf16 pairs): the presets' shapes.
  if (!impl_->int8_on || in % 16 != 0 || out % 2 != 0) return false;
  auto* p = dynamic_cast<CudaPackedTernary*>(packed.get());
  if (!p) {
    packed = std::make_unique<CudaPackedTernary>(impl_->packs);
    p = static_cast<CudaPackedTernary*>(packed.get());
  }
  p->w_eff = w_eff, p->scale = scale, p->out = out, p->in = in;
  impl_->converted.clear();
  return true;
}

void CudaOps::ternary_linear_forward(bf16* y, const bf16* xq, int N, const PackedTernary& packed) {
  const auto& p = dynamic_cast<const CudaPackedTernary&>(packed);
  Impl& m = *impl_;
  if (m.slot != xq || m.slot_n != N || m.slot_c != p.in) {
    // The input is not the last quantization (a caller that quantized elsewhere): the same effective
    // values through the bf16 product.
    ++m.int8_fallbacks;
    return gemm(false, true, N, p.out, p.in, 1.0f, xq, p.in, p.w_eff, p.in, 0.0f, y, p.out);
  }
  // Two statements: weight_codes may reallocate tcodes, and the operands of + are unsequenced (reading the old
  // pointer first was an illegal address on the GPU).
  const size_t at = weight_codes(p);
  const int8_t* wc = m.tcodes + at;
  OB_TIMED("int8_linear_forward");
  cuda::int8_linear_forward(*ctx_, y, m.codes, m.factors, wc, &p.scale->scale, N, p.out, p.in);
  ++m.int8_products;
}

size_t CudaOps::weight_codes(const PackedTernary& packed) {
  Impl& m = *impl_;
  if (const auto at = m.converted.find(&packed); at != m.converted.end()) return at->second;
  // Convert this weight and the packs made after it, up to kCodesRun codes (or this one alone if larger, and never
  // ending inside a group: the group's packs in full): the rest of its layer, whose products follow (a launch per
  // weight cost 0.47 ms a 125m step; per run of a layer ~0.1 ms). Each pack's codes start on a 16-byte boundary,
  // as the int8 GEMM needs, right after the previous pack's where those are a multiple of 16 (as every pack's are:
  // pack_ternary takes in % 16 == 0), so a group's codes are one matrix.
  const auto& order = m.packs->order;
  const size_t first = std::find(order.begin(), order.end(), &packed) - order.begin();
  OB_CHECK(first < order.size(), "ternary_linear_forward: a pack this backend does not know");
  std::vector<cuda::TernaryCodesJob> jobs;
  std::vector<size_t> offsets;  // each job's codes in tcodes, known before the buffer is (re)allocated
  size_t used = 0;
  m.converted.clear();
  for (size_t i = first; i < order.size(); ++i) {
    const size_t n = (size_t)order[i]->out * order[i]->in;
    if (i > first && !order[i - 1]->joins_next && used + n > kCodesRun) break;
    jobs.push_back({nullptr, order[i]->w_eff, n});
    offsets.push_back(used);
    m.converted[order[i]] = used;
    used += (n + 15) / 16 * 16;
  }
  grow_buffer(m.tcodes, m.tcodes_cap, used);
  for (size_t k = 0; k < jobs.size(); ++k) jobs[k].t = m.tcodes + offsets[k];
  OB_TIMED("ternary_codes");
  cuda::ternary_codes_many(*ctx_, jobs.data(), jobs.size());
  return 0;  // the run starts with this pack
}

const int8_t* CudaOps::stacked_codes(const PackedTernary* const* packs, int count) {
  Impl& m = *impl_;
  // Only packs made one after another are converted one after another.
  const auto& order = m.packs->order;
  const auto first = std::find(order.begin(), order.end(), packs[0]);
  if (order.end() - first < count || !std::equal(packs, packs + count, first)) return nullptr;
  const auto stacked = [&] {
    for (int s = 1; s < count; ++s) {
      const auto prev = m.converted.find(packs[s - 1]), at = m.converted.find(packs[s]);
      const auto* p = static_cast<const CudaPackedTernary*>(packs[s - 1]);
      if (at == m.converted.end() || at->second != prev->second + (size_t)p->out * p->in) return false;
    }
    return true;
  };
  for (int s = 0; s + 1 < count; ++s) static_cast<const CudaPackedTernary*>(packs[s])->joins_next = true;
  size_t at = weight_codes(*packs[0]);
  if (!stacked()) {
    // The run that holds the first member was made before this group was known and ended inside it (once per
    // group after the packs are made: later runs keep it whole).
    m.converted.clear();
    at = weight_codes(*packs[0]);
  }
  return m.tcodes + at;
}

bool CudaOps::ternary_linear_forward_group(bf16* const* ys, const bf16* xq, int N, const PackedTernary* const* packs,
                                           int count) {
  Impl& m = *impl_;
  if (!m.int8_groups || count < 2 || count > cuda::kInt8GroupMax) return false;
  const CudaPackedTernary* p[cuda::kInt8GroupMax];
  cuda::Int8GroupOut outs[cuda::kInt8GroupMax];
  for (int s = 0; s < count; ++s) {
    p[s] = dynamic_cast<const CudaPackedTernary*>(packs[s]);
    if (!p[s] || p[s]->in != p[0]->in) return false;
    outs[s] = {ys[s], &p[s]->scale->scale, p[s]->out};
  }
  // The input must be the last quantization, as for ternary_linear_forward's int8 path (where it is not, each
  // member's own call runs the bf16 product), and the outputs must suit one launch.
  if (m.slot != xq || m.slot_n != N || m.slot_c != p[0]->in || !cuda::int8_group_fits(outs, count)) return false;
  const int8_t* wc = stacked_codes(packs, count);
  if (!wc) return false;
  OB_TIMED("int8_linear_forward");
  cuda::int8_linear_forward_group(*ctx_, outs, count, m.codes, m.factors, wc, N, p[0]->in);
  ++m.int8_products;  // one product for the group
  return true;
}

int64_t CudaOps::int8_products() const { return impl_->int8_products; }
int64_t CudaOps::int8_fallbacks() const { return impl_->int8_fallbacks; }
void CudaOps::weight_quantize_many(const QuantJob* jobs, size_t njobs, int64_t* counts) {
  impl_->converted.clear();  // the codes of any weight may change
  std::vector<cuda::ManyQuantJob> fast;
  fast.reserve(njobs);
  for (size_t i = 0; i < njobs; ++i) {
    const QuantJob& j = jobs[i];
    const cuda::ManyQuantJob m{j.w, j.n, j.q, j.scale, j.with_scale, j.clamped, j.out, j.soft_k};
    if (cuda::many_fast_kind(m))
      fast.push_back(m);
    else
      Ops::weight_quantize_many(&j, 1, counts);  // binary / int8 / bf16: the per-tensor kernels
  }
  if (fast.empty()) return;
  OB_TIMED("weight_quantize_many");
  cuda::weight_quantize_many(*ctx_, fast.data(), fast.size(), counts);
}
void CudaOps::gated_act_backward(bf16* dgate, bf16* dup, const bf16* dout, const bf16* gate, const bf16* up, size_t n,
                                 GatedAct act) {
  OB_TIMED("gated_act_backward");
  cuda::gated_act_backward(*ctx_, dgate, dup, dout, gate, up, n, act);
}
bool CudaOps::prefers_fused_projections() const {
  static const bool on = env_switch("ONEBIT_CUDA_FUSED_PROJECTIONS", true);
  return on;
}
void CudaOps::attention_backward_ld(bf16* dq, bf16* dk, bf16* dv, int ld_dv, const bf16* dy, const bf16* q,
                                    const bf16* k, const bf16* v, const bf16* y, const float* lse, int B, int Tn,
                                    int H, int KV, int hd, float p, uint64_t seed) {
  if (ld_dv % 8 != 0)
    return Ops::attention_backward_ld(dq, dk, dv, ld_dv, dy, q, k, v, y, lse, B, Tn, H, KV, hd, p, seed);
  OB_TIMED("attention_backward");
  cuda::attention_backward(*ctx_, dq, dk, dv, dy, q, k, v, y, lse, B, Tn, H, KV, hd, p, seed,
                           cuda::default_attention_kernels(), ld_dv);
}
void CudaOps::qk_norm_rope_backward_ld(bf16* dx, int ld_dx, float* dw, bf16* dout, const bf16* x, const float* w,
                                       const float* rstd, const float* cos, const float* sin, int B, int Tn, int H,
                                       int hd) {
  if (!cuda::qk_norm_rope_fusable(hd) || !aligned16(dx) || !aligned16(dout) || !aligned16(x) || ld_dx % 8 != 0)
    return Ops::qk_norm_rope_backward_ld(dx, ld_dx, dw, dout, x, w, rstd, cos, sin, B, Tn, H, hd);
  OB_TIMED("qk_norm_rope_backward");
  cuda::qk_norm_rope_backward(*ctx_, dx, dw, dout, x, w, rstd, cos, sin, B, Tn, H, hd, ld_dx);
}
void CudaOps::gated_act_backward_ld(bf16* dgate, bf16* dup, int ld, const bf16* dout, const bf16* gate,
                                    const bf16* up, int N, int C, GatedAct act) {
  OB_TIMED("gated_act_backward");
  cuda::gated_act_backward_rows(*ctx_, dgate, dup, ld, dout, gate, up, N, C, act);
}
namespace {
bool fused_sub_norm_enabled() {
  static const bool on = env_switch("ONEBIT_CUDA_FUSED_SUB_NORM", true);
  return on;
}
}  // namespace
bool CudaOps::gated_sub_norm_forward(bf16* out, bf16* out_q, float* rstd, const bf16* gate, const bf16* up,
                                     const float* w, int N, int C, float eps, GatedAct act) {
  if (!fused_sub_norm_enabled() || !cuda::sub_norm_fusable(N, C, {out, out_q, gate, up})) return false;
  const Int8Rows codes = out_q ? int8_rows_for(out_q, N, C) : Int8Rows{};
  OB_TIMED("gated_sub_norm_forward");
  cuda::gated_sub_norm_forward(*ctx_, out, out_q, rstd, gate, up, w, N, C, eps, act, codes);
  return true;
}
bool CudaOps::sub_norm_gated_backward(bf16* dgate, bf16* dup, int ld, float* dw, const bf16* dout, const float* w,
                                      const float* rstd, const bf16* gate, const bf16* up, int N, int C,
                                      GatedAct act) {
  if (!fused_sub_norm_enabled()) return false;
  OB_TIMED("sub_norm_gated_backward");
  return cuda::sub_norm_gated_backward(*ctx_, dgate, dup, ld, dw, dout, w, rstd, gate, up, N, C, act);
}
void CudaOps::residual_forward(bf16* out, const bf16* x, const bf16* y, float scale, float p, uint64_t seed,
                               size_t n) {
  OB_TIMED("residual_forward");
  cuda::residual_forward(*ctx_, out, x, y, scale, p, seed, n);
}
void CudaOps::residual_backward(bf16* dy, const bf16* dout, float scale, float p, uint64_t seed, size_t n) {
  OB_TIMED("residual_backward");
  cuda::residual_backward(*ctx_, dy, dout, scale, p, seed, n);
}
void CudaOps::cross_entropy(bf16* logits, float* losses, double* loss_sum, const int32_t* targets, int N, int V,
                            float dscale, bool want_grad) {
  OB_TIMED("cross_entropy");
  cuda::cross_entropy(*ctx_, logits, losses, loss_sum ? loss_tmp_ : nullptr, targets, N, V, dscale, want_grad);
  if (loss_sum) add_to_f64(*ctx_, loss_sum, loss_tmp_);
}

}  // namespace onebit::kernels::cuda
