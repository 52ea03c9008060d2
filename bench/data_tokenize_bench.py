#!/usr/bin/env python3
"""`onebit tokenize` vs Hugging Face `tokenizers` on the same text files and tokenizer.json.

onebit: the whole `onebit tokenize` process (read, tokenize on all cores, write .tokens).
HF: Tokenizer.encode of each file's text (read included), then EOS, as `onebit tokenize` lays them out.
Also checks that both produce exactly the same ids. Writes bench/results/tokenize.json.

  /opt/venv-oracle/bin/python bench/data_tokenize_bench.py --onebit build/src/cli/onebit
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import tempfile
import time

import numpy as np
from tokenizers import Tokenizer

root = pathlib.Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onebit", required=True)
    ap.add_argument("--tokenizer", default="/work/shared/data/tokenizers/gpt2/tokenizer.json")
    ap.add_argument("--files", nargs="+", default=["/work/shared/data/wikitext-2/test.txt",
                                                   "/work/shared/data/wikitext-2/valid.txt"])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tok = Tokenizer.from_file(args.tokenizer)
    eos = tok.token_to_id("<|endoftext|>")
    mb = sum(os.path.getsize(f) for f in args.files) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "out.tokens"
        ob = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run([args.onebit, "tokenize", "--tokenizer", args.tokenizer, "--output", str(out),
                            "--input"] + args.files, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ob.append(time.perf_counter() - t0)
        ours = np.fromfile(out, dtype=np.uint16 if tok.get_vocab_size() <= 65536 else np.uint32, offset=64)
    hf = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        ids = []
        for f in args.files:
            ids += tok.encode(pathlib.Path(f).read_text(encoding="utf-8")).ids
            if eos is not None:
                ids.append(eos)
        hf.append(time.perf_counter() - t0)
    row = {"files": args.files, "tokenizer": args.tokenizer, "mb": round(mb, 2), "tokens": len(ids),
           "onebit_s": round(statistics.median(ob), 3), "hf_tokenizers_s": round(statistics.median(hf), 3),
           "onebit_mb_per_s": round(mb / statistics.median(ob), 1), "identical_ids": ours.tolist() == ids,
           "cpus": os.cpu_count()}
    print(json.dumps(row))
    res = root / "bench" / "results" / "tokenize.json"
    tmpf = res.with_suffix(".json.tmp")
    tmpf.write_text(json.dumps({"benchmark": "tokenize", "rows": [row]}, indent=2) + "\n")
    tmpf.replace(res)
    print("wrote", res)


if __name__ == "__main__":
    main()
