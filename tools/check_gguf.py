#!/usr/bin/env python3
"""Oracle for onebit's GGUF files and ggml block layouts, using the `gguf` package (llama.cpp's
gguf-py, pinned in scripts/install-test-oracles.sh).

  check_gguf.py quantize TYPE IN.f32 OUT.bin
      Raw little-endian f32 values → gguf.quants.quantize(values, TYPE) bytes (TYPE: TQ1_0, TQ2_0,
      F16, BF16), the reference the C++ quantizers are compared with byte for byte.
  check_gguf.py dequantize TYPE IN.bin OUT.f32
      ggml blocks → f32 values with gguf.quants.dequantize.
  check_gguf.py dump FILE.gguf OUT.json
      Reads FILE with gguf.GGUFReader: {"metadata": {key: value}, "tensors": {name: {"type": "TQ2_0",
      "shape": [ne0, ne1, ...] (ggml order), "values": [dequantized f32 ...]}}}.
  check_gguf.py export MODEL_DIR FILE.gguf
      Checks a file written by `onebit export --format gguf` against the model dir it came from:
      llama.cpp's architecture metadata, tokenizer metadata from tokenizer.json, tensor names and
      types, and every value: ternary codes (exact) and their F32 ".scale" (mean|W| + 1e-5; model_type
      "bitnet": max(mean|W|, 1e-5)), q/k
      rows permuted for the llama architecture, norms and embeddings as stored. Exit 0 when all agree, 1 with a message naming the first
      difference.
"""
import json
import sys

import numpy as np

import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFReader
from gguf.quants import dequantize, quantize


def field_value(field):
    types = field.types
    if not types:
        return None
    if types[0] == gguf.GGUFValueType.ARRAY:
        sub = types[-1]
        if sub == gguf.GGUFValueType.STRING:
            return [bytes(field.parts[i]).decode("utf-8") for i in field.data]
        return [field.parts[i].tolist()[0] for i in field.data]
    if types[0] == gguf.GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    v = field.parts[field.data[0]].tolist()[0]
    return bool(v) if types[0] == gguf.GGUFValueType.BOOL else v


def tensor_values(t):
    if t.tensor_type in (QT.F32, QT.F16, QT.BF16):
        arr = np.asarray(t.data)
        if t.tensor_type == QT.BF16:
            arr = dequantize(arr, QT.BF16)
        return arr.astype(np.float32).reshape(-1)
    return dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32).reshape(-1)


def cmd_quantize(type_name, src, dst):
    x = np.fromfile(src, dtype="<f4")
    qt = QT[type_name]
    n_block = gguf.GGML_QUANT_SIZES[qt][0]
    q = quantize(x.reshape(-1, max(n_block, 1) if n_block > 1 else x.size), qt)
    np.asarray(q).tofile(dst)


def cmd_dequantize(type_name, src, dst):
    qt = QT[type_name]
    block, nbytes = gguf.GGML_QUANT_SIZES[qt]
    raw = np.fromfile(src, dtype=np.uint8)
    if qt in (QT.F16, QT.BF16):
        raw = raw.reshape(1, -1)
    else:
        raw = raw.reshape(-1, nbytes)
    dequantize(raw, qt).astype("<f4").reshape(-1).tofile(dst)


def cmd_dump(path, out):
    r = GGUFReader(path)
    doc = {"metadata": {}, "tensors": {}}
    for name, field in r.fields.items():
        if name.startswith("GGUF."):
            continue
        doc["metadata"][name] = field_value(field)
    for t in r.tensors:
        doc["tensors"][t.name] = {"type": t.tensor_type.name, "shape": [int(n) for n in t.shape],
                                  "values": tensor_values(t).tolist()}
    with open(out, "w") as f:
        json.dump(doc, f)


