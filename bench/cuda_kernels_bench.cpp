// Times every CUDA training kernel on the training shapes of the 125m and 0.3b-stack presets
// (configs/*.json; batch 16 x 1024 tokens, vocab 32000 as the torch peer benchmark) and prints the
// achieved TFLOP/s (matmuls, attention) or GB/s (memory-bound kernels) against the GPU's own
// ceilings measured in the same run: a large cuBLASLt bf16 GEMM and a device-to-device copy.
// Writes bench/results/cuda_kernels.json. Usage: bench_cuda_kernels [iterations]
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "onebit/core/json_util.h"
#include "onebit/kernels/cuda/cuda_kernels.h"
#include "onebit/kernels/cuda/cuda_ops.h"
#include "onebit/model/param_layout.h"
#include "onebit/train/adamw.h"

using namespace onebit;
using namespace onebit::kernels;
using namespace onebit::kernels::cuda;

namespace {

int iters = 20;

// Mean milliseconds per call over `iters` calls after 3 warm-up calls (CUDA events on the stream).
double time_ms(Context& ctx, const std::function<void()>& fn) {
  for (int i = 0; i < 3; ++i) fn();
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  cudaEventRecord(a, ctx.stream());
  for (int i = 0; i < iters; ++i) fn();
  cudaEventRecord(b, ctx.stream());
  cudaEventSynchronize(b);
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  check_last_launch("benchmark");
  return ms / iters;
}

// Device buffers filled with small random-ish values (a bf16 ramp; content does not change timing
// except for the quantizers, which see a realistic spread).
struct Buffers {
  std::vector<void*> all;
  ~Buffers() {
    for (void* p : all) device_free(p);
  }
  template <typename T>
  T* get(size_t n) {
    all.push_back(device_alloc(sizeof(T) * n));
    return static_cast<T*>(all.back());
  }
  bf16* bf(size_t n) {
    bf16* p = get<bf16>(n);
    std::vector<bf16> h(std::min<size_t>(n, 1 << 20));
    for (size_t i = 0; i < h.size(); ++i) h[i] = to_bf16(0.02f * std::sin(0.37f * (float)i));
    for (size_t off = 0; off < n; off += h.size())
      upload(p + off, h.data(), sizeof(bf16) * std::min(h.size(), n - off));
    return p;
  }
  float* f32(size_t n, float scale = 0.02f) {
    float* p = get<float>(n);
    std::vector<float> h(std::min<size_t>(n, 1 << 20));
    for (size_t i = 0; i < h.size(); ++i) h[i] = scale * std::sin(0.71f * (float)i);
    for (size_t off = 0; off < n; off += h.size())
      upload(p + off, h.data(), sizeof(float) * std::min(h.size(), n - off));
    return p;
  }
};

json results = json::object();

void report(const std::string& shape, const std::string& name, double ms, double flops, double bytes,
            double peak_tflops, double peak_gbs) {
  json r{{"ms", ms}};
  std::printf("%-12s %-34s %9.3f ms", shape.c_str(), name.c_str(), ms);
  if (flops > 0) {
    const double tf = flops / ms / 1e9;
    r["tflops"] = tf;
    r["fraction_of_cublas_peak"] = tf / peak_tflops;
    std::printf("  %7.1f TFLOP/s (%4.0f%% of measured cuBLAS peak)", tf, 100 * tf / peak_tflops);
  }
  if (bytes > 0) {
    const double gbs = bytes / ms / 1e6;
    r["gbs"] = gbs;
    r["fraction_of_copy_bandwidth"] = gbs / peak_gbs;
    std::printf("  %7.0f GB/s (%4.0f%% of copy)", gbs, 100 * gbs / peak_gbs);
  }
  std::printf("\n");
  results[shape][name] = r;
}

struct Preset {
  std::string name;
  int C, H, KV, I, V;
};

Preset load_preset(const std::string& name) {
  const auto j = read_json_file(fs::path(ONEBIT_SOURCE_DIR) / "configs" / (name + ".json"));
  const std::string where = "configs/" + name + ".json";
  return Preset{name, json_get<int>(j, "hidden_size", where), json_get<int>(j, "num_attention_heads", where),
                json_get<int>(j, "num_key_value_heads", where), json_get<int>(j, "intermediate_size", where), 32000};
}

void bench_preset(Context& ctx, const Preset& p, double peak_tf, double peak_gbs) {
  const int B = 16, T = 1024, N = B * T, C = p.C, H = p.H, KV = p.KV, hd = C / H, I = p.I, V = p.V;
  Buffers buf;
  auto rep = [&](const std::string& n, double ms, double fl, double by) { report(p.name, n, ms, fl, by, peak_tf, peak_gbs); };
  // Matmuls: the MLP up projection (x[N,C] W[I,C]ᵀ) and its two backward products.
  {
    bf16 *x = buf.bf((size_t)N * C), *W = buf.bf((size_t)I * C), *y = buf.bf((size_t)N * I);
    float* dW = buf.f32((size_t)I * C);
    const double fl = 2.0 * N * C * I;
    rep("matmul y=xW^T [N,C]x[I,C]", time_ms(ctx, [&] { linear_forward(ctx, y, x, W, N, C, I); }), fl, 0);
    rep("matmul dx=dyW", time_ms(ctx, [&] { linear_backward_input(ctx, x, y, W, N, C, I); }), fl, 0);
    rep("matmul dW+=dy^Tx (f32)", time_ms(ctx, [&] { linear_backward_weight(ctx, dW, y, x, N, C, I); }), fl, 0);
  }
  // The Hard-phase forward products, bf16 cuBLASLt beside the int8 tensor-core kernel (where it runs):
  // Q/K/V/O ([N,C] x [C,C]), gate/up ([N,C] x [I,C]) and down ([N,I] x [C,I]). Codes are a pseudo-random
  // spread (all-zero operands would flatter the tensor cores' power draw).
  for (const auto& [what, K, O] : {std::tuple{"q/k/v/o", C, C}, std::tuple{"gate/up", C, I}, std::tuple{"down", I, C}}) {
    bf16 *x = buf.bf((size_t)N * K), *W = buf.bf((size_t)O * K), *y = buf.bf((size_t)N * O);
    const double fl = 2.0 * N * K * O;
    const std::string shape = std::string("fwd ") + what + " [N," + std::to_string(K) + "]x[" + std::to_string(O) +
                              "," + std::to_string(K) + "]";
    const double ms_bf16 = time_ms(ctx, [&] { linear_forward(ctx, y, x, W, N, K, O); });
    rep(shape + " bf16", ms_bf16, fl, 0);
    if (!int8_gemm_available()) continue;
    auto codes = [&](size_t n, int mod) {
      int8_t* p = buf.get<int8_t>(n);
      std::vector<int8_t> h(n);
      for (size_t i = 0; i < n; ++i) h[i] = (int8_t)((int)((i * 2654435761u) >> 7) % mod - mod / 2);
      upload(p, h.data(), n);
      return p;
    };
    int8_t *xc = codes((size_t)N * K, 255), *wc = codes((size_t)O * K, 3);
    float *xf = buf.f32(N, 1e-3f), *g = buf.f32(1, 0.05f);
    const double ms_int8 = time_ms(ctx, [&] { int8_linear_forward(ctx, y, xc, xf, wc, g, N, O, K); });
    rep(shape + " int8", ms_int8, fl, 0);
    std::printf("%-12s %-34s %9.2fx\n", p.name.c_str(), (std::string(what) + " int8 vs bf16").c_str(), ms_bf16 / ms_int8);
  }
  // Weight quantization of the MLP weight: 2 f32 reads (scale, quantize) + 1 bf16 write per weight.
  {
    const size_t n = (size_t)I * C;
    float* w = buf.f32(n);
    bf16* out = buf.get<bf16>(n);
    auto* sc = buf.get<QuantScale>(1);
    auto* counts = buf.get<int64_t>(3);
    rep("weight_quantize ternary+counts",
        time_ms(ctx, [&] { weight_quantize(ctx, out, sc, counts, w, n, WeightQuant::Ternary, 0); }), 0, 10.0 * n);
    rep("weight_quantize binary soft",
        time_ms(ctx, [&] { weight_quantize(ctx, out, sc, nullptr, w, n, WeightQuant::Binary, 4.0f); }), 0, 14.0 * n);
  }
  // RMSNorm + int8 over the hidden state, and its backward.
  {
    const size_t n = (size_t)N * C;
    bf16 *x = buf.bf(n), *out = buf.get<bf16>(n), *oq = buf.get<bf16>(n), *dx = buf.bf(n);
    float *w = buf.f32(C, 1.0f), *rstd = buf.get<float>(N), *dw = buf.get<float>(C);
    rep("rmsnorm fwd + int8 act quant",
        time_ms(ctx, [&] { rmsnorm_forward(ctx, out, oq, rstd, x, w, N, C, 1e-6f); }), 0, 6.0 * n);
    rep("rmsnorm bwd", time_ms(ctx, [&] { rmsnorm_backward(ctx, dx, dw, out, x, w, rstd, N, C); }), 0, 10.0 * n);
    rep("rmsnorm bwd (block a row)",
        time_ms(ctx, [&] { rmsnorm_backward(ctx, dx, dw, out, x, w, rstd, N, C, true); }), 0, 10.0 * n);
    // QK-norm has a row (and an rstd) per token and head: n / hd of them, not N.
    float* qk_rstd = buf.get<float>(n / hd);
    rep("qk-norm fwd (C=head_dim)",
        time_ms(ctx, [&] { rmsnorm_forward(ctx, out, nullptr, qk_rstd, x, w, (int)(n / hd), hd, 1e-6f); }), 0, 4.0 * n);
  }
  // Flash attention, every kernel generation (ONEBIT_CUDA_ATTENTION=v1|v2|v3|v4; v4 on Hopper only),
  // and v2, v3, v4 with attention dropout 0.1. Causal FLOPs: half of 4 B H T^2 hd forward, 2.5x that backward
  // (FlashAttention-2's count: 5 products, S and dP once; the v1/v2 two-pass backward does 7, so its
  // hardware rate is 7/5 of the figure shown, as is v4's without dropout (v2's dQ pass); v3 and v4 with
  // dropout do 5 and write and read dS once).
  {
    const size_t nq = (size_t)N * H * hd, nk = (size_t)N * KV * hd;
    bf16 *q = buf.bf(nq), *k = buf.bf(nk), *v = buf.bf(nk), *o = buf.get<bf16>(nq), *dout = buf.bf(nq);
    bf16 *dq = buf.get<bf16>(nq), *dk = buf.get<bf16>(nk), *dv = buf.get<bf16>(nk);
    float* lse = buf.get<float>((size_t)B * H * T);
    const double fl = 2.0 * B * H * (double)T * T * hd;
    struct Variant {
      AttentionKernels kernels;
      float p;
      const char* label;
    };
    for (const Variant& x : {Variant{AttentionKernels::V1, 0.0f, "v1"}, Variant{AttentionKernels::V2, 0.0f, "v2"},
                             Variant{AttentionKernels::V2, 0.1f, "v2 dropout 0.1"}, Variant{AttentionKernels::V3, 0.0f, "v3"},
                             Variant{AttentionKernels::V3, 0.1f, "v3 dropout 0.1"}, Variant{AttentionKernels::V4, 0.0f, "v4"},
                             Variant{AttentionKernels::V4, 0.1f, "v4 dropout 0.1"}}) {
      if (x.kernels == AttentionKernels::V4 && !attention_wgmma_available()) continue;  // v4 = v3 there
      const std::string name = std::string("flash attention ") + x.label;
      const double fwd =
          time_ms(ctx, [&] { attention_forward(ctx, o, lse, q, k, v, B, T, H, KV, hd, x.p, 7, x.kernels); });
      rep(name + " fwd", fwd, fl, 0);
      const double bwd = time_ms(
          ctx, [&] { attention_backward(ctx, dq, dk, dv, dout, q, k, v, o, lse, B, T, H, KV, hd, x.p, 7, x.kernels); });
      rep(name + " bwd", bwd, 2.5 * fl, 0);
      rep(name + " fwd+bwd", fwd + bwd, 3.5 * fl, 0);
    }
  }
  // Cross-entropy: bf16 logits read twice and written once; the chunked head adds its 3 matmuls.
  {
    const int rows = 4096;  // a [4096, V] logits chunk (the chunked head's default below)
    bf16* logits = buf.bf((size_t)rows * V);
    float *losses = buf.get<float>(N), *sum = buf.get<float>(1);
    std::vector<int32_t> ht(N);
    for (int i = 0; i < N; ++i) ht[i] = (i * 7919) % V;
    auto* tg = buf.get<int32_t>(N);
    upload(tg, ht.data(), sizeof(int32_t) * N);
    rep("cross_entropy fwd+grad [4096,V]",
        time_ms(ctx, [&] { cross_entropy(ctx, logits, losses, sum, tg, rows, V, 1.0f / N, true); }), 0,
        6.0 * rows * V);
    bf16 *hid = buf.bf((size_t)N * C), *Wh = buf.bf((size_t)V * C), *dh = buf.get<bf16>((size_t)N * C);
    float* dWh = buf.get<float>((size_t)V * C);
    rep("lm_head + xent chunked (N rows)",
        time_ms(ctx, [&] { lm_head_cross_entropy(ctx, losses, sum, dh, dWh, hid, Wh, tg, N, C, V, 1.0f / N, true, rows); }),
        6.0 * N * C * V, 0);
  }
  // The trainer's optimizer step (train::AdamW::clip_and_step on CudaOps: the global gradient norm,
  // the clip factor, then the fused AdamW over the arena's decay ranges) over the preset's own
  // parameter arena. Bytes: the norm reads g; the update reads p, g, m, v and writes p, m, v (f32).
  {
    const auto layout = model::build_param_layout(model::load_model_config(p.name));
    std::vector<train::DecayRange> ranges;
    for (const auto& t : layout.info) ranges.push_back({t.offset, t.numel, t.decay});
    const size_t total = layout.total;
    float *params = buf.f32(total), *g = buf.f32(total, 1e-3f);
    CudaOps ops;  // the trainer's backend; the moments live in its memory, the launches on its stream
    train::AdamW opt(total, train::AdamWConfig{}, ranges, ops);
    rep("adamw+clip (" + std::to_string(total / 1000000) + "M params)",
        time_ms(ops.context(), [&] { opt.clip_and_step(params, g, 1e-4f, 1.0); }), 0, 32.0 * total);
  }
  // Elementwise: RoPE on q, the gated MLP activation, the residual with dropout.
  {
    const size_t nq = (size_t)N * H * hd, nI = (size_t)N * I, nC = (size_t)N * C;
    bf16* q = buf.bf(nq);
    float *cs = buf.f32((size_t)T * hd / 2, 1.0f), *sn = buf.f32((size_t)T * hd / 2, 1.0f);
    rep("rope fwd (q)", time_ms(ctx, [&] { rope(ctx, q, cs, sn, B, T, H, hd, false); }), 0, 4.0 * nq);
    bf16 *gt = buf.bf(nI), *up = buf.bf(nI), *out = buf.get<bf16>(nI), *dg = buf.get<bf16>(nI), *du = buf.get<bf16>(nI);
    rep("swiglu fwd", time_ms(ctx, [&] { gated_act_forward(ctx, out, gt, up, nI, GatedAct::SwiGLU); }), 0, 6.0 * nI);
    rep("swiglu bwd", time_ms(ctx, [&] { gated_act_backward(ctx, dg, du, out, gt, up, nI, GatedAct::SwiGLU); }), 0,
        10.0 * nI);
    // The MLP's gated activation + sub-layer norm (+ int8 codes), composed as the network runs them without
    // ONEBIT_CUDA_FUSED_SUB_NORM and as the one-pass kernels. Bytes: each pass's reads and writes (bf16 rows,
    // int8 codes); the composed backward also zeroes dn first, as the network does.
    {
      const int NI = (int)(nI / I);
      bf16 *h = buf.get<bf16>(nI), *oq = buf.get<bf16>(nI), *dy = buf.bf(nI), *dn = buf.get<bf16>(nI);
      float *w = buf.f32(I, 1.0f), *rs = buf.get<float>(NI), *dw = buf.get<float>(I), *fac = buf.get<float>(NI);
      int8_t* cq = buf.get<int8_t>(nI);
      const Int8Rows codes{cq, fac};
      rep("mlp act+sub-norm fwd composed", time_ms(ctx, [&] {
            gated_act_forward(ctx, h, gt, up, nI, GatedAct::SwiGLU);
            rmsnorm_forward(ctx, oq, oq, rs, h, w, NI, I, 1e-6f, codes);
          }), 0, 11.0 * nI);
      if (sub_norm_fusable(NI, I, {oq, gt, up}))
        rep("mlp act+sub-norm fwd one pass", time_ms(ctx, [&] {
              gated_sub_norm_forward(ctx, oq, oq, rs, gt, up, w, NI, I, 1e-6f, GatedAct::SwiGLU, codes);
            }), 0, 7.0 * nI);
      gated_act_forward(ctx, h, gt, up, nI, GatedAct::SwiGLU);
      rep("mlp sub-norm+act bwd composed", time_ms(ctx, [&] {
            cudaMemsetAsync(dn, 0, sizeof(bf16) * nI, ctx.stream());
            rmsnorm_backward(ctx, dn, dw, dy, h, w, rs, NI, I);
            gated_act_backward_rows(ctx, dg, du, I, dn, gt, up, NI, I, GatedAct::SwiGLU);
          }), 0, 20.0 * nI);
      rep("mlp sub-norm+act bwd one pass", time_ms(ctx, [&] {
            if (!sub_norm_gated_backward(ctx, dg, du, I, dw, dy, w, rs, gt, up, NI, I, GatedAct::SwiGLU))
              throw std::runtime_error("sub_norm_gated_backward declined the preset's rows");
          }), 0, 10.0 * nI);
    }
    bf16 *x = buf.bf(nC), *y = buf.bf(nC), *r = buf.get<bf16>(nC);
    rep("residual fwd dropout 0.1", time_ms(ctx, [&] { residual_forward(ctx, r, x, y, 1.0f, 0.1f, 42, nC); }), 0,
        6.0 * nC);
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc > 1) iters = std::max(1, std::atoi(argv[1]));
    if (!device_available()) {
      std::fprintf(stderr, "onebit: error: bench_cuda_kernels: no CUDA device is visible\n");
      return 1;
    }
    Context ctx;
    // Ceilings measured now: a large bf16 GEMM through the same cuBLASLt path, and a D2D copy.
    double peak_tf, peak_gbs;
    {
      const int S = 8192;
      Buffers buf;
      bf16 *a = buf.bf((size_t)S * S), *b = buf.bf((size_t)S * S), *c = buf.get<bf16>((size_t)S * S);
      const double ms = time_ms(ctx, [&] { matmul(ctx, false, true, S, S, S, 1, a, S, b, S, 0, c, S, OutType::BF16); });
      peak_tf = 2.0 * S * S * (double)S / ms / 1e9;
      const size_t bytes = size_t{2} << 30;
      void* src = buf.get<char>(bytes);
      void* dst = buf.get<char>(bytes);
      const double cms = time_ms(ctx, [&] { cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx.stream()); });
      peak_gbs = 2.0 * bytes / cms / 1e6;
    }
    std::printf("device: %s\ncuBLASLt bf16 8192^3: %.1f TFLOP/s; device copy: %.0f GB/s (read + write)\n",
                device_name().c_str(), peak_tf, peak_gbs);
    results["device"] = device_name();
    results["cublaslt_bf16_8192_tflops"] = peak_tf;
    results["copy_gbs"] = peak_gbs;
    results["iterations"] = iters;
    for (const char* preset : {"125m", "0.3b-stack"}) bench_preset(ctx, load_preset(preset), peak_tf, peak_gbs);
    const auto dir = fs::path(ONEBIT_SOURCE_DIR) / "bench" / "results";
    fs::create_directories(dir);
    write_json_atomic(dir / "cuda_kernels.json", results);
    std::printf("wrote %s\n", (dir / "cuda_kernels.json").c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "onebit: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
