#!/usr/bin/env python3
"""Generates bitnet.cpp's TL2 kernels for the weight shapes of onebit's benchmark models.

    bitnet_tl2_codegen.py TL2_SRC CONFIG.json...

bitnet.cpp's TL2 (x86 lookup-table) kernels are generated per weight shape: utils/codegen_tl2.py
writes include/bitnet-lut-kernels.h (one kernel per [M, K] = [out, in], its tile sizes BM and BK
compiled in) and include/kernel_config.ini (which its HF converter reads to lay the weights out for
those tiles). Its __main__ knows only three models' shapes, so this script calls the same generator
functions (imported from TL2_SRC/utils/codegen_tl2.py, not copied) with the shapes of the given
llama.cpp-bitnet configs (bench/configs/*-bitnet.json): q/o [hidden, hidden], k/v [kv, hidden],
gate/up [ffn, hidden], down [hidden, ffn]; one kernel per distinct shape, so one build runs every
model given.

Tiles, as setup_env.py's x86 presets choose them (no per-shape tuning here): BK = 96 (three-weight
groups: K is split into the largest multiple of BK, done by the 3-weight LUT, and a remainder done by
the 2-weight LUT, which must be a multiple of 32) and bm = 32 (the only value the generator takes).
BM, the rows one thread's tile holds, is the first of 256, 320, 160, 128, 96, 64, 32 that divides M
into at least 4 tiles, so 2 threads get balanced work (a tile is the unit threads share).
One change to the generated code (fix_batch_store): the batched kernels' result rows are stored
where ggml reads them; as generated, prefill (more than one activation row) computes a wrong result.
TL2_SRC must be a copy of the BitNet source used only for the TL2 build: the files are written there.
"""
import configparser
import importlib.util
import json
import os
import sys

BK = 96
BM_CANDIDATES = (256, 320, 160, 128, 96, 64, 32)
MIN_TILES = 4


def shapes_of(config_path):
    with open(config_path) as f:
        c = json.load(f)
    hidden, ffn = c["hidden_size"], c["intermediate_size"]
    heads = c["num_attention_heads"]
    kv = c.get("num_key_value_heads", heads) * (hidden // heads)
    return [(hidden, hidden), (kv, hidden), (ffn, hidden), (hidden, ffn)]


def block_rows(m):
    for bm in BM_CANDIDATES:
        if m % bm == 0 and m // bm >= MIN_TILES:
            return bm
    raise SystemExit(f"bitnet_tl2_codegen: no TL2 tile height BM divides M = {m} into {MIN_TILES} tiles")


def fix_batch_store(kernel, m, k):
    """The generated three_/two_qgemm_lut store every batch row's result into row 0 of C
    (`C[i] = CBits[i + bs * BM]`), so a product with more than one activation row (prefill; ggml
    calls them for batches of 512/256/128/32/8 rows) is wrong while one row (decode) is right: in
    BitNet c82b5e6 and in its later templates alike. C's rows are ne01 = M apart (ggml.c passes
    act_output + i * bs * ne01), so the store goes to C[i + bs * M]; the work done is unchanged."""
    pre = f"{m}_{k}"
    fixes = [
        (f"((int32_t*)C)[i] = (int32_t)(((int32_t*)CBits)[i + bs * BM{pre}]);",
         f"((int32_t*)C)[i + bs * {m}] = (int32_t)(((int32_t*)CBits)[i + bs * BM{pre}]);"),
        (f"((int32_t*)C)[i] += (int32_t)(((int32_t*)CBits)[i + bs * BM{pre}]);",
         f"((int32_t*)C)[i + bs * {m}] += (int32_t)(((int32_t*)CBits)[i + bs * BM{pre}]);"),
        ("((float*)C)[i] = (float)(((int32_t*)C)[i]) / ((float*)LUT_Scales)[bs] * ((float*)Scales)[0];",
         f"((float*)C)[i + bs * {m}] = (float)(((int32_t*)C)[i + bs * {m}]) / ((float*)LUT_Scales)[bs] * ((float*)Scales)[0];"),
    ]
    for old, new in fixes:
        if kernel.count(old) != 1:
            raise SystemExit(f"bitnet_tl2_codegen: the generated [{m}, {k}] kernel has no single `{old}` to fix "
                             "(codegen_tl2.py changed?)")
        kernel = kernel.replace(old, new)
    return kernel


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    src, configs = sys.argv[1], sys.argv[2:]
    spec = importlib.util.spec_from_file_location("codegen_tl2", os.path.join(src, "utils", "codegen_tl2.py"))
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)

    shapes = []
    for path in configs:
        for s in shapes_of(path):
            if s not in shapes:
                shapes.append(s)
    for m, k in shapes:
        if (k % BK) % 32 != 0:
            raise SystemExit(f"bitnet_tl2_codegen: K = {k} leaves {k % BK} for the 2-weight LUT (must be a multiple of 32)")
    bms = [block_rows(m) for m, _ in shapes]
    k_list = [gen.get_three_k_two_k(k, BK) for _, k in shapes]

    # The same order and the same guard as codegen_tl2.py's __main__.
    code = ["#if defined(GGML_BITNET_X86_TL2)", gen.gen_ctor_code()]
    for (m, k), bm, ks in zip(shapes, bms, k_list):
        code.append(fix_batch_store(gen.gen_tbl_impl(f"{m}_{k}", bm, BK, 32, ks), m, k))
    code += [gen.gen_top_api([list(s) for s in shapes], k_list), gen.gen_transform_code([list(s) for s in shapes]), "#endif"]
    include = os.path.join(src, "include")
    with open(os.path.join(include, "bitnet-lut-kernels.h.tmp"), "w") as f:
        f.write("".join(code))
    os.replace(os.path.join(include, "bitnet-lut-kernels.h.tmp"), os.path.join(include, "bitnet-lut-kernels.h"))

    ini = configparser.ConfigParser()
    for i, ((m, k), bm) in enumerate(zip(shapes, bms)):
        ini[f"Kernels_{i}"] = {"M": str(m), "K": str(k), "BM": str(bm), "BK": str(BK), "bmm": "32"}
    with open(os.path.join(include, "kernel_config.ini.tmp"), "w") as f:
        ini.write(f)
    os.replace(os.path.join(include, "kernel_config.ini.tmp"), os.path.join(include, "kernel_config.ini"))
    for (m, k), bm, (two_k, three_k) in zip(shapes, bms, k_list):
        print(f"TL2 kernel [M {m}, K {k}]: BM {bm} ({m // bm} tiles), BK {BK}, 3-weight K {three_k}, 2-weight K {two_k}")


if __name__ == "__main__":
    main()
