#!/usr/bin/env python3
"""An external PyTorch oracle for onebit's model (issue 13), in the spirit of llm.c's test_gpt2.

  torch_oracle.py write OUT_DIR      writes tests/fixtures/oracle/<variant>/ for every variant below
  torch_oracle.py report OUT_DIR     prints what the fixtures hold (sizes, losses, tie margins)

The model here is written from the numerics contract (DESIGN.md "Numerics") and the refinements in
docs/design-notes.md, in float64 with torch autograd, not by calling onebit. onebit's code was read
only for file formats, parameter names and config keys, and for the few conventions the contract
leaves open; each of those is marked "onebit convention" below.

For each variant it writes an onebit model dir (config.json + model.safetensors with f32 master
weights, the files `onebit eval` loads), and for each of the three phases (full precision, soft at
k, hard) a <phase>.safetensors with the logits on fixed token ids, every parameter gradient of the
mean loss, the loss of each of 10 AdamW steps and the weights after them, plus oracle.json with the
batch, the optimizer settings and the losses. tests/model/oracle_test.cpp holds onebit against them.
"""
import json
import math
import os
import sys

import numpy as np
import torch
from safetensors.numpy import save_file

torch.set_default_dtype(torch.float64)

B, T = 2, 8
STEPS = 10
SOFT_K = 8.0
# grad_clip 2.5 clips some steps and not others (global gradient norms run from 1.5 to 7 here).
ADAMW = {"lr": 3e-3, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1, "grad_clip": 2.5}
PHASES = [("full_precision", 0.0), ("soft", SOFT_K), ("hard", 0.0)]

# Ties: a value within f32 rounding of a quantizer's rounding boundary may land on either side in
# onebit's f32 model, which no tolerance on f32 error covers. The script rejects a data seed whose
# oracle run comes closer to a boundary than these margins, measured in the quantizer's own units
# (int8 code steps; ternary x = W/g; binary |W - a| / b; bf16 ulps). A float32 run of this same
# script drifts from the float64 one by up to 9e-5 int8 activation code steps, 8e-7 in ternary and
# binary weight codes (their f32 scale sums) and 8e-6 in int8 weight codes (measured on these
# variants), hence the margins at the fixed weights, where the test holds codes exact. Along the 10
# steps there are ~10x more values and the f32 run drifts further, so margins of that size leave no
# seed: there they only exclude exact and near-exact ties (such as those of the hard phase's integer
# lattice, see quantize_act), and the test's trajectory tolerance where quantizers round covers a
# code that flips.
MARGIN_ACT = 2e-4
MARGIN_WEIGHT = 2e-5
MARGIN_INT8_WEIGHT = 1e-4
MARGIN_TRAJ_ACT = 5e-6
MARGIN_TRAJ_WEIGHT = 2e-6

BASE = {
    "vocab_size": 48, "hidden_size": 24, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "intermediate_size": 32, "max_position_embeddings": 16,
    "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "qk_norm": True, "sub_ln": True,
    "residual_scale": 1.0, "tie_word_embeddings": False, "dropout": 0.0, "hidden_act": "swiglu",
}
QUANT_DEFAULT = {"weight_bits": {"attention": "ternary", "mlp": "ternary", "embedding": "f32", "lm_head": "f32"},
                 "activation_bits": "int8", "precision_map": {}}

