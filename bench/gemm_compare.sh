#!/usr/bin/env bash
# Two or more bench_gemm_shapes builds side by side (e.g. main's and a branch's), run alternately so that the
# load of a shared machine falls on all of them alike; prints per shape the median over RUNS of the
# per-CPU-second rate (the kernel's own speed, pool spinning included) and of the wall rate.
#
#   bench/gemm_compare.sh THREADS BINARY... (env: RUNS=5, MIN_SECONDS=0.25, CPUS=all: taskset list)
set -euo pipefail
[[ $# -ge 2 ]] || { echo "usage: gemm_compare.sh THREADS BINARY..." >&2; exit 2; }
threads=$1
shift
RUNS=${RUNS:-5}
MIN_SECONDS=${MIN_SECONDS:-0.25}
CPUS=${CPUS:-0-$(($(nproc) - 1))}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "threads $threads, $RUNS runs, cpus $CPUS, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$RUNS"); do
  i=0
  for b in "$@"; do
    taskset -c "$CPUS" "$b" "$threads" "$MIN_SECONDS" | grep 'GFLOP/s' | grep -v ternary > "$work/$i.$r"
    i=$((i + 1))
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work" "$RUNS" "$@" <<'PY'
import re, statistics, sys
work, runs, bins = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rates = {}  # shape -> binary -> [(cpu, wall)]
for i in range(len(bins)):
    for r in range(1, runs + 1):
        for line in open(f"{work}/{i}.{r}"):
            wall, cpu = map(float, re.findall(r"([\d.]+) GFLOP/s", line))
            rates.setdefault(re.split(r"\s+M=", line)[0].strip(), {}).setdefault(i, []).append((cpu, wall))
for i, b in enumerate(bins):
    print(f"[{i}] {b}")
print(f"{'shape':32s}" + "".join(f"  [{i}] cpu-s   wall" for i in range(len(bins))))
for shape, by_bin in rates.items():
    cells = "".join(f"  {statistics.median(c for c, _ in v):9.1f} {statistics.median(w for _, w in v):6.1f}"
                    for v in (by_bin[i] for i in range(len(bins))))
    print(f"{shape:32s}{cells}")
PY
