#!/usr/bin/env python3
"""Writes the Parquet reader's fixtures with pyarrow: tests/fixtures/parquet/<name>.parquet and
<name>.expected.jsonl (every column; what json.dumps(row, ensure_ascii=False) writes for each row),
plus fixtures.json saying how each was written. They cover what ../shared/data/hub-fixture lacks:
every codec, delta encodings, BYTE_STREAM_SPLIT, nulls, data pages v1 and v2, several row groups,
many small pages, one large page and a dictionary that falls back to PLAIN.

Deterministic (fixed seed); run it from the repository root:
    /work/.venv-torch/bin/python tools/make_parquet_fixtures.py
The benchmark uses --bench-file PATH --mb N to make a large file of code text (not committed).
pyarrow is needed only here and in the benchmark, never by ctest.
"""
import argparse
import glob
import json
import os
import random

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "parquet")


def corpus():
    """Code documents from the hub fixture (real source files), the raw material for content."""
    docs = []
    for path in sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/hub-fixture/data/*/*.expected.jsonl"))):
        with open(path, encoding="utf-8") as f:
            docs += [json.loads(line)["content"] for line in f]
    assert docs, "tests/fixtures/hub-fixture is missing"
    return docs


def jsonable(v):
    return v.decode("utf-8") if isinstance(v, bytes) else v


def write(name, table, manifest, **options):
    path = os.path.join(OUT, name + ".parquet")
    pq.write_table(table, path, **options)
    back = pq.read_table(path)
    assert back.equals(table), name
    with open(os.path.join(OUT, name + ".expected.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for row in back.to_pylist():
            f.write(json.dumps({k: jsonable(v) for k, v in row.items()}, ensure_ascii=False) + "\n")
    manifest.append({"path": name + ".parquet", "rows": table.num_rows, "options": repr(options),
                     "bytes": os.path.getsize(path)})


def code_table(rng, docs, n, nulls=0.0):
    langs = ["python", "c", "markdown", "rust", "go"]
    content = [None if rng.random() < nulls else docs[rng.randrange(len(docs))][: rng.randrange(1, 3000)] for _ in range(n)]
    return pa.table({
        "content": pa.array(content, pa.string()),
        "lang": pa.array([rng.choice(langs) for _ in range(n)], pa.string()),
        "size": pa.array([len(c or "") for c in content], pa.int64()),
    })


def types_table(rng, n):
    """Every physical type, each column nullable with some nulls; strings with escapes and non-ASCII."""
    special = ["", "plain", "quote \" backslash \\ slash /", "ctl \x00\x01\x08\x0c\x1f\x7f tab\t cr\r nl\n",
               "ünïcødé ✓ 𝄞 emoji 😀", "\u2028\u2029 line separators", "日本語のテキスト"]
    def maybe(v):
        return None if rng.random() < 0.2 else v
    floats = [0.0, -0.0, 1.0, 0.1, 1e-5, 123456.789, 1e16, 2.5e-300, -7.25, 3.4e38, 1e22, 100.0]
    return pa.table({
        "flag": pa.array([maybe(rng.random() < 0.5) for _ in range(n)], pa.bool_()),
        "i32": pa.array([maybe(rng.randint(-2**31, 2**31 - 1)) for _ in range(n)], pa.int32()),
        "i64": pa.array([maybe(rng.randint(-2**63, 2**63 - 1)) for _ in range(n)], pa.int64()),
        "f32": pa.array([maybe(rng.choice(floats[:9])) for _ in range(n)], pa.float32()),
        "f64": pa.array([maybe(rng.choice(floats) * rng.choice([1, -1, 0.5, 3])) for _ in range(n)], pa.float64()),
        "text": pa.array([maybe(rng.choice(special)) for _ in range(n)], pa.string()),
        "fixed": pa.array([maybe(bytes(rng.choice("abcdef") * 4, "ascii")) for _ in range(n)], pa.binary(4)),
        "required": pa.array([f"row {i}" for i in range(n)], pa.string()).cast(pa.string()),
    }, schema=pa.schema([
        pa.field("flag", pa.bool_()), pa.field("i32", pa.int32()), pa.field("i64", pa.int64()),
        pa.field("f32", pa.float32()), pa.field("f64", pa.float64()), pa.field("text", pa.string()),
        pa.field("fixed", pa.binary(4)), pa.field("required", pa.string(), nullable=False)]))


def delta_table(rng, docs, n):
    paths = sorted(f"src/module_{rng.randrange(50)}/file_{rng.randrange(1000)}.py" for _ in range(n))
    ints = [rng.choice([-2**63, 2**63 - 1, 0, rng.randint(-1000, 1000)]) for _ in range(n)]
    return pa.table({
        "content": pa.array([docs[rng.randrange(len(docs))][: rng.randrange(0, 2000)] for _ in range(n)], pa.string()),
        "path": pa.array(paths, pa.string()),
        "id64": pa.array(ints, pa.int64()),
        "id32": pa.array([i * 7 - 300 + rng.randrange(3) for i in range(n)], pa.int32()),
        "maybe": pa.array([None if rng.random() < 0.3 else rng.randrange(10**6) for _ in range(n)], pa.int64()),
    })


def make_fixtures():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(15)
    docs = corpus()
    manifest = []
    base = code_table(rng, docs, 40)
    for codec in ["none", "snappy", "gzip", "zstd", "lz4", "brotli"]:
        write(f"codec_{codec}", base, manifest, compression=codec)
    types = types_table(rng, 300)
    write("types_v1", types, manifest, compression="snappy", data_page_version="1.0")
    write("types_v2", types, manifest, compression="zstd", data_page_version="2.0")
    write("types_plain_v2_uncompressed", types, manifest, compression="none", use_dictionary=False, data_page_version="2.0")
    write("byte_stream_split", types.select(["f32", "f64", "i32", "i64"]), manifest, use_dictionary=False,
          use_byte_stream_split=["f32", "f64"], compression="none")
    nulls = code_table(rng, docs, 60, nulls=0.35).append_column("all_null", pa.array([None] * 60, pa.string()))
    write("nulls_v1", nulls, manifest, compression="snappy", data_page_version="1.0")
    write("nulls_v2", nulls, manifest, compression="gzip", data_page_version="2.0")
    delta = delta_table(rng, docs, 700)
    enc = {"content": "DELTA_LENGTH_BYTE_ARRAY", "path": "DELTA_BYTE_ARRAY", "id64": "DELTA_BINARY_PACKED",
           "id32": "DELTA_BINARY_PACKED", "maybe": "DELTA_BINARY_PACKED"}
    write("delta_v1", delta, manifest, use_dictionary=False, column_encoding=enc, compression="zstd", data_page_version="1.0")
    write("delta_v2", delta, manifest, use_dictionary=False, column_encoding=enc, compression="snappy",
          data_page_version="2.0", data_page_size=4096)
    write("row_groups", code_table(rng, docs, 50, nulls=0.1), manifest, row_group_size=7, compression="snappy")
    write("many_pages", code_table(rng, docs, 120, nulls=0.1), manifest, data_page_size=512, write_batch_size=4,
          compression="zstd")
    # One data page of about 3 MB: long documents, compressed well because they repeat.
    big = [("\n".join(docs[(i * 7 + k) % len(docs)] for k in range(40)) * 3)[:2_000_000] for i in range(3)]
    write("large_page", pa.table({"content": pa.array(big, pa.string())}), manifest, data_page_size=1 << 28,
          use_dictionary=False, compression="zstd")
    # The dictionary outgrows its limit part-way through the chunk: dictionary pages, then PLAIN ones.
    write("dict_fallback", code_table(rng, docs, 200), manifest, dictionary_pagesize_limit=2048, compression="snappy")
    with open(os.path.join(OUT, "fixtures.json"), "w") as f:
        json.dump({"pyarrow": pa.__version__, "files": manifest}, f, indent=1)
        f.write("\n")
    print(f"wrote {len(manifest)} fixtures to {OUT} (pyarrow {pa.__version__})")


def make_bench_file(path, mb, seed=1):
    """About `mb` MB of code text in `content` (real documents cut at random points, so it does not
    compress better than real code), snappy like the Hub's files, 2000 rows per row group."""
    rng = random.Random(seed)
    docs = corpus()
    rows, total = [], 0
    while total < mb * 1_000_000:
        d = docs[rng.randrange(len(docs))]
        start = rng.randrange(len(d))
        text = d[start:] + d[:start]
        rows.append(text)
        total += len(text.encode("utf-8"))
    table = pa.table({"content": pa.array(rows, pa.string()),
                      "lang": pa.array([rng.choice(["python", "c"]) for _ in rows], pa.string())})
    pq.write_table(table, path, compression="snappy", row_group_size=2000)
    return total


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench-file", help="write one large benchmark file here instead of the fixtures")
    ap.add_argument("--mb", type=float, default=80, help="content size of the benchmark file")
    a = ap.parse_args()
    if a.bench_file:
        n = make_bench_file(a.bench_file, a.mb)
        print(f"wrote {a.bench_file}: {n / 1e6:.1f} MB of content")
    else:
        make_fixtures()
