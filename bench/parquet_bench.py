#!/usr/bin/env python3
"""Parquet decode speed: onebit's reader (formats/parquet) vs pyarrow on the same files, one thread.

Generates a large file of code text with tools/make_parquet_fixtures.py --bench-file (snappy, 2000
rows per row group, like the Hub's files; not committed) and rewrites the same table with the other
codecs and encodings the reader supports (zstd, gzip, lz4_raw, brotli, data pages v2, the two
DELTA byte-array encodings). Then, for each file, alternating rounds of
  onebit:  build/bench/bench_parquet_decode FILE content 4   (open + decode every row group of
           `content`, four times in one process)
  pyarrow: a fresh Python process timing pq.read_table(FILE, columns=['content'],
           use_threads=False) four times, with pa.set_cpu_count(1)
Both sides are timed the same way: the first read of a process is "cold" (its memory comes fresh
from the kernel, which zeroes every page on first touch), the other three "warm" (the allocator's
pages are reused, as in a stream that reads row group after row group; pyarrow's memory pool keeps
its pages between read_table calls too). Comparing one side's cold read with the other's warm one
is what made the first version of this script unfair (to onebit). Prints medians and ratios per
file and writes bench/results/parquet_decode.json; the headline row is snappy (the Hub's files).
Also times `onebit parquet-to-jsonl --columns content` once (decode + JSON + write) for reference.

  /work/.venv-torch/bin/python bench/parquet_bench.py --build build [--mb 80] [--rounds 7]
"""
import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import pyarrow as pa
import pyarrow.parquet as pq

root = pathlib.Path(__file__).resolve().parent.parent

# The same table written each way (pq.write_table options besides row_group_size).
VARIANTS = {
    "snappy": dict(compression="snappy"),
    "zstd": dict(compression="zstd"),
    "gzip": dict(compression="gzip"),
    "lz4_raw": dict(compression="lz4"),  # pyarrow's "lz4" writes the LZ4_RAW codec
    "brotli": dict(compression="brotli"),
    "snappy_page_v2": dict(compression="snappy", data_page_version="2.0"),
    "delta_length_byte_array": dict(compression="snappy", use_dictionary=False,
                                    column_encoding={"content": "DELTA_LENGTH_BYTE_ARRAY", "lang": "PLAIN"}),
    "delta_byte_array": dict(compression="snappy", use_dictionary=False,
                             column_encoding={"content": "DELTA_BYTE_ARRAY", "lang": "PLAIN"}),
}

# One pyarrow process: four reads, the first cold; prints their seconds and the rows as JSON.
PYARROW_READS = r"""
import json, sys, time
import pyarrow as pa, pyarrow.parquet as pq
pa.set_cpu_count(1)
pa.set_io_thread_count(1)
secs = []
for _ in range(4):
    t0 = time.perf_counter()
    t = pq.read_table(sys.argv[1], columns=["content"], use_threads=False)
    secs.append(time.perf_counter() - t0)
    rows = t.num_rows
    del t
print(json.dumps({"seconds": secs, "rows": rows}))
"""


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def time_file(path, bench_bin, rounds):
    ours_cold, ours_warm, theirs_cold, theirs_warm = [], [], [], []
    value_bytes = rows = 0
    for _ in range(rounds):
        out = subprocess.run([str(bench_bin), path, "content", "4"], check=True, capture_output=True, text=True)
        r = json.loads(out.stdout)
        ours_cold.append(r["seconds"][0])
        ours_warm += r["seconds"][1:]
        value_bytes, rows = r["value_bytes"], r["rows"]
        out = subprocess.run([sys.executable, "-c", PYARROW_READS, path], check=True, capture_output=True, text=True)
        p = json.loads(out.stdout)
        assert p["rows"] == rows, (p["rows"], rows)
        theirs_cold.append(p["seconds"][0])
        theirs_warm += p["seconds"][1:]
    mb = value_bytes / 1e6
    res = {"file_mb": round(os.path.getsize(path) / 1e6, 2), "content_mb": round(mb, 2), "rows": rows,
           "onebit_cold_s": ours_cold, "onebit_warm_s": ours_warm,
           "pyarrow_cold_s": theirs_cold, "pyarrow_warm_s": theirs_warm}
    for side in ("onebit", "pyarrow"):
        for kind in ("cold", "warm"):
            med = statistics.median(res[f"{side}_{kind}_s"])
            res[f"{side}_{kind}_median_s"] = med
            res[f"{side}_{kind}_mb_per_s"] = mb / med
    res["speedup_cold"] = res["pyarrow_cold_median_s"] / res["onebit_cold_median_s"]
    res["speedup_warm"] = res["pyarrow_warm_median_s"] / res["onebit_warm_median_s"]
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(root / "build"))
    ap.add_argument("--mb", type=float, default=80)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--machine", default="development VM: 2 cores of an AMD EPYC, shared with other builds")
    a = ap.parse_args()
    bench_bin = pathlib.Path(a.build) / "bench" / "bench_parquet_decode"
    onebit_bin = pathlib.Path(a.build) / "src" / "cli" / "onebit"
    load_before = os.getloadavg()[0]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, "snappy.parquet")
        subprocess.run([sys.executable, str(root / "tools" / "make_parquet_fixtures.py"), "--bench-file", base,
                        "--mb", str(a.mb)], check=True)
        table = pq.read_table(base)
        for name, options in VARIANTS.items():
            path = os.path.join(tmp, name + ".parquet")
            if name != "snappy":
                pq.write_table(table, path, row_group_size=2000, **options)
            r = results[name] = time_file(path, bench_bin, a.rounds)
            print(f"{name:24s} {r['file_mb']:6.1f} MB file | cold: onebit {r['onebit_cold_mb_per_s']:5.0f} MB/s, "
                  f"pyarrow {r['pyarrow_cold_mb_per_s']:5.0f} MB/s, {r['speedup_cold']:.2f}x | warm: onebit "
                  f"{r['onebit_warm_mb_per_s']:5.0f} MB/s, pyarrow {r['pyarrow_warm_mb_per_s']:5.0f} MB/s, "
                  f"{r['speedup_warm']:.2f}x", flush=True)
        jsonl_s = None
        if onebit_bin.exists():
            t0 = time.perf_counter()
            subprocess.run([str(onebit_bin), "parquet-to-jsonl", base, os.path.join(tmp, "out.jsonl"), "--columns",
                            "content"], check=True, capture_output=True)
            jsonl_s = time.perf_counter() - t0
    res = {
        "date": datetime.date.today().isoformat(),
        "command": "bench/parquet_bench.py " + " ".join(sys.argv[1:]),
        "machine": a.machine,
        "cpu": cpu_model(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg()[0],
        "pyarrow": pa.__version__,
        "rounds": a.rounds,
        "content_mb": results["snappy"]["content_mb"],
        "rows": results["snappy"]["rows"],
        "variants": results,
        "onebit_parquet_to_jsonl_s": jsonl_s,
    }
    print(f"content {res['content_mb']:.1f} MB, {res['rows']} rows; {a.rounds} rounds, one thread; ratios are "
          "pyarrow time / onebit time")
    if jsonl_s is not None:
        print(f"onebit parquet-to-jsonl --columns content (snappy; decode + JSON + write): {jsonl_s:.2f} s")
    out = root / "bench" / "results" / "parquet_decode.json"
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
