#!/usr/bin/env bash
# The CPU-only `onebit` the Xeon calls time (ONEBIT_GPU_CHECK=xeon-infer and xeon-train): Release, no CUDA,
# no tests or benchmarks.
#   bench/build_cpu_onebit.sh BUILD_DIR LOG
# The configure and build output go to LOG; on failure the relevant lines are printed and it exits 1.
set -uo pipefail
build=${1:?usage: build_cpu_onebit.sh BUILD_DIR LOG}
log=${2:?usage: build_cpu_onebit.sh BUILD_DIR LOG}
cmake -S "$(dirname "$0")/.." -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DONEBIT_CUDA=OFF \
  -DONEBIT_BUILD_TESTS=OFF -DONEBIT_BUILD_BENCH=OFF > "$log" 2>&1 || { tail -n 30 "$log"; exit 1; }
cmake --build "$build" -j "$(nproc)" --target onebit >> "$log" 2>&1 ||
  { grep -E "error|FAILED" "$log" | head -n 30; exit 1; }
