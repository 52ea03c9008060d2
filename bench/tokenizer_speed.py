#!/usr/bin/env python3
"""Tokenizer throughput: onebit vs Hugging Face `tokenizers` on the same >= 20 MB text, one run.

    /opt/venv-oracle/bin/python bench/tokenizer_speed.py --bench-binary build/bench_tokenizer

The text is tinyshakespeare + wikitext-2 repeated to --megabytes, cut into documents of about
--doc-kb at line ends. Both sides encode the same document list, single thread and all threads
(HF: `encode_batch` with TOKENIZERS_PARALLELISM=false / RAYON_NUM_THREADS=<cores>, each in its own
process), one untimed pass then the median of --repeats. The ids of both are compared for equality.
Writes bench/results/tokenizer_speed.json and prints a table.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"


def make_docs(megabytes: float, doc_kb: int):
    base = (SHARED / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
    base += (SHARED / "wikitext-2" / "test.txt").read_text(encoding="utf-8")
    base += (SHARED / "wikitext-2" / "valid.txt").read_text(encoding="utf-8")
    target = int(megabytes * 1e6)
    text = (base * (target // len(base.encode()) + 1))
    docs, pos, size = [], 0, 0
    while size < target:
        end = text.find("\n", pos + doc_kb * 1000)
        end = len(text) if end < 0 else end + 1
        d = text[pos:end]
        docs.append(d)
        size += len(d.encode())
        pos = end
    return docs


def hf_worker(tokenizer: str, docs_file: str, repeats: int, ids_out: str):
    from tokenizers import Tokenizer
    import numpy as np
    tok = Tokenizer.from_file(tokenizer)
    docs = Path(docs_file).read_bytes().decode("utf-8").split("\0")
    nbytes = sum(len(d.encode()) for d in docs)
    encs = tok.encode_batch(docs, add_special_tokens=False)
    secs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        encs = tok.encode_batch(docs, add_special_tokens=False)
        secs.append(time.perf_counter() - t0)
    secs.sort()
    med = secs[len(secs) // 2]
    ids = np.concatenate([np.asarray(e.ids, dtype="<i4") for e in encs])
    ids.tofile(ids_out)
    print(json.dumps({"bytes": nbytes, "ids": int(ids.size), "seconds": med, "mb_per_s": nbytes / med / 1e6}))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def run_json(cmd, env=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench-binary", required=True, help="path of the bench_tokenizer executable")
    ap.add_argument("--tokenizers", nargs="+", default=[
        str(SHARED / "tokenizers" / "gpt2" / "tokenizer.json"),
        str(REPO / "tests" / "fixtures" / "tokenizers" / "llama3" / "tokenizer.json"),
        str(REPO / "tests" / "fixtures" / "tokenizers" / "llama-sp" / "tokenizer.json")])
    ap.add_argument("--megabytes", type=float, default=20.0)
    ap.add_argument("--docs-file", help="use these NUL-separated documents instead of building the text "
                                        "(for machines without ../shared/data)")
    ap.add_argument("--doc-kb", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="the 'all threads' setting")
    ap.add_argument("--output", default=str(REPO / "bench" / "results" / "tokenizer_speed.json"))
    ap.add_argument("--hf-worker", nargs=4, metavar=("TOKENIZER", "DOCS", "REPEATS", "IDS_OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.hf_worker:
        t, d, r, o = args.hf_worker
        hf_worker(t, d, int(r), o)
        return

    import numpy as np
    import tokenizers
    if args.docs_file:
        docs = Path(args.docs_file).read_bytes().decode("utf-8").split("\0")
    else:
        docs = make_docs(args.megabytes, args.doc_kb)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        docs_file = Path(tmp) / "docs.txt"
        docs_file.write_bytes("\0".join(docs).encode("utf-8"))
        for tok_path in args.tokenizers:
            name = Path(tok_path).parent.name
            for threads in [1, args.threads]:
                env = dict(os.environ)
                env["TOKENIZERS_PARALLELISM"] = "false" if threads == 1 else "true"
                env["RAYON_NUM_THREADS"] = str(threads)
                env["OMP_NUM_THREADS"] = str(threads)
                hf_ids, ob_ids = Path(tmp) / "hf.bin", Path(tmp) / "ob.bin"
                hf = run_json([sys.executable, __file__, "--bench-binary", args.bench_binary, "--hf-worker", tok_path,
                               str(docs_file), str(args.repeats), str(hf_ids)], env)
                ob = run_json([args.bench_binary, tok_path, str(docs_file), str(threads), str(args.repeats),
                               str(ob_ids)], env)
                same = bool(np.array_equal(np.fromfile(hf_ids, dtype="<i4"), np.fromfile(ob_ids, dtype="<i4")))
                rows.append({"tokenizer": name, "threads": threads, "bytes": ob["bytes"], "docs": ob["docs"],
                             "ids": ob["ids"], "ids_equal": same, "onebit_mb_s": round(ob["mb_per_s"], 2),
                             "hf_mb_s": round(hf["mb_per_s"], 2), "speedup": round(ob["mb_per_s"] / hf["mb_per_s"], 2)})
                r = rows[-1]
                print(f"{name:10s} threads={threads:<3d} onebit {r['onebit_mb_s']:8.2f} MB/s   HF {r['hf_mb_s']:8.2f} MB/s"
                      f"   x{r['speedup']:.2f}   ids equal: {same}", flush=True)
    result = {"benchmark": "tokenizer encode throughput", "command": " ".join(sys.argv),
              "text_mb": round(rows[0]["bytes"] / 1e6, 2) if rows else 0, "docs": len(docs), "doc_kb": args.doc_kb,
              "repeats": args.repeats, "cpu_count": os.cpu_count(), "cpu": cpu_model(),
              "load_average_at_start": load_at_start,
              "hf_tokenizers_version": tokenizers.__version__, "rows": rows}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    tmp_out = Path(args.output + ".tmp")
    tmp_out.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp_out, args.output)
    print("\n| tokenizer | threads | onebit MB/s | HF tokenizers MB/s | onebit / HF | ids equal |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['tokenizer']} | {r['threads']} | {r['onebit_mb_s']:.2f} | {r['hf_mb_s']:.2f} | {r['speedup']:.2f} | {r['ids_equal']} |")
    print(f"wrote {args.output}")
    if not all(r["ids_equal"] for r in rows):
        sys.exit("ids differ between onebit and HF tokenizers")


if __name__ == "__main__":
    main()
