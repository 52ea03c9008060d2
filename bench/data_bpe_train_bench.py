#!/usr/bin/env python3
"""BPE training speed: `onebit tokenizer train` vs Hugging Face `tokenizers` BpeTrainer.

Same files, same vocab size, same min frequency (2), same pre-tokenization (GPT-2 regex Split +
ByteLevel), same 256-symbol byte alphabet and one special token, same thread count. Wall time of
the whole training (onebit: the process, file reading included; HF: Tokenizer.train, file reading
included). Median of --repeat runs. Writes bench/results/bpe_train.json.

  /opt/venv-oracle/bin/python bench/data_bpe_train_bench.py --onebit build/src/cli/onebit
"""
import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import tempfile
import time

GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
root = pathlib.Path(__file__).resolve().parent.parent


def hf_train(files, vocab, threads):
    os.environ["RAYON_NUM_THREADS"] = str(threads)
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers, decoders

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(GPT2), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, min_frequency=2, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    t0 = time.perf_counter()
    tok.train([str(f) for f in files], trainer)
    return time.perf_counter() - t0, tok


def onebit_train(binary, files, vocab, threads, out):
    cmd = [binary, "tokenizer", "train", "--vocab-size", str(vocab), "--min-frequency", "2",
           "--threads", str(threads), "--output", str(out), "--files"] + [str(f) for f in files]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onebit", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    data = pathlib.Path("/work/shared/data")
    corpora = {
        "tinyshakespeare": [data / "tinyshakespeare" / "input.txt"],
        "wikitext-2 (valid+test)": [data / "wikitext-2" / "valid.txt", data / "wikitext-2" / "test.txt"],
    }
    rows = []
    from tokenizers import Tokenizer
    with tempfile.TemporaryDirectory() as tmp:
        for name, files in corpora.items():
            mb = sum(f.stat().st_size for f in files) / 1e6
            for vocab in (8192, 32000):
                out = pathlib.Path(tmp) / "onebit.json"
                ob = [onebit_train(args.onebit, files, vocab, args.threads, out) for _ in range(args.repeat)]
                hf_runs = [hf_train(files, vocab, args.threads) for _ in range(args.repeat)]
                hf = [t for t, _ in hf_runs]
                ours = Tokenizer.from_file(str(out))  # must load in HF
                hf_vocab = set(hf_runs[0][1].get_vocab())
                our_vocab = set(ours.get_vocab())
                text = files[0].read_text(encoding="utf-8")[:200000]
                row = {
                    "corpus": name, "mb": round(mb, 2), "vocab_size": vocab, "threads": args.threads,
                    "onebit_s": round(statistics.median(ob), 3), "hf_tokenizers_s": round(statistics.median(hf), 3),
                    "speedup": round(statistics.median(hf) / statistics.median(ob), 2),
                    "onebit_vocab": ours.get_vocab_size(), "hf_vocab": hf_runs[0][1].get_vocab_size(),
                    "vocab_overlap": round(len(hf_vocab & our_vocab) / len(hf_vocab), 4),
                    "onebit_tokens_on_sample": len(ours.encode(text).ids),
                    "hf_tokens_on_sample": len(hf_runs[0][1].encode(text).ids),
                }
                print(json.dumps(row))
                rows.append(row)
    import tokenizers
    result = {"benchmark": "bpe_train", "command": "python bench/data_bpe_train_bench.py --onebit <onebit>",
              "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "tokenizers_version": tokenizers.__version__, "rows": rows}
    out = root / "bench" / "results" / "bpe_train.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)
    print("wrote", out)


if __name__ == "__main__":
    main()