VARIANTS = {
    # GQA (4 query heads over 2 kv heads), QK-norm and both sub-layer norms, SwiGLU, ternary.
    "gqa_qknorm_subln_swiglu": ({}, {}),
    # Plain MHA without QK-norm or sub-layer norms, residual_scale != 1, ReLU², tied LM head.
    "mha_relu2_tied_rscale": ({"num_key_value_heads": 4, "qk_norm": False, "sub_ln": False, "residual_scale": 0.75,
                               "hidden_act": "relu2", "tie_word_embeddings": True}, {}),
    # Binary weights (BitNet), one kv head (MQA), GELU, residual_scale < 1.
    "binary_gelu_mqa": ({"num_key_value_heads": 1, "residual_scale": 0.5, "hidden_act": "gelu"},
                        {"weight_bits": {"attention": "binary", "mlp": "binary", "embedding": "f32",
                                         "lm_head": "f32"}}),
    # The precision map: int8, bf16, f32 and binary layers among ternary ones, an int8 embedding and
    # a ternary LM head (whose input is then int8-quantized in the hard phase), QK-norm off.
    "mixed_precision_map": ({"qk_norm": False, "residual_scale": 1.25},
                            {"weight_bits": {"attention": "ternary", "mlp": "ternary", "embedding": "int8",
                                             "lm_head": "ternary"},
                             "precision_map": {"model.layers.0.mlp.down_proj": "int8",
                                               "model.layers.0.self_attn.v_proj": "binary",
                                               "model.layers.1.self_attn.k_proj": "bf16",
                                               "model.layers.1.mlp.up_proj": "f32"}}),
    # No activation quantization (activation_bits "none"), sub-layer norms off, QK-norm on, GELU.
    "act_none_gelu": ({"sub_ln": False, "hidden_act": "gelu", "num_key_value_heads": 4},
                      {"activation_bits": "none"}),
}


def f32(x):
    """Round a python/torch value to float32 and back (see the conventions below)."""
    if isinstance(x, torch.Tensor):
        return x.to(torch.float32).to(torch.float64)
    return float(np.float32(x))


# ------------------------------------------------------------------------------------- the model

def param_names(cfg):
    """Parameter names and shapes (onebit's model.safetensors names, Hugging Face style)."""
    d, ff, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd = d // cfg["num_attention_heads"]
    kvd = cfg["num_key_value_heads"] * hd
    out = [("model.embed_tokens.weight", (V, d))]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        out += [(p + "input_layernorm.weight", (d,)), (p + "self_attn.q_proj.weight", (d, d)),
                (p + "self_attn.k_proj.weight", (kvd, d)), (p + "self_attn.v_proj.weight", (kvd, d)),
                (p + "self_attn.o_proj.weight", (d, d))]
        if cfg["qk_norm"]:
            out += [(p + "self_attn.q_norm.weight", (hd,)), (p + "self_attn.k_norm.weight", (hd,))]
        if cfg["sub_ln"]:
            out += [(p + "self_attn.attn_sub_norm.weight", (d,))]
        out += [(p + "post_attention_layernorm.weight", (d,)), (p + "mlp.gate_proj.weight", (ff, d)),
                (p + "mlp.up_proj.weight", (ff, d)), (p + "mlp.down_proj.weight", (d, ff))]
        if cfg["sub_ln"]:
            out += [(p + "mlp.ffn_sub_norm.weight", (ff,))]
    out += [("model.norm.weight", (d,))]
    if not cfg["tie_word_embeddings"]:
        out += [("lm_head.weight", (V, d))]
    return out


def precision_of(cfg, module):
    """Weight precision of a module (the config's quantization block, precision_map first)."""
    q = cfg["quantization"]
    if module in q["precision_map"]:
        return q["precision_map"][module]
    if module == "lm_head":
        return q["weight_bits"]["lm_head"]
    if module == "model.embed_tokens":
        return q["weight_bits"]["embedding"]
    return q["weight_bits"]["attention" if ".self_attn." in module else "mlp"]


def init_weights(cfg, seed):
    """Seeded initial weights, rounded to f32 (model.safetensors holds f32 master weights). Norm
    weights are 1 plus noise so that a norm weight applied wrongly shows in the outputs."""
    gen = torch.Generator().manual_seed(seed)
    out_scale = 1.0 / math.sqrt(2 * cfg["num_hidden_layers"])
    weights = {}
    for name, shape in param_names(cfg):
        if len(shape) == 1:
            w = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        else:
            std = 0.02 * (out_scale if ("o_proj" in name or "down_proj" in name) else 1.0)
            w = std * torch.randn(shape, generator=gen)
        weights[name] = f32(w)
    return weights


