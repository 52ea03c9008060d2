#!/usr/bin/env python3
# Writes the fuzz seed corpus (tests/fuzz/corpus/<parser>/): small valid files and the bad inputs of
# issue 13. Needs the Python packages tokenizers, safetensors, numpy and gguf; run from anywhere:
#   python3 tests/fuzz/make_corpus.py
# (the BPE trainer breaks ties in no fixed order, so the valid_* tokenizers may differ run to run)
import os
R = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
import json
from tokenizers import Tokenizer, models, trainers, pre_tokenizers, decoders, normalizers, processors, AddedToken
text = ["the quick brown fox jumps over the lazy dog", "hello world, 12345 caf\u00e9 na\u00efve", "<s> a b c ab abc the the"] * 20
out = os.path.join(R, "tokenizer_json")
os.makedirs(out, exist_ok=True)

def save(tok, name):
    s = tok.to_str()
    j = json.loads(s)
    open(os.path.join(out, name), "w").write(json.dumps(j, ensure_ascii=False, separators=(",", ":")))


# byte-level BPE with a template post-processor
t = Tokenizer(models.BPE())
t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
t.decoder = decoders.ByteLevel()
tr = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>", "<s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
t.train_from_iterator(text, tr)
t.post_processor = processors.TemplateProcessing(single="<s> $A <|endoftext|>", special_tokens=[("<s>", 1), ("<|endoftext|>", 0)])
save(t, "valid_bytelevel_template.json")

# SentencePiece-like: Metaspace, byte fallback, Strip/Replace/Fuse decoders, unk
t = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
t.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
t.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
tr = trainers.BpeTrainer(vocab_size=120, special_tokens=["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(0x20, 0x30)], show_progress=False)
t.train_from_iterator(text, tr)
t.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
save(t, "valid_sentencepiece_strip.json")

# Metaspace pre-tokenizer and decoder, Bert-style processing, added tokens with flags
t = Tokenizer(models.BPE(unk_token="[UNK]"))
t.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(), normalizers.Strip()])
t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first"), pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.Punctuation()])
t.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first")
tr = trainers.BpeTrainer(vocab_size=120, special_tokens=["[UNK]", "[CLS]", "[SEP]"], show_progress=False)
t.train_from_iterator(text, tr)
t.add_tokens([AddedToken("the", single_word=True), AddedToken("<mask>", lstrip=True, special=True), AddedToken("x\ny", rstrip=True)])
t.post_processor = processors.BertProcessing(("[SEP]", 2), ("[CLS]", 1))
save(t, "valid_metaspace_bert.json")

# Whitespace split + BPEDecoder with a suffix
t = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(pattern="o", behavior="merged_with_next")])
t.decoder = decoders.BPEDecoder(suffix="</w>")
tr = trainers.BpeTrainer(vocab_size=100, end_of_word_suffix="</w>", show_progress=False)
t.train_from_iterator(text, tr)
save(t, "valid_bpe_suffix_split.json")
import struct
from safetensors.numpy import save_file
import numpy as np

def w(sub, name, data):
    os.makedirs(os.path.join(R, sub), exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(R, sub, name), mode) as f: f.write(data)
def dumps(j): return json.dumps(j, ensure_ascii=False, separators=(",", ":"))

# ---- tokenizer.json: the bad inputs, each on a minimal valid base
def base():
    return {"version": "1.0", "added_tokens": [{"id": 3, "content": "<s>", "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": False, "special": True}], "normalizer": None, "pre_tokenizer": None,
            "post_processor": None, "decoder": None,
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}}
T = "tokenizer_json"
j = base(); j["decoder"] = {"type": "Strip", "content": "", "start": 10**12, "stop": 0}; w(T, "bad_decoder_strip_empty_content.json", dumps(j))
j = base(); j["decoder"] = {"type": "Metaspace", "replacement": "", "prepend_scheme": "always", "split": True}; w(T, "bad_decoder_metaspace_empty_replacement.json", dumps(j))
tmpl = lambda ids: {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                    "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": ids, "tokens": ["<s>"] * len(ids)}}}
j = base(); j["post_processor"] = tmpl([-7]); w(T, "bad_post_processor_negative_id.json", dumps(j))
j = base(); j["post_processor"] = tmpl([4294967298]); w(T, "bad_post_processor_id_above_2p32.json", dumps(j))
j = base(); j["post_processor"] = {"type": "BertProcessing", "sep": ["</s>", 2], "cls": ["<cls>", 9]}; w(T, "bad_post_processor_id_past_vocab.json", dumps(j))
j = base(); j["added_tokens"][0]["id"] = 2147483647; w(T, "bad_added_token_id_int_max.json", dumps(j))
j = base(); j["model"]["vocab"]["ab"] = 2147483000; w(T, "bad_vocab_id_near_2p31.json", dumps(j))
j = base(); j["model"]["merges"] = ["a\nonebit: error: b c"]; w(T, "bad_merge_with_newline.json", dumps(j))
j = base(); j["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": "(\nonebit: error: x"}, "behavior": "Isolated", "invert": False}; w(T, "bad_regex_with_newline.json", dumps(j))
j = base(); j["model"]["vocab"]["a\nb"] = "x"; w(T, "bad_vocab_key_newline.json", dumps(j))
j = base(); j["normalizer"] = {"type": "Evil\nType"}; w(T, "bad_component_type_newline.json", dumps(j))
j = base(); w(T, "bad_number_1e999.json", dumps(j).replace('"ab":2', '"ab":1e999'))
j = base(); j["model"]["dropout"] = "0.1"; w(T, "bad_dropout_wrong_type.json", dumps(j))
j = base(); j["added_tokens"][0]["id"] = True; w(T, "bad_added_token_id_bool.json", dumps(j))
j = base(); j["decoder"] = {"type": "Strip", "content": " ", "start": -1, "stop": 0}; w(T, "bad_decoder_strip_negative_start.json", dumps(j))
# An empty unk token next to a boundary token ("▁" or " "): BpeModel read its last character at size() - 1.
j = base(); j["model"]["unk_token"] = ""; j["model"]["vocab"].update({"": 4, " ": 5}); w(T, "edge_unk_token_empty.json", dumps(j))
w(T, "bad_deep_nesting.json", dumps(base()).replace('"version":"1.0"', '"version":' + "[" * 5000 + "]" * 5000))

