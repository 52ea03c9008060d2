#!/usr/bin/env bash
# Run on a CUDA machine (the lent H100): builds onebit with the CUDA backend for sm_90, runs every
# test (the CUDA tests compare each kernel with the CPU reference) and the benchmarks, and copies
# logs and bench/results/*.json to $OUT (or ./out) for the caller.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-out}
mkdir -p "$out"
build=${ONEBIT_BUILD_DIR:-build-gpu}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DONEBIT_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 2>&1 | tee "$out/configure.log"
cmake --build "$build" -j "$(nproc)" 2>&1 | tee "$out/build.log" | tail -n 5
(cd "$build" && ctest --output-on-failure -j 4 --timeout 900) 2>&1 | tee "$out/ctest.log" | tail -n 30
# Benchmarks: every bench_* binary, with JSON copied out.
for b in "$build"/bench/bench_*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b" 2>&1 | tee -a "$out/bench.log" | tail -n 20
done
cp bench/results/*.json "$out/" 2>/dev/null || true
