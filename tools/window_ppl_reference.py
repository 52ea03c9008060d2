#!/usr/bin/env python3
"""Perplexity of an onebit bitnet-architecture model dir on the positions llama-perplexity scores, so
that llama.cpp's number can be compared with onebit's model on the same tokens.

  window_ppl_reference.py MODEL_DIR TEXT_FILE CTX CHUNKS

llama-perplexity cuts the text into CHUNKS windows of CTX tokens and scores only the second half of
each; `onebit eval` scores every position. This computes both on the same windows with transformers'
BitNetForCausalLM holding onebit's Hard-phase numerics: ternary weights clamp(roundeven(W/g), -1, 1)
* g with g = mean|W| + 1e-5, per-token absmax int8 activations into every ternary linear, SwiGLU
(hidden_act "silu"). (The same construction reproduces onebit's logits on imported llama.cpp files to
7e-7: tests/cli/import_gguf_test.cpp.) The model must use onebit's byte tokenizer (ids = bytes).
Needs torch, transformers, safetensors, numpy.
"""
import json
import sys

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import BitNetConfig, BitNetForCausalLM

LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def act_quant(module, args):
    x = args[0]
    s = 127.0 / x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
    return (torch.round(x * s).clamp(-128, 127) / s,)


def main(model_dir, text_file, ctx, chunks):
    c = json.load(open(f"{model_dir}/config.json"))
    assert c.get("sub_ln") and c.get("tie_word_embeddings") and c.get("hidden_act") == "swiglu" and not c.get("qk_norm")
    cfg = BitNetConfig(vocab_size=c["vocab_size"], hidden_size=c["hidden_size"],
                       intermediate_size=c["intermediate_size"], num_hidden_layers=c["num_hidden_layers"],
                       num_attention_heads=c["num_attention_heads"], num_key_value_heads=c["num_key_value_heads"],
                       hidden_act="silu", max_position_embeddings=c["max_position_embeddings"],
                       rms_norm_eps=c["rms_norm_eps"], rope_theta=c["rope_theta"], tie_word_embeddings=True)
    model = BitNetForCausalLM(cfg).eval()
    sd = load_file(f"{model_dir}/model.safetensors")
    sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    model.load_state_dict(sd, strict=True)
    ids = list(open(text_file, "rb").read())
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.Linear) and name.split(".")[-1] in LINEARS:
                w = mod.weight.float()
                g = (w.abs().double().mean() + 1e-5).float()
                mod.weight.copy_(torch.round(w / g).clamp(-1, 1) * g)
                mod.register_forward_pre_hook(act_quant)
        nll_all, nll_half = [], []
        for ch in range(chunks):
            t = torch.tensor([ids[ch * ctx:(ch + 1) * ctx]])
            assert t.shape[1] == ctx, "text too short for CHUNKS windows"
            lp = torch.log_softmax(model(t).logits[0].float(), -1)
            nll = -lp[:-1].gather(1, t[0, 1:, None])[:, 0]
            nll_all += nll.tolist()
            nll_half += nll[ctx // 2:].tolist()  # llama-perplexity: tokens ctx/2+1 .. ctx-1
    print(f"every position of {chunks} windows of {ctx}: ppl {np.exp(np.mean(nll_all)):.4f}")
    print(f"second half of each window (llama-perplexity's positions): ppl {np.exp(np.mean(nll_half)):.4f}")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
