# Would fusing onebit's Q/K/V and gate/up projections pay on this GPU? Times cuBLAS (through torch, bf16
# in, f32 accumulate) on the 125m and 0.3b training shapes (N = 16 x 1024 tokens), per layer: the three
# (two) separate products against one product with the concatenated weight, for the forward
# (x·Wᵀ), the weight gradient (dyᵀ·x) and the input gradient (Σ dy·W, separate: products plus adds).
# No onebit code runs: it sizes a change (issue 14) before it is made.
#   python3 bench/cublas_fused_projections.py [--json-out bench/results/cublas_fused_projections.json]
import argparse
import json
import os

import torch

torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False


def timed_ms(fn, n=50):
    for _ in range(5):
        fn()
    s, e = torch.cuda.Event(True), torch.cuda.Event(True)
    torch.cuda.synchronize()
    s.record()
    for _ in range(n):
        fn()
    e.record()
    torch.cuda.synchronize()
    return s.elapsed_time(e) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json-out")
    args = ap.parse_args()
    rows = []
    for name, N, d, outs in [("125m qkv", 16384, 768, [768] * 3), ("125m gate/up", 16384, 768, [2048] * 2),
                             ("0.3b qkv", 16384, 1024, [1024] * 3), ("0.3b gate/up", 16384, 1024, [2816] * 2)]:
        bf = torch.bfloat16
        x = torch.randn(N, d, device="cuda", dtype=bf)
        ws = [torch.randn(o, d, device="cuda", dtype=bf) for o in outs]
        wc = torch.cat(ws)
        dys = [torch.randn(N, o, device="cuda", dtype=bf) for o in outs]
        dyc = torch.cat(dys, 1).contiguous()
        r = {"shape": name, "N": N, "d": d, "outs": outs,
             "fwd_separate_us": 1e3 * timed_ms(lambda: [x @ w.t() for w in ws]),
             "fwd_fused_us": 1e3 * timed_ms(lambda: x @ wc.t()),
             "dw_separate_us": 1e3 * timed_ms(lambda: [torch.matmul(dy.t(), x) for dy in dys]),
             "dw_fused_us": 1e3 * timed_ms(lambda: torch.matmul(dyc.t(), x)),
             "dx_separate_us": 1e3 * timed_ms(lambda: sum(dy @ w for dy, w in zip(dys, ws))),
             "dx_fused_us": 1e3 * timed_ms(lambda: dyc @ wc)}
        rows.append(r)
        print(f"{name}: fwd sep {r['fwd_separate_us']:.1f} us fused {r['fwd_fused_us']:.1f}; "
              f"dW sep {r['dw_separate_us']:.1f} fused {r['dw_fused_us']:.1f}; "
              f"dx sep(+adds) {r['dx_separate_us']:.1f} fused {r['dx_fused_us']:.1f}", flush=True)
    if args.json_out:
        with open(args.json_out + ".tmp", "w") as f:
            json.dump({"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}, f, indent=1)
        os.replace(args.json_out + ".tmp", args.json_out)


if __name__ == "__main__":
    main()
