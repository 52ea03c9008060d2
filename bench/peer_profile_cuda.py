#!/usr/bin/env python3
"""Where the PyTorch BitNet peer's training step spends its GPU time: the counterpart of
bench/gpu_profile_step.sh (onebit's ONEBIT_CUDA_PROFILE table) for the same shapes, so the two steps
can be compared category by category (GEMMs, attention forward/backward, fused elementwise, optimizer).

Builds the peer's model from ../shared/bench/peer_torch_bitnet.py (imported, not copied), runs it eager
or under torch.compile with bf16 autocast and fused AdamW exactly as the peer's own timing loop does,
and records STEPS steps with torch.profiler (CUDA activity) after the warm-up. Kernel names are grouped
by pattern; the per-step milliseconds of each group and the top kernels are printed and written as JSON.

  python3 bench/peer_profile_cuda.py [--peer PATH] [--config 125M] [--compile] [--steps 5] [--json-out F]
"""
import argparse
import importlib.util
import json
import os
import re
import sys

import torch

# Kernel name -> category, first match wins. cuBLAS on Hopper names its GEMMs nvjet_* or *gemm*;
# PyTorch's flash attention flash_fwd/flash_bwd (cuDNN's and the memory-efficient ones as below).
CATEGORIES = [
    ("gemm", re.compile(r"nvjet|gemm|cutlass|xmma|cublas", re.I)),
    ("attention bwd", re.compile(r"flash_bwd|fmha.*(bwd|backward)|attention.*backward|cudnn.*bprop", re.I)),
    ("attention fwd", re.compile(r"flash_fwd|fmha|attention|cudnn.*fprop", re.I)),
    ("optimizer", re.compile(r"adam|multi_tensor", re.I)),
    ("cross-entropy", re.compile(r"log_softmax|nll_loss|cross_entropy", re.I)),
    ("triton fused", re.compile(r"^triton_", re.I)),
    ("copies/fills", re.compile(r"memcpy|memset|fill|copy", re.I)),
]


def category(name):
    for cat, pat in CATEGORIES:
        if pat.search(name):
            return cat
    return "other"


def load_peer(path):
    spec = importlib.util.spec_from_file_location("peer_torch_bitnet", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", default=os.path.join(here, "..", "..", "shared", "bench", "peer_torch_bitnet.py"),
                    help="the peer trainer to import (default ../shared/bench/peer_torch_bitnet.py)")
    ap.add_argument("--config", default="125M", help="the peer's config name (125M, 0.3B, 25M, tiny)")
    ap.add_argument("--compile", action="store_true", help="profile the torch.compile step (default: eager)")
    ap.add_argument("--steps", type=int, default=5, help="profiled steps after the warm-up (default 5)")
    ap.add_argument("--warmup", type=int, default=5, help="warm-up steps, compilation included (default 5)")
    ap.add_argument("--top", type=int, default=25, help="kernels listed individually (default 25)")
    ap.add_argument("--json-out", help="write the table as JSON here")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("peer_profile_cuda: no CUDA device")
    if not os.path.isfile(a.peer):
        sys.exit(f"peer_profile_cuda: no peer trainer at {a.peer} (pass --peer)")
    peer = load_peer(a.peer)
    if a.config not in peer.cfgs:
        sys.exit(f"peer_profile_cuda: unknown config {a.config} (the peer has {', '.join(peer.cfgs)})")
    c = dict(peer.cfgs[a.config])
    B, T = c.pop("B"), c["T"]
    torch.manual_seed(0)
    m = peer.LM(**c, q=True).cuda()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, fused=True)
    step = torch.compile(m) if a.compile else m
    idx = torch.randint(0, c["V"], (B, T), device="cuda")
    tgt = torch.randint(0, c["V"], (B, T), device="cuda")

    def one():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = step(idx, tgt)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(a.warmup):
        one()
    torch.cuda.synchronize()
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(a.steps):
            one()
        torch.cuda.synchronize()
    kernels = {}
    for ev in prof.key_averages():
        us = getattr(ev, "self_device_time_total", None)
        if us is None:
            us = ev.self_cuda_time_total
        if us <= 0:
            continue
        kernels[ev.key] = kernels.get(ev.key, 0.0) + us
    per_step = {k: v / 1e3 / a.steps for k, v in kernels.items()}  # ms per step
    cats = {}
    for k, ms in per_step.items():
        cats[category(k)] = cats.get(category(k), 0.0) + ms
    total = sum(cats.values())
    mode = "torch.compile" if a.compile else "eager"
    print(f"== peer {a.config} {mode}, B {B} x T {T}: {total:.2f} ms of kernel time per step ({a.steps} steps)")
    for cat, ms in sorted(cats.items(), key=lambda kv: -kv[1]):
        print(f"  {cat:<16} {ms:8.3f} ms  {100 * ms / total:5.1f}%")
    print(f"  top {a.top} kernels (ms per step):")
    top = sorted(per_step.items(), key=lambda kv: -kv[1])[: a.top]
    for k, ms in top:
        print(f"    {ms:8.3f}  [{category(k)}] {k[:110]}")
    if a.json_out:
        out = dict(config=a.config, mode=mode, B=B, T=T, steps=a.steps, gpu=torch.cuda.get_device_name(),
                   torch=torch.__version__, total_ms=round(total, 3),
                   categories={k: round(v, 3) for k, v in cats.items()},
                   top=[dict(kernel=k, ms=round(v, 4), category=category(k)) for k, v in top])
        tmp = a.json_out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(out, f, indent=1)
        os.replace(tmp, a.json_out)


if __name__ == "__main__":
    main()
