#!/usr/bin/env python3
"""Hugging Face BitNet / Llama oracle fixtures for `onebit import hf` and `onebit export --format hf`
(issue 17), made by transformers itself.

  make_hf_bitnet_fixtures.py write OUT_DIR          tiny random HF model dirs + their logits
  make_hf_bitnet_fixtures.py write-gguf-leg OUT_DIR  only bitnet_silu_256/ (below), for the GGUF leg
  make_hf_bitnet_fixtures.py check-export HF_DIR OUT  loads an onebit export with from_pretrained
                                                    and writes its logits on the fixed ids to OUT

check-export made onebit_trained/transformers_{packed,master}.safetensors from `onebit export
--format hf [--hf-weights master]` of onebit_trained/ (see tests/fixtures/hf_bitnet/README.md).

`write` makes, under OUT_DIR (tests/fixtures/hf_bitnet):
  bitnet_master/   BitNetForCausalLM, f32 master weights, quantization_config autobitlinear + online
                   (transformers quantizes weights and activations on the fly), relu2, untied, GQA 4/2
  bitnet_2b4t/     microsoft/bitnet-b1.58-2B-4T's layout in miniature: linear_class autobitlinear,
                   offline (its config); each linear stored as uint8[out/4, in] by transformers'
                   pack_weights plus a weight_scale (1,) that AutoBitLinear multiplies by (= g);
                   relu2, tied embeddings, GQA 4/2
  bitnet_packed/   the same layout under transformers' default linear_class bitlinear, whose
                   BitLinear divides by weight_scale (= 1/g)
  bitnet_silu/     autobitlinear online, silu, untied, MHA (4 heads, 4 kv heads)
  llama/           LlamaForCausalLM, full precision (f32), untied, GQA 4/2
(`write-gguf-leg` makes bitnet_silu_256/: 2B4T's packed layout, silu, tied, GQA 4/2, hidden 256, ff 512,
the BitNet shape upstream llama.cpp runs, for tests/cli/gguf_finetune_e2e_test.cpp)
each with config.json, model.safetensors, tokenizer.json (onebit's byte-level test tokenizer) and
expected.safetensors: "input_ids" (I32 [B, T]) and "logits" (F32 [B, T, V]) from transformers'
forward; the BitNet dirs also hold "logits_fp", the same weights run by BitNetForCausalLM without
quantization_config (plain nn.Linear), which onebit matches in its full-precision phase.
facts.json records what the script settled numerically (the meaning of weight_scale per
linear_class) and the
smallest distance of any int8 activation code to a rounding tie, so that a tolerance can be argued.

The run is deterministic for its seeds; torch.compile is disabled (TORCHDYNAMO_DISABLE) so the
integration's quantizers run eagerly, with the same torch ops.
"""
import json
import os
import shutil
import sys

os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import (AutoModelForCausalLM, AutoTokenizer, BitNetConfig, BitNetForCausalLM,  # noqa: E402
                          LlamaConfig, LlamaForCausalLM)
from transformers.integrations import bitnet as hf_bitnet  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKENIZER = os.path.join(REPO, "tests", "fixtures", "data", "byte_tokenizer.json")
B, T = 1, 10
VOCAB = 320  # byte tokenizer's 257 ids, padded
LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
# An int8 activation code closer than this to a .5 tie may round the other way in onebit's f32
# arithmetic (another summation order drifts codes by ~1e-4 of a step, tools/torch_oracle.py); a
# seed whose forward comes closer is rejected.
MIN_TIE_MARGIN = 2e-4


def input_ids():
    g = torch.Generator().manual_seed(17)
    return torch.randint(0, 257, (B, T), generator=g, dtype=torch.int64)


def bitnet_config(hidden_act, tied, kv_heads, quant, hidden=32, ff=64):
    cfg = BitNetConfig(vocab_size=VOCAB, hidden_size=hidden, intermediate_size=ff, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=kv_heads, hidden_act=hidden_act,
                       max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=tied,
                       bos_token_id=None, eos_token_id=256, pad_token_id=None,
                       rope_parameters={"rope_type": "default", "rope_theta": 500000.0})
    if quant is not None:
        cfg.quantization_config = quant
    return cfg