class Ties:
    """Smallest distance to a rounding boundary seen by each quantizer kind (see MARGIN_*)."""

    def __init__(self):
        self.act = math.inf
        self.weight = math.inf       # ternary, binary, bf16
        self.int8_weight = math.inf

    def see_act(self, u):
        # u = x * s in code units; |u| = 127 is the row's absmax itself and lands exactly on 127.
        frac = (u - torch.floor(u) - 0.5).abs()
        frac = frac[(u.abs() - 127).abs() > 1e-9]
        if frac.numel():
            self.act = min(self.act, float(frac.min()))

    def see_weight(self, dist):
        self.weight = min(self.weight, float(dist.min()))

    def see_int8_weight(self, u):
        self.int8_weight = min(self.int8_weight, float((u - torch.floor(u) - 0.5).abs().min()))

    def too_close(self, act, weight, int8_weight):
        return self.act < act or self.weight < weight or self.int8_weight < int8_weight


def ste(w, q):
    """Straight-through estimator: the forward value is q, the backward is the identity (the
    contract's "STE: the backward of a quantizer is the identity" — in the soft phase too)."""
    return w + (q - w).detach()


def quantize_weight(w, prec, phase, k, ties):
    """Effective weight of one linear (or the embedding) for the phase."""
    if phase == "full_precision" or prec == "f32":
        return w
    x = w.detach()
    if prec == "ternary":
        # onebit convention: per-tensor scales are held in f32 (kernels::QuantScale), so g is rounded
        # to f32 before use; the contract gives g = mean|W| + 1e-5.
        g = f32(x.abs().mean() + 1e-5)
        r = x / g
        if phase == "soft":
            q = g * 0.5 * (torch.tanh(k * (r - 0.5)) + torch.tanh(k * (r + 0.5)))
        else:
            ties.see_weight((r.abs() - 0.5).abs())
            q = g * torch.clamp(torch.round(r), -1, 1)  # torch.round: half to even
        return ste(w, q)
    if prec == "binary":
        a = f32(x.mean())                 # onebit convention: f32 scales, as for ternary
        b = f32((x - a).abs().mean())
        if phase == "soft":
            # design-notes: the binary soft quantizer is b * tanh(k (W - a) / b).
            q = b * torch.tanh(k * (x - a) / max(b, 1e-8))
        else:
            ties.see_weight((x - a).abs() / b)
            q = torch.where(x - a >= 0, b, -b)  # sign(0) = +1
        return ste(w, q)
    if prec == "int8":
        # onebit convention (the contract defines no int8 weight quantizer): per tensor absmax,
        # codes round(W * 127 / max|W|) clamped to [-127, 127]. Hard from the soft phase on.
        inv = 127.0 / max(f32(x.abs().max()), 1e-5)
        u = x * inv
        ties.see_int8_weight(u)
        return ste(w, torch.clamp(torch.round(u), -127, 127) / inv)
    if prec == "bf16":
        # onebit convention: the weight is rounded to f32, then to bf16 (round to nearest even).
        x32 = x.to(torch.float32)
        q = x32.to(torch.bfloat16).to(torch.float64)
        # Distance to the bf16 rounding boundary, in bf16 ulps.
        bits = x32.view(torch.int32).to(torch.int64) & 0xFFFF
        ties.see_weight(((bits - 0x8000).abs().to(torch.float64) / 65536.0))
        return ste(w, q)
    raise ValueError(f"unknown precision {prec}")


def quantize_act(x, ties):
    """Per-token absmax int8 with STE: s = 127 / max(|x|, 1e-5), xq = clamp(round(x s), -128, 127) / s.

    The integer lattice: in the hard phase, without a sub-layer norm, the first position's attention
    output is its v row, (int8 codes x ternary codes) * g / s, so there x s = 127 n / M for integers
    n, M and lands exactly on a half when n / M = 1/2; f32 and f64 then round it either way."""
    s = 127.0 / torch.clamp(x.detach().abs().amax(dim=-1, keepdim=True), min=1e-5)
    u = x.detach() * s
    ties.see_act(u)
    return ste(x, torch.clamp(torch.round(u), -128, 127) / s)


def rmsnorm(x, w, eps):
    # The contract computes RMSNorm in f32; the oracle stays in f64 (it is held against onebit's f64
    # network at 1e-9 and against its f32 one at f32 tolerances).
    return x * torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + eps) * w