# ---- config.json
C = "config_json"
micro = {"vocab_size": 257, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64}
q = dict(micro, quantization={"weight_bits": {"attention": "ternary", "mlp": "binary", "embedding": "f32", "lm_head": "int8"},
         "activation_bits": "int8", "precision_map": {"model.layers.1.mlp.down_proj": "bf16"}}, qk_norm=True, sub_ln=True,
         rope_theta=10000.0, rms_norm_eps=1e-5, hidden_act="relu2", num_key_value_heads=1, tie_word_embeddings=False)
w(C, "valid_quantized.json", json.dumps(q, indent=2))
w(C, "bad_number_1e999.json", json.dumps(micro).replace('"vocab_size": 257', '"vocab_size": 1e999'))
w(C, "bad_key_newline.json", json.dumps(dict(micro, **{"vocab\nonebit: error: size": 1})))
w(C, "bad_hidden_act_newline.json", json.dumps(dict(micro, hidden_act="gelu\nonebit: error: fake")))
w(C, "bad_precision_map_key_newline.json", json.dumps(dict(micro, quantization={"precision_map": {"model.layers.0\n.mlp.up_proj": "f32"}})))
w(C, "bad_rope_theta_1e39.json", json.dumps(dict(micro, rope_theta=1e39)))
w(C, "bad_vocab_size_bool.json", json.dumps(dict(micro, vocab_size=True)))
w(C, "bad_vocab_size_2p32.json", json.dumps(dict(micro, vocab_size=4294967553)))

# ---- safetensors
S = "safetensors"
os.makedirs(os.path.join(R, S), exist_ok=True)
def st_raw(h, data=b""):
    h = h.encode() if isinstance(h, str) else h
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data
save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(4, dtype=np.float16), "i": np.array([1, 2], dtype=np.int64)},
          os.path.join(R, S, "valid_small.safetensors"), metadata={"format": "pt"})
w(S, "bad_tensor_name_newline.safetensors", st_raw(json.dumps({"w\nonebit: error: x": {"dtype": "F33", "shape": [1], "data_offsets": [0, 4]}}), b"\0" * 4))
w(S, "bad_number_1e999.safetensors", st_raw('{"w":{"dtype":"F32","shape":[1e999],"data_offsets":[0,4]}}', b"\0" * 4))
w(S, "bad_metadata_key_newline.safetensors", st_raw(json.dumps({"__metadata__": {"a\nb": 1}})))
w(S, "bad_deep_nesting.safetensors", st_raw('{"__metadata__":' + "[" * 5000 + "]" * 5000 + "}"))

# ---- trainer_state.json (read by train/checkpoint.cpp)
TS = "trainer_state"
state = {"step": 1, "tokens_seen": 4096, "data": {"kind": "random_windows", "tokens": 1000, "batches": 3, "seed": 0},
         "rng": {"dropout": "12345 67890"}, "quant": {"phase": "hard", "k": 1.0}, "lr": 0.001, "config_hash": "0123456789abcdef",
         "tokenizer_hash": 1234567890123, "threads": 2, "optimizer": {"name": "adamw", "t": 1},
         "run": {"data": "train.jsonl", "model_config": "tiny", "tokenizer": "byte", "batch_size": 2, "seq_len": 16,
                 "accumulation_steps": 1, "max_steps": 10, "lr": 0.001, "min_lr": 0.0001, "warmup_steps": 1,
                 "schedule": "cosine", "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "grad_clip": 1.0,
                 "quant_warmup_steps": 0, "quant_anneal_steps": 0, "quant_k_start": 1.0, "quant_k_end": 10.0,
                 "val_fraction": 0.1, "seed": 0}}