def randomize(model, seed):
    """Weights far from init's near-zero values: norms around 1, embeddings O(1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name or name == "lm_head.weight":
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)


class TieMargin:
    """Forward pre-hooks on the quantized linears: the smallest |frac(x * s) - 0.5| over their inputs."""

    def __init__(self, model):
        self.margin = float("inf")
        self.handles = []
        for m in model.modules():
            if isinstance(m, (hf_bitnet.AutoBitLinear, hf_bitnet.BitLinear)):
                self.handles.append(m.register_forward_pre_hook(self.hook))

    def hook(self, module, args):
        x = args[0].float()
        s = 127 / x.abs().max(dim=-1, keepdim=True).values.clamp(min=1e-5)
        y = x * s
        self.margin = min(self.margin, ((y - y.floor()) - 0.5).abs().min().item())

    def close(self):
        for h in self.handles:
            h.remove()


def load(path):
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def logits_of(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits.float().contiguous()


def write_dir(path, config, tensors):
    os.makedirs(path, exist_ok=True)
    config.save_pretrained(path)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(path, "model.safetensors"),
              metadata={"format": "pt"})
    shutil.copy(TOKENIZER, os.path.join(path, "tokenizer.json"))


def master_tensors(model):
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        sd.pop("lm_head.weight", None)  # as save_pretrained writes a tied model
    return sd


def packed_tensors(model, weight_scale_rule):
    """The 2B4T layout with transformers' own quantizer (WeightQuant's formula) and pack_weights."""
    sd = master_tensors(model)
    for name in list(sd):
        if not any(name.endswith(l + ".weight") for l in LINEARS):
            continue
        w = sd[name].float()
        scale = 1.0 / w.abs().mean().clamp(min=1e-5)  # integrations/bitnet.py WeightQuant.forward
        codes = (w * scale).round().clamp(-1, 1)
        sd[name] = hf_bitnet.pack_weights(codes.clone())
        sd[name[: -len("weight")] + "weight_scale"] = weight_scale_rule(scale).reshape(1).float()
    return sd


# quantization_config per kind, and what weight_scale holds for the packed kinds (`inv_g` is
# WeightQuant's scale 1 / clamp(mean|W|, 1e-5)).
KINDS = {
    "online": ({"quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": "online"}, None),
    # microsoft/bitnet-b1.58-2B-4T's own config: AutoBitLinear multiplies its output by weight_scale.
    "autobitlinear_offline": ({"quant_method": "bitnet", "linear_class": "autobitlinear",
                               "quantization_mode": "offline"}, lambda inv_g: 1.0 / inv_g),
    # transformers' default BitLinear divides its output by weight_scale.
    "bitlinear": ({"quant_method": "bitnet", "linear_class": "bitlinear", "quantization_mode": "offline"},
                  lambda inv_g: inv_g),
}


def make_bitnet(out, name, seed, hidden_act, tied, kv_heads, kind, ids, facts, hidden=32, ff=64):
    quant, scale_rule = KINDS[kind]
    for attempt in range(300):
        plain = BitNetForCausalLM(bitnet_config(hidden_act, tied, kv_heads, None, hidden, ff)).float().eval()
        randomize(plain, seed + attempt)
        logits_fp = logits_of(plain, ids)
        path = os.path.join(out, name)
        shutil.rmtree(path, ignore_errors=True)
        cfg = bitnet_config(hidden_act, tied, kv_heads, quant, hidden, ff)
        write_dir(path, cfg, packed_tensors(plain, scale_rule) if scale_rule else master_tensors(plain))
        model = load(path)
        ties = TieMargin(model)
        logits = logits_of(model, ids)
        ties.close()
        if ties.margin >= MIN_TIE_MARGIN:
            break
        print(f"{name}: seed {seed + attempt} comes within {ties.margin:.2e} of an activation tie; next seed")
    else:
        sys.exit(f"{name}: no seed without near ties")
    save_file({"input_ids": ids.to(torch.int32), "logits": logits, "logits_fp": logits_fp},
              os.path.join(path, "expected.safetensors"))
    facts[name] = {"seed": seed + attempt, "quantization_config": quant, "activation_tie_margin": ties.margin,
                   "max_abs_logit": logits.abs().max().item(),
                   "max_abs_logit_fp": logits_fp.abs().max().item()}
    if scale_rule:
        # Settle what weight_scale means for this linear_class by running transformers' own code: the
        # online-quantized master model against the packed model stored with weight_scale = g and with
        # weight_scale = 1/g (g = clamp(mean|W|, 1e-5)).
        online = os.path.join(out, "_online_tmp")
        write_dir(online, bitnet_config(hidden_act, tied, kv_heads, KINDS["online"][0], hidden, ff),
                  master_tensors(plain))
        ref = logits_of(load(online), ids)
        diffs = {}
        for label, rule in (("g", lambda inv_g: 1.0 / inv_g), ("1_over_g", lambda inv_g: inv_g)):
            trial = os.path.join(out, "_trial_tmp")
            write_dir(trial, cfg, packed_tensors(plain, rule))
            diff = (logits_of(load(trial), ids) - ref).abs().max().item()
            diffs[f"max_abs_diff_vs_online_when_weight_scale_is_{label}"] = diff
            shutil.rmtree(trial)
        shutil.rmtree(online)
        facts[name]["weight_scale"] = diffs


def make_llama(out, seed, ids, facts):
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, hidden_act="silu", max_position_embeddings=64,
                      rms_norm_eps=1e-6, tie_word_embeddings=False, bos_token_id=None, eos_token_id=256,
                      pad_token_id=None, rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    model = LlamaForCausalLM(cfg).float().eval()
    randomize(model, seed)
    path = os.path.join(out, "llama")
    shutil.rmtree(path, ignore_errors=True)
    write_dir(path, cfg, master_tensors(model))
    logits = logits_of(load(path), ids)
    save_file({"input_ids": ids.to(torch.int32), "logits": logits}, os.path.join(path, "expected.safetensors"))
    facts["llama"] = {"seed": seed, "max_abs_logit": logits.abs().max().item()}


def write(out):
    torch.manual_seed(0)
    ids = input_ids()
    facts = {"transformers": __import__("transformers").__version__, "torch": torch.__version__}
    make_bitnet(out, "bitnet_master", 100, "relu2", False, 2, "online", ids, facts)
    make_bitnet(out, "bitnet_packed", 200, "relu2", True, 2, "bitlinear", ids, facts)
    make_bitnet(out, "bitnet_2b4t", 500, "relu2", True, 2, "autobitlinear_offline", ids, facts)
    make_bitnet(out, "bitnet_silu", 300, "silu", False, 4, "online", ids, facts)
    make_llama(out, 400, ids, facts)
    with open(os.path.join(out, "facts.json"), "w") as f:
        json.dump(facts, f, indent=2)
        f.write("\n")
    print(json.dumps(facts, indent=2))


def write_gguf_leg(out):
    """bitnet_silu_256/: the one BitNet shape upstream llama.cpp can run (its `bitnet` graph is SiLU-gated
    and tied; TQ1_0/TQ2_0 rows need multiples of 256), in 2B4T's packed layout: autobitlinear offline,
    silu, tied, GQA 4/2, hidden 256, ff 512. Its logits are on 3 ids (a longer input at this width
    always comes within MIN_TIE_MARGIN of an activation tie). Adds its facts to OUT_DIR/facts.json."""
    ids = input_ids()[:, :3].contiguous()
    facts_path = os.path.join(out, "facts.json")
    with open(facts_path) as f:
        facts = json.load(f)
    make_bitnet(out, "bitnet_silu_256", 600, "silu", True, 2, "autobitlinear_offline", ids, facts, 256, 512)
    with open(facts_path, "w") as f:
        json.dump(facts, f, indent=2)
        f.write("\n")
    print(json.dumps(facts["bitnet_silu_256"], indent=2))


def check_export(hf_dir, out):
    """Loads an onebit export with from_pretrained; writes its logits on the fixed ids to `out`."""
    model = load(hf_dir)
    print(f"loaded {hf_dir} as {type(model).__name__}; quantization_config:",
          getattr(model.config, "quantization_config", None))
    tok = AutoTokenizer.from_pretrained(hf_dir)
    print(f"tokenizer {type(tok).__name__}: 'ROMEO:' -> {tok('ROMEO:').input_ids}")
    ids = input_ids()
    ties = TieMargin(model)
    logits = logits_of(model, ids)
    ties.close()
    save_file({"input_ids": ids.to(torch.int32), "logits": logits}, out)
    print(f"logits {tuple(logits.shape)} max|logit| {logits.abs().max().item():.4f}, closest int8 activation code "
          f"to a rounding tie {ties.margin:.2e} of a step -> {out}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "write":
        write(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "write-gguf-leg":
        write_gguf_leg(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "check-export":
        check_export(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