def rope(x, theta):
    """Hugging Face Llama rotate_half RoPE on x[B, T, H, hd] (design-notes: pairs i and i + hd/2)."""
    Tn, hd = x.shape[1], x.shape[3]
    inv = theta ** (-torch.arange(0, hd // 2, dtype=torch.float64) * 2.0 / hd)
    ang = torch.arange(Tn, dtype=torch.float64)[:, None] * inv[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], dim=-1)[None, :, None, :]
    sin = torch.cat([ang.sin(), ang.sin()], dim=-1)[None, :, None, :]
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def gated(gate, up, act):
    if act == "swiglu":
        return torch.nn.functional.silu(gate) * up
    if act == "relu2":
        return torch.relu(gate) ** 2 * up
    if act == "gelu":
        return torch.nn.functional.gelu(gate, approximate="tanh") * up
    raise ValueError(act)


class Oracle:
    def __init__(self, cfg):
        self.cfg = cfg
        # onebit convention: config.json's float fields are read as f32.
        self.eps = f32(cfg["rms_norm_eps"])
        self.rs = f32(cfg["residual_scale"])
        self.theta = f32(cfg["rope_theta"])
        self.act_int8 = cfg["quantization"]["activation_bits"] == "int8"

    def forward(self, P, tokens, phase, k, ties):
        """Logits [B, T, V] for parameter dict P (f64 leaves)."""
        cfg = self.cfg
        H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        d = cfg["hidden_size"]
        hd = d // H
        Bn, Tn = tokens.shape
        hard = phase == "hard"

        def linear(x, module):
            prec = precision_of(cfg, module)
            W = quantize_weight(P[module + ".weight"], prec, phase, k, ties)
            # Activations are quantized only in the hard phase, and (onebit convention, the contract
            # says only "int8 activations") only at the input of ternary, binary and int8 linears.
            if hard and self.act_int8 and prec in ("ternary", "binary", "int8"):
                x = quantize_act(x, ties)
            return x @ W.T

        emb = quantize_weight(P["model.embed_tokens.weight"], precision_of(cfg, "model.embed_tokens"), phase, k, ties)
        x = emb[tokens]
        causal = torch.ones(Tn, Tn, dtype=torch.bool).tril()
        for l in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{l}."
            h = rmsnorm(x, P[p + "input_layernorm.weight"], self.eps)
            q = linear(h, p + "self_attn.q_proj").view(Bn, Tn, H, hd)
            kk = linear(h, p + "self_attn.k_proj").view(Bn, Tn, KV, hd)
            v = linear(h, p + "self_attn.v_proj").view(Bn, Tn, KV, hd)
            if cfg["qk_norm"]:  # per head, before RoPE
                q = rmsnorm(q, P[p + "self_attn.q_norm.weight"], self.eps)
                kk = rmsnorm(kk, P[p + "self_attn.k_norm.weight"], self.eps)
            q, kk = rope(q, self.theta), rope(kk, self.theta)
            rep = H // KV  # GQA: query head h reads kv head h // (H / KV)
            kk = kk.repeat_interleave(rep, dim=2)
            v = v.repeat_interleave(rep, dim=2)
            s = torch.einsum("bthd,bshd->bhts", q, kk) / math.sqrt(hd)
            s = s.masked_fill(~causal, -math.inf)
            att = torch.einsum("bhts,bshd->bthd", s.softmax(dim=-1), v).reshape(Bn, Tn, d)
            if cfg["sub_ln"]:
                att = rmsnorm(att, P[p + "self_attn.attn_sub_norm.weight"], self.eps)
            x = x + self.rs * linear(att, p + "self_attn.o_proj")
            h = rmsnorm(x, P[p + "post_attention_layernorm.weight"], self.eps)
            a = gated(linear(h, p + "mlp.gate_proj"), linear(h, p + "mlp.up_proj"), cfg["hidden_act"])
            if cfg["sub_ln"]:
                a = rmsnorm(a, P[p + "mlp.ffn_sub_norm.weight"], self.eps)
            x = x + self.rs * linear(a, p + "mlp.down_proj")
        x = rmsnorm(x, P["model.norm.weight"], self.eps)
        head = "model.embed_tokens" if cfg["tie_word_embeddings"] else "lm_head"
        W = quantize_weight(P[head + ".weight"], precision_of(cfg, "lm_head"), phase, k, ties)
        # onebit convention: a tied head uses the embedding matrix quantized as lm_head's precision
        # says (the embedding lookup uses the embedding's precision).
        if hard and self.act_int8 and precision_of(cfg, "lm_head") in ("ternary", "binary", "int8"):
            x = quantize_act(x, ties)
        return x @ W.T


def loss_of(logits, targets):
    """Mean cross-entropy over the targets >= 0 (onebit convention: a negative target is ignored)."""
    V = logits.shape[-1]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-1)


