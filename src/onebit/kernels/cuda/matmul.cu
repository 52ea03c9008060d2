// Row-major matmuls on cuBLASLt: bf16 A/B, f32 compute, bf16 or f32 C. A row-major C[M,N] is the
// column-major Cᵀ[N,M] = op(B)ᵀ op(A)ᵀ, so B is passed as cuBLASLt's first operand and A as its second.
// Plans (descriptors plus the heuristic's algorithm) are cached per shape and pointer alignment.
#include <algorithm>

#include "onebit/kernels/cuda/common.cuh"

namespace onebit::kernels::cuda {
namespace {

int alignment(const void* p) {  // the largest power of two dividing the address, up to 256
  const auto a = reinterpret_cast<uintptr_t>(p);
  int al = 256;
  while (al > 1 && (a % al) != 0) al >>= 1;
  return al;
}

MatmulPlan& plan_for(Context::Impl& c, const MatmulKey& key) {
  auto it = c.plans.find(key);
  if (it != c.plans.end()) return it->second;
  const auto [ta, tb, M, N, K, lda, ldb, ldc, out, al_a, al_b, al_c, has_beta] = key;
  (void)has_beta;
  MatmulPlan p;
  const cudaDataType_t ctype = out == (int)OutType::F32 ? CUDA_R_32F : CUDA_R_16BF;
  OB_CUBLAS(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t op_first = tb ? CUBLAS_OP_T : CUBLAS_OP_N;   // on B's memory
  const cublasOperation_t op_second = ta ? CUBLAS_OP_T : CUBLAS_OP_N;  // on A's memory
  OB_CUBLAS(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof(op_first)));
  OB_CUBLAS(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof(op_second)));
  // Column-major shapes of the stored matrices: B's memory is N x K (op N) or K x N (op T); A's is
  // K x M (op N) or M x K (op T); C's is N x M.
  OB_CUBLAS(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, tb ? K : N, tb ? N : K, ldb));
  OB_CUBLAS(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, ta ? M : K, ta ? K : M, lda));
  OB_CUBLAS(cublasLtMatrixLayoutCreate(&p.c, ctype, N, M, ldc));
  cublasLtMatmulPreference_t pref;
  OB_CUBLAS(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t ws = c.workspace_bytes;
  OB_CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  const uint32_t a1 = (uint32_t)al_b, a2 = (uint32_t)al_a, a3 = (uint32_t)al_c;
  OB_CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &a1, sizeof(a1)));
  OB_CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &a2, sizeof(a2)));
  OB_CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &a3, sizeof(a3)));
  OB_CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &a3, sizeof(a3)));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t st =
      cublasLtMatmulAlgoGetHeuristic(c.lt, p.desc, p.a, p.b, p.c, p.c, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS || found == 0) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.desc);
    fail("cuBLASLt: no algorithm for matmul M=", M, " N=", N, " K=", K, " (status ", (int)st, ")");
  }
  p.algo = result.algo;
  return c.plans.emplace(key, p).first->second;
}

}  // namespace

void matmul(Context& ctx, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const bf16* A, int lda,
            const bf16* B, int ldb, float beta, void* C, int ldc, OutType out) {
  OB_CHECK(M > 0 && N > 0 && K > 0, "matmul: empty shape M=", M, " N=", N, " K=", K);
  OB_CHECK(lda >= (trans_a ? M : K) && ldb >= (trans_b ? K : N) && ldc >= N, "matmul: leading dimension too small");
  auto& c = ctx.impl();
  const MatmulKey key{trans_a,   trans_b,      M,           N,           K, lda, ldb, ldc, (int)out,
                      alignment(A), alignment(B), alignment(C), beta != 0.0f};
  MatmulPlan& p = plan_for(c, key);
  OB_CUBLAS(cublasLtMatmul(c.lt, p.desc, &alpha, B, p.a, A, p.b, &beta, C, p.c, C, p.c, &p.algo, c.workspace,
                           c.workspace_bytes, c.stream));
}

void linear_forward(Context& ctx, bf16* y, const bf16* x, const bf16* W, int N, int in, int out) {
  matmul(ctx, false, true, N, out, in, 1.0f, x, in, W, in, 0.0f, y, out, OutType::BF16);
}

void linear_backward_input(Context& ctx, bf16* dx, const bf16* dy, const bf16* W, int N, int in, int out) {
  matmul(ctx, false, false, N, in, out, 1.0f, dy, out, W, in, 0.0f, dx, in, OutType::BF16);
}

void linear_backward_weight(Context& ctx, float* dW, const bf16* dy, const bf16* x, int N, int in, int out) {
  matmul(ctx, true, false, out, in, N, 1.0f, dy, out, x, in, 1.0f, dW, in, OutType::F32);
}

}  // namespace onebit::kernels::cuda
