#!/usr/bin/env python3
"""Writes tests/fixtures/gguf/: GGUF files made by llama.cpp's own converter (convert_hf_to_gguf.py)
from a tiny random Hugging Face BitNet model, and the logits that model computes, as the fixtures of
`onebit import gguf` (tests/cli/import_gguf_test.cpp; no Python at test time).

  python tools/make_gguf_fixtures.py LLAMA_CPP_SOURCE_DIR
      (e.g. the llama.cpp inside `pip download --no-binary :all: llama_cpp_python==0.3.36`)
  Needs torch, transformers (BitNetForCausalLM), sentencepiece, numpy.

The model: BitNetForCausalLM, hidden 256, 2 layers, 4 heads / 2 kv heads, ff 256, vocab 320 (a
SentencePiece vocabulary trained on data/tinyshakespeare.txt: the converter's BitNet path reads
tokenizer.model), tied embeddings, hidden_act "silu" (llama.cpp's bitnet graph is SiLU-gated whatever
the config says, so the reference computes what llama.cpp computes). Converted with --outtype tq2_0,
tq1_0 and f16, after renaming the sub-norms to the 1bitLLM names this converter knows (the
converter ternarizes the weights: W -> clamp(round(W/s), -1, 1) * s,
s = clamp(mean|W|, 1e-5), and stores that product; TQ blocks carry s as their f16 d).

Reference logits (llamacpp-bitnet-logits.json): the HF model with exactly the weights the files hold
(the ternarized linears with s in f16, the embedding in f16), and per-token absmax int8 activation quantization
(127 / max|x|, round half to even) on the input of every ternary linear, on fixed token ids.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "tests", "fixtures", "gguf")


def converter_quant(w):
    s = w.abs().mean().clamp(min=1e-5)
    codes = (w / s).round().clamp(-1, 1)
    return codes, s


def main(llama_src):
    from transformers import BitNetConfig, BitNetForCausalLM
    import sentencepiece as spm

    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        hf = os.path.join(tmp, "hf")
        os.makedirs(hf)
        text = open(os.path.join(REPO, "data", "tinyshakespeare.txt"), encoding="utf-8").read()[:200000]
        corpus = os.path.join(tmp, "corpus.txt")
        with open(corpus, "w", encoding="utf-8") as f:
            f.write(text)
        spm.SentencePieceTrainer.train(input=corpus, model_prefix=os.path.join(hf, "tokenizer"), vocab_size=320,
                                       model_type="bpe", byte_fallback=False, character_coverage=1.0,
                                       bos_id=1, eos_id=2, unk_id=0, pad_id=-1)
        os.remove(os.path.join(hf, "tokenizer.vocab"))
        torch.manual_seed(0)
        cfg = BitNetConfig(vocab_size=320, hidden_size=256, intermediate_size=256, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, hidden_act="silu",
                           max_position_embeddings=128, rms_norm_eps=1e-5, rope_theta=10000.0,
                           tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)
        model = BitNetForCausalLM(cfg).eval()
        model.save_pretrained(hf, safe_serialization=True)
        # This converter maps only the sub-norm names of the 1bitLLM checkpoints (inner_attn_ln,
        # ffn_layernorm); on transformers' names it stops with "Can not map tensor
        # 'model.layers.0.mlp.ffn_sub_norm.weight'". Rename them, as a user would have to.
        from safetensors.torch import load_file, save_file
        st = os.path.join(hf, "model.safetensors")
        tensors = {k.replace("self_attn.attn_sub_norm", "self_attn.inner_attn_ln").replace("mlp.ffn_sub_norm", "mlp.ffn_layernorm"): v
                   for k, v in load_file(st).items()}
        save_file(tensors, st, metadata={"format": "pt"})
        for t in ("tq2_0", "tq1_0", "f16"):
            subprocess.run([sys.executable, os.path.join(llama_src, "convert_hf_to_gguf.py"), hf, "--outtype", t,
                            "--outfile", os.path.join(OUT, f"llamacpp-bitnet-{t}.gguf")], check=True)

        # The reference: the converter's ternary weights (scale rounded to f16, as stored) and int8
        # activations into every ternary linear.
        names = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
        with torch.no_grad():
            # Every converted file holds token_embd (the tied LM head) in F16.
            emb = model.get_input_embeddings().weight
            emb.copy_(emb.half().float())
            for name, mod in model.named_modules():
                if isinstance(mod, torch.nn.Linear) and name.split(".")[-1] in names:
                    codes, s = converter_quant(mod.weight.float())
                    s16 = torch.tensor(float(s), dtype=torch.float16).float()
                    mod.weight.copy_(codes * s16)

                    def act_quant(m, args):
                        x = args[0]
                        sc = 127.0 / x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
                        return (torch.round(x * sc).clamp(-128, 127) / sc,)

                    mod.register_forward_pre_hook(act_quant)
            g = torch.Generator().manual_seed(1)
            tokens = torch.randint(3, 320, (1, 24), generator=g)
            logits = model(tokens).logits[0].float().numpy()
        with open(os.path.join(OUT, "llamacpp-bitnet-logits.json"), "w") as f:
            json.dump({"tokens": tokens[0].tolist(), "vocab": 320, "logits": [float(x) for x in logits.reshape(-1)]}, f)
    print("wrote", OUT)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1])