def adamw_groups(P):
    """Weight decay on matrices (linears, embedding), not on norms (onebit: decay = false for norms)."""
    decay = [w for w in P.values() if w.dim() == 2]
    plain = [w for w in P.values() if w.dim() == 1]
    return [{"params": decay, "weight_decay": f32(ADAMW["weight_decay"])}, {"params": plain, "weight_decay": 0.0}]


def run_phase(cfg, weights, tokens, targets, phase, k):
    """Logits, loss and gradients at the initial weights, then 10 AdamW steps as onebit's trainer
    runs them: forward, backward, global-norm clip, AdamW step; the phase is held fixed."""
    model = Oracle(cfg)
    ties_fixed, ties_traj = Ties(), Ties()
    P = {n: w.clone().requires_grad_(True) for n, w in weights.items()}
    logits = model.forward(P, tokens, phase, k, ties_fixed)
    loss = loss_of(logits, targets)
    loss.backward()
    out = {"logits": logits.detach().reshape(-1, cfg["vocab_size"]).numpy().copy(), "loss": float(loss.detach())}
    grads = {n: w.grad.detach().numpy().copy() for n, w in P.items()}

    # onebit's AdamW is torch.optim.AdamW's formula (train/adamw.h); its hyper-parameters are f32.
    P = {n: w.clone().requires_grad_(True) for n, w in weights.items()}
    opt = torch.optim.AdamW(adamw_groups(P), lr=f32(ADAMW["lr"]), betas=(f32(ADAMW["beta1"]), f32(ADAMW["beta2"])),
                            eps=f32(ADAMW["eps"]), foreach=False)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        l = loss_of(model.forward(P, tokens, phase, k, ties_traj), targets)
        l.backward()
        losses.append(float(l.detach()))
        # torch clips when norm + 1e-6 > max_norm, onebit when norm > max_norm: the same away from a
        # 1e-6 band, which the script checks the run stays out of.
        norm = float(torch.nn.utils.clip_grad_norm_(list(P.values()), ADAMW["grad_clip"]))
        assert abs(norm - ADAMW["grad_clip"]) > 1e-4, f"grad norm {norm} too close to the clip threshold"
        opt.step()
        # The contract's CPU training runs in f32: the master weights are f32 after every step.
        with torch.no_grad():
            for w in P.values():
                w.copy_(f32(w))
    # The final forward of the trajectory's weights is not compared, but its quantizers must also be
    # away from ties (they decide the last step's weights' codes).
    with torch.no_grad():
        model.forward(P, tokens, phase, k, ties_traj)
    out["grads"] = grads
    out["step_losses"] = losses
    out["final"] = {n: w.detach().numpy().copy() for n, w in P.items()}
    out["ties_fixed"] = ties_fixed
    out["ties_traj"] = ties_traj
    return out


def make_batch(cfg, seed):
    gen = torch.Generator().manual_seed(seed)
    V = cfg["vocab_size"]
    tokens = torch.randint(0, V, (B, T), generator=gen)
    targets = torch.randint(0, V, (B, T), generator=gen)
    targets[0, 3] = -1  # ignored positions: the mean runs over the other targets
    targets[1, 0] = -1
    return tokens, targets


def variant_config(arch, quant):
    cfg = dict(BASE)
    cfg.update(arch)
    q = json.loads(json.dumps(QUANT_DEFAULT))
    q.update(quant)
    cfg["quantization"] = q
    return cfg