w(TS, "valid_trainer_state.json", json.dumps(state, indent=2))
w(TS, "bad_number_1e999.json", json.dumps(state).replace('"step": 1,', '"step": 1e999,'))
w(TS, "bad_t_negative.json", json.dumps(dict(state, optimizer={"name": "adamw", "t": -1})))
w(TS, "bad_step_negative.json", json.dumps(dict(state, step=-5)))
w(TS, "bad_optimizer_wrong_type.json", json.dumps(dict(state, optimizer="adamw")))
w(TS, "bad_step_wrong_type.json", json.dumps(dict(state, step="1")))
w(TS, "bad_t_huge.json", json.dumps(dict(state, optimizer={"name": "adamw", "t": 18446744073709551615})))

# ---- .tokens
K = "tokens_file"
def tokens(vocab, ids, width=None, count=None, version=1, magic=b"OBTOKENS"):
    width = width or (2 if vocab <= 65536 else 4)
    count = len(ids) if count is None else count
    h = magic + struct.pack("<IIII", version, width, vocab, 0) + struct.pack("<QQ", count, 0x1234) + b"\0" * 24
    return h + b"".join(struct.pack("<H" if width == 2 else "<I", i) for i in ids)
w(K, "valid_u16.tokens", tokens(300, [1, 2, 3, 299, 0, 256, 7, 7, 7, 42]))
w(K, "valid_u32.tokens", tokens(100000, [99999, 0, 65536, 12345, 5]))
w(K, "valid_empty.tokens", tokens(257, []))
w(K, "bad_truncated.tokens", tokens(300, [1, 2, 3])[:-1])
w(K, "bad_count_overflow.tokens", tokens(300, [1, 2], count=(1 << 63) + 1))
w(K, "bad_id_out_of_range.tokens", tokens(300, [1, 300, 2]))
w(K, "bad_width_3.tokens", tokens(300, [], width=3))

# ---- JSONL
J = "jsonl"
docs = [{"text": "the quick brown fox"}, {"text": "jumps over\nthe lazy dog", "id": 2}, {"text": "caf\u00e9 \u2581 na\u00efve"},
        {"text": ""}, {"text": "x" * 100, "meta": {"a": [1, 2, {"b": None}]}}, {"text": "last one"}]
w(J, "valid.jsonl", "\n".join(json.dumps(d, ensure_ascii=False) for d in docs) + "\n\n")
w(J, "bad_number_1e999.jsonl", '{"text": "a", "n": 1e999}\n{"text": "b"}\n{"text": "c"}\n')
w(J, "bad_lines.jsonl".replace("bad_", "bad_mixed_"), '{"text": "ok"}\n[1, 2]\n{"txt": "no text"}\n{"text": 5}\n{"text": "bad \xff utf8"}\n{"text": "ok2"}\nnot json\n{"text": "ok3"}\n')
w(J, "bad_deep_nesting.jsonl", '{"text": "a", "x": ' + "[" * 5000 + "]" * 5000 + '}\n{"text": "b"}\n{"text": "c"}\n')

# ---- GGUF (needs the `gguf` package)
import gguf
G = "gguf"
os.makedirs(os.path.join(R, G), exist_ok=True)
gw = gguf.GGUFWriter(os.path.join(R, G, "valid_small.gguf"), "bitnet")
gw.add_block_count(1)
gw.add_embedding_length(256)
gw.add_layer_norm_rms_eps(1e-5)
gw.add_token_list(["a", "b", "\u0120c"])
gw.add_token_types([1, 1, 3])
gw.add_array("floats", [0.5, -1.0])
gw.add_bool("flag", True)
gw.add_uint64("big", 1 << 40)
gw.add_float64("f64", 0.25)
rng = np.random.default_rng(0)
gw.add_tensor("token_embd.weight", rng.standard_normal((3, 256)).astype(np.float32))
gw.add_tensor("blk.0.attn_norm.weight", np.ones(256, dtype=np.float16))
tern = (rng.integers(-1, 2, (2, 256))).astype(np.float32)
gw.add_tensor("blk.0.attn_q.weight", gguf.quants.quantize(tern, gguf.GGMLQuantizationType.TQ2_0), raw_dtype=gguf.GGMLQuantizationType.TQ2_0)
gw.add_tensor("blk.0.attn_k.weight", gguf.quants.quantize(tern, gguf.GGMLQuantizationType.TQ1_0), raw_dtype=gguf.GGMLQuantizationType.TQ1_0)
gw.add_tensor("blk.0.attn_q.scale", np.array([0.03], dtype=np.float32))
gw.write_header_to_file()
gw.write_kv_data_to_file()
gw.write_tensors_to_file()
gw.close()
good = open(os.path.join(R, G, "valid_small.gguf"), "rb").read()
w(G, "bad_truncated.gguf", good[:len(good) - 100])
name_at = good.index(b"token_embd.weight")
type_at = name_at + 17 + 4 + 16  # after the name, n_dims and two dimensions
w(G, "bad_tensor_name_newline.gguf", good[:name_at] + b"token\nembd.weight" + good[name_at + 17:type_at] + struct.pack("<I", 99) + good[type_at + 4:])
w(G, "bad_string_length_huge.gguf", good[:24] + struct.pack("<Q", 1 << 62) + good[32:])
