#!/usr/bin/env python3
# cuBLASLt's int8 GEMM (int32 out) through torch._int_mm on the presets' forward shapes, beside torch's bf16
# product of the same shape: the rate the vendor kernel reaches (docs/benchmarks.md, the int8 forward). A probe
# for the design choice of our own int8 kernel, not a onebit benchmark. Needs a CUDA GPU and torch.
#   python3 bench/cublaslt_int8_probe.py
import torch
shapes = [(16384, 768, 768), (16384, 768, 2048), (16384, 2048, 768), (16384, 1024, 1024), (16384, 1024, 2816), (16384, 2816, 1024)]
for M, K, N in shapes:
    a = torch.randint(-127, 127, (M, K), dtype=torch.int8, device="cuda")
    b = torch.randint(-1, 2, (N, K), dtype=torch.int8, device="cuda").t()
    x = torch.randn(M, K, dtype=torch.bfloat16, device="cuda"); w = torch.randn(N, K, dtype=torch.bfloat16, device="cuda")
    def t(f):
        for _ in range(5): f()
        torch.cuda.synchronize()
        s, e = torch.cuda.Event(True), torch.cuda.Event(True)
        s.record()
        for _ in range(50): f()
        e.record(); torch.cuda.synchronize()
        return s.elapsed_time(e) / 50
    ti = t(lambda: torch._int_mm(a, b)); tb = t(lambda: x @ w.t())
    ops = 2 * M * N * K
    print(f"int_mm {M}x{N}x{K}: {ti*1e3:.1f} us {ops/ti/1e9:.0f} TOP/s | bf16 {tb*1e3:.1f} us {ops/tb/1e9:.0f} TFLOP/s")