def build_variant(name, arch, quant, base_seed):
    """Tries data seeds until no quantizer of any phase comes within the tie margins."""
    cfg = variant_config(arch, quant)
    for attempt in range(200):
        seed = base_seed * 1000 + attempt
        weights = init_weights(cfg, seed)
        tokens, targets = make_batch(cfg, seed + 1)
        results = {}
        ok = True
        for phase, k in sorted(PHASES, key=lambda p: p[0] != "hard"):  # the hard phase rejects most seeds
            try:
                r = run_phase(cfg, weights, tokens, targets, phase, f32(k))
            except AssertionError:
                ok = False
                break
            if r["ties_fixed"].too_close(MARGIN_ACT, MARGIN_WEIGHT, MARGIN_INT8_WEIGHT) or \
                    r["ties_traj"].too_close(MARGIN_TRAJ_ACT, MARGIN_TRAJ_WEIGHT, MARGIN_TRAJ_WEIGHT):
                ok = False
                break
            results[phase] = r
        if ok:
            return cfg, seed, weights, tokens, targets, results
    raise SystemExit(f"{name}: no seed within 200 attempts keeps the quantizers off their ties")


def finite(x):
    return None if math.isinf(x) else x


def write_variant(out_dir, name, cfg, seed, weights, tokens, targets, results):
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    # config.json as onebit reads it (model/config.cpp keys, the quantization block).
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    save_file({n: w.numpy().astype(np.float32) for n, w in weights.items()}, os.path.join(d, "model.safetensors"),
              metadata={"format": "pt"})
    settings = {
        "generated_by": "tools/torch_oracle.py write",
        "torch": torch.__version__,
        "seed": seed,
        "batch": B, "seq_len": T,
        "tokens": tokens.reshape(-1).tolist(),
        "targets": targets.reshape(-1).tolist(),
        "adamw": ADAMW,
        "steps": STEPS,
        "phases": {},
    }
    for phase, k in PHASES:
        r = results[phase]
        tensors = {"logits": r["logits"]}
        for n, g in r["grads"].items():
            tensors["grad." + n] = g
        # Weights after the steps in f32: onebit's AdamW runs in f32, so the trajectory is compared
        # at f32 tolerances and f64 storage would only add bytes.
        for n, w in r["final"].items():
            tensors["final." + n] = w.astype(np.float32)
        save_file(tensors, os.path.join(d, phase + ".safetensors"), metadata={"format": "pt"})
        settings["phases"][phase] = {
            "k": k, "loss": r["loss"], "step_losses": r["step_losses"],
            # null: the phase has no quantizer of that kind.
            "min_tie_distance": {
                "act_codes": finite(r["ties_fixed"].act), "weight_codes": finite(r["ties_fixed"].weight),
                "int8_weight_codes": finite(r["ties_fixed"].int8_weight),
                "trajectory_act_codes": finite(r["ties_traj"].act),
                "trajectory_weight_codes": finite(r["ties_traj"].weight),
                "trajectory_int8_weight_codes": finite(r["ties_traj"].int8_weight)},
        }
    with open(os.path.join(d, "oracle.json"), "w") as f:
        json.dump(settings, f, indent=1)
        f.write("\n")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "report"):
        raise SystemExit(__doc__)
    out_dir = sys.argv[2]
    if sys.argv[1] == "report":
        total = 0
        for name in sorted(os.listdir(out_dir)):
            d = os.path.join(out_dir, name)
            if not os.path.isdir(d):
                continue
            size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
            total += size
            s = json.load(open(os.path.join(d, "oracle.json")))
            print(f"{name}: {size / 1024:.0f} KiB, seed {s['seed']}")
            for phase, p in s["phases"].items():
                print(f"  {phase:15s} loss {p['loss']:.6f} -> {p['step_losses'][-1]:.6f}  ties {p['min_tie_distance']}")
        print(f"total {total / 1024:.0f} KiB")
        return
    for i, (name, (arch, quant)) in enumerate(VARIANTS.items()):
        cfg, seed, weights, tokens, targets, results = build_variant(name, arch, quant, i + 1)
        write_variant(out_dir, name, cfg, seed, weights, tokens, targets, results)
        print(f"{name}: seed {seed}, losses " +
              ", ".join(f"{p} {results[p]['loss']:.4f}" for p, _ in PHASES))


if __name__ == "__main__":
    main()