class Mismatch(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise Mismatch(msg)


def onebit_ternary(w, model_type="onebit"):
    """DESIGN.md / kernels' weight_quant_scale: g = float32(sum|W| (f64) / n + 1e-5); for model_type
    "bitnet" transformers' g = float32(max(sum|W| / n, 1e-5)) (ternary_scale_clamped). Codes =
    clamp(roundeven(W/g), -1, 1) with W/g in f32."""
    w = w.astype(np.float32)
    mean = np.abs(w.astype(np.float64)).sum() / w.size
    g = np.float32(max(mean, 1e-5) if model_type == "bitnet" else mean + 1e-5)
    codes = np.clip(np.rint(w / g), -1, 1)
    return codes.astype(np.float32), g


def cmd_export(model_dir, path):
    from safetensors.numpy import load_file
    with open(f"{model_dir}/config.json") as f:
        cfg = json.load(f)
    weights = load_file(f"{model_dir}/model.safetensors")
    r = GGUFReader(path)
    md = {k: field_value(v) for k, v in r.fields.items() if not k.startswith("GGUF.")}
    arch = md["general.architecture"]
    expect(arch in ("bitnet", "llama"), f"general.architecture is {arch}")
    expect(arch == ("bitnet" if cfg.get("sub_ln", True) else "llama"), f"architecture {arch} for sub_ln")
    d, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    heads, kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    want = {
        f"{arch}.embedding_length": d, f"{arch}.block_count": L,
        f"{arch}.feed_forward_length": cfg["intermediate_size"], f"{arch}.attention.head_count": heads,
        f"{arch}.attention.head_count_kv": kv, f"{arch}.context_length": cfg["max_position_embeddings"],
        f"{arch}.rope.dimension_count": d // heads, f"{arch}.vocab_size": cfg["vocab_size"],
    }
    for k, v in want.items():
        expect(md.get(k) == v, f"metadata {k} = {md.get(k)}, expected {v}")
    expect(abs(md[f"{arch}.rope.freq_base"] - cfg.get("rope_theta", 10000.0)) < 1e-3, "rope.freq_base")
    expect(abs(md[f"{arch}.attention.layer_norm_rms_epsilon"] - cfg.get("rms_norm_eps", 1e-5)) < 1e-12,
           "layer_norm_rms_epsilon")

    with open(f"{model_dir}/tokenizer.json") as f:
        tok = json.load(f)
    vocab = dict(tok["model"]["vocab"])
    for a in tok.get("added_tokens", []):
        vocab[a["content"]] = a["id"]
    tokens = md["tokenizer.ggml.tokens"]
    expect(md["tokenizer.ggml.model"] == "gpt2", "tokenizer.ggml.model")
    expect(len(tokens) == cfg["vocab_size"], f"{len(tokens)} tokens for vocab {cfg['vocab_size']}")
    for t, i in vocab.items():
        expect(tokens[i] == t, f"token {i} is {tokens[i]!r}, tokenizer.json says {t!r}")
    merges = tok["model"].get("merges", [])
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    expect(md.get("tokenizer.ggml.merges", []) == merges, "tokenizer.ggml.merges differ from tokenizer.json")

    tensors = {t.name: t for t in r.tensors}
    ternary_type = None

    def check_plain(gname, hf_name):
        expect(gname in tensors, f"tensor {gname} missing")
        t = tensors[gname]
        want = weights[hf_name].astype(np.float32).reshape(-1)
        got = tensor_values(t)
        tol = 0 if t.tensor_type == QT.F32 else 1e-3 * max(1.0, float(np.abs(want).max()))
        expect(got.shape == want.shape, f"{gname}: {got.shape} values, expected {want.shape}")
        err = float(np.abs(got - want).max()) if want.size else 0.0
        expect(err <= tol, f"{gname}: max |diff| {err} > {tol}")

    def check_ternary(gname, hf_name):
        nonlocal ternary_type
        t = tensors[gname + ".weight"]
        w = weights[hf_name]
        expect([int(n) for n in t.shape] == [w.shape[1], w.shape[0]], f"{gname}: shape {t.shape}")
        if arch == "llama" and gname.split(".")[-1] in ("attn_q", "attn_k"):
            heads = cfg["num_attention_heads"] if gname.endswith("attn_q") else kv
            hd = d // cfg["num_attention_heads"]
            w = w.reshape(heads, 2, hd // 2, w.shape[1]).swapaxes(1, 2).reshape(w.shape)
        _, g = onebit_ternary(w, cfg.get("model_type", "onebit"))
        got = tensor_values(t)
        ternary_type = t.tensor_type
        expect(gname + ".scale" in tensors, f"{gname}.scale missing")
        scale = tensor_values(tensors[gname + ".scale"])
        # The kernels sum |W| in f32 chunks added in f64: equal to the f64 mean to about 1e-6.
        expect(scale.shape == (1,) and abs(float(scale[0]) - float(g)) <= 1e-6 * float(g),
               f"{gname}.scale {scale} != {g}")
        codes = np.clip(np.rint(w.astype(np.float32) / scale[0]), -1, 1).reshape(-1)
        expect(np.array_equal(got, codes), f"{gname}: ternary codes differ")

    check_plain("token_embd.weight", "model.embed_tokens.weight")
    check_plain("output_norm.weight", "model.norm.weight")
    if not cfg.get("tie_word_embeddings", False):
        check_plain("output.weight", "lm_head.weight")
    else:
        expect("output.weight" not in tensors, "output.weight present for tied embeddings")
    for i in range(L):
        p, h = f"blk.{i}.", f"model.layers.{i}."
        check_plain(p + "attn_norm.weight", h + "input_layernorm.weight")
        check_plain(p + "ffn_norm.weight", h + "post_attention_layernorm.weight")
        if arch == "bitnet":
            check_plain(p + "attn_sub_norm.weight", h + "self_attn.attn_sub_norm.weight")
            check_plain(p + "ffn_sub_norm.weight", h + "mlp.ffn_sub_norm.weight")
        for g_name, hf in [("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"),
                           ("attn_v", "self_attn.v_proj"), ("attn_output", "self_attn.o_proj"),
                           ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"),
                           ("ffn_down", "mlp.down_proj")]:
            check_ternary(p + g_name, h + hf + ".weight")
    print(f"ok: {path}: {len(tensors)} tensors, ternary type {ternary_type.name if ternary_type else 'none'}")


def main(argv):
    cmds = {"quantize": (cmd_quantize, 3), "dequantize": (cmd_dequantize, 3), "dump": (cmd_dump, 2),
            "export": (cmd_export, 2)}
    if len(argv) < 2 or argv[1] not in cmds or len(argv) - 2 != cmds[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        cmds[argv[1]][0](*argv[2:])
    except Mismatch as e:
        print(f"check_gguf: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
