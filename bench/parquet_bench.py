#!/usr/bin/env python3
"""Parquet decode speed: onebit's reader (formats/parquet) vs pyarrow on the same files, one thread.

Generates a large file of code text with tools/make_parquet_fixtures.py --bench-file (snappy, 2000
rows per row group, like the Hub's files; not committed), then, alternating, times
  onebit:  build/bench/bench_parquet_decode FILE content  (open + decode every row group of `content`)
  pyarrow: pq.read_table(FILE, columns=['content'], use_threads=False), pa.set_cpu_count(1)
and prints medians and the ratio. Also times `onebit parquet-to-jsonl --columns content` once (decode
+ JSON + write) for reference. Writes bench/results/parquet_decode.json.

  /work/.venv-torch/bin/python bench/parquet_bench.py --build build [--mb 80] [--repeats 7]
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


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(root / "build"))
    ap.add_argument("--mb", type=float, default=80)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--machine", default="development VM: 2 cores of an AMD EPYC, shared with other builds (loaded)")
    a = ap.parse_args()
    bench_bin = pathlib.Path(a.build) / "bench" / "bench_parquet_decode"
    onebit_bin = pathlib.Path(a.build) / "src" / "cli" / "onebit"
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.parquet")
        subprocess.run([sys.executable, str(root / "tools" / "make_parquet_fixtures.py"), "--bench-file", path,
                        "--mb", str(a.mb)], check=True)
        file_mb = os.path.getsize(path) / 1e6
        ours, theirs = [], []
        value_bytes = rows = 0
        for _ in range(a.repeats):
            out = subprocess.run([str(bench_bin), path, "content", "1"], check=True, capture_output=True, text=True)
            r = json.loads(out.stdout)
            ours.append(r["seconds"][0])
            value_bytes, rows = r["value_bytes"], r["rows"]
            t0 = time.perf_counter()
            t = pq.read_table(path, columns=["content"], use_threads=False)
            theirs.append(time.perf_counter() - t0)
            assert t.num_rows == rows, (t.num_rows, rows)
            del t
        jsonl_s = None
        if onebit_bin.exists():
            t0 = time.perf_counter()
            subprocess.run([str(onebit_bin), "parquet-to-jsonl", path, os.path.join(tmp, "out.jsonl"), "--columns",
                            "content"], check=True, capture_output=True)
            jsonl_s = time.perf_counter() - t0
    mo, mp = statistics.median(ours), statistics.median(theirs)
    res = {
        "date": datetime.date.today().isoformat(),
        "machine": a.machine,
        "cpu": cpu_model(),
        "loadavg_after": os.getloadavg()[0],
        "pyarrow": pa.__version__,
        "file_mb": round(file_mb, 2),
        "content_mb": round(value_bytes / 1e6, 2),
        "rows": rows,
        "repeats": a.repeats,
        "onebit_s": ours,
        "pyarrow_s": theirs,
        "onebit_median_s": mo,
        "pyarrow_median_s": mp,
        "onebit_content_mb_per_s": value_bytes / 1e6 / mo,
        "pyarrow_content_mb_per_s": value_bytes / 1e6 / mp,
        "speedup_onebit_over_pyarrow": mp / mo,
        "onebit_parquet_to_jsonl_s": jsonl_s,
    }
    print(f"file {file_mb:.1f} MB, content {value_bytes / 1e6:.1f} MB, {rows} rows, {a.repeats} runs each, one thread")
    print(f"onebit : median {mo:.3f} s  ({value_bytes / 1e6 / mo:.0f} MB/s of content)")
    print(f"pyarrow: median {mp:.3f} s  ({value_bytes / 1e6 / mp:.0f} MB/s of content)")
    print(f"ratio (pyarrow time / onebit time): {mp / mo:.2f}x")
    if jsonl_s is not None:
        print(f"onebit parquet-to-jsonl --columns content (decode + JSON + write): {jsonl_s:.2f} s")
    out = root / "bench" / "results" / "parquet_decode.json"
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
