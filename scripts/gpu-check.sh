#!/usr/bin/env bash
# Run on a CUDA machine (the lent H200): builds onebit with CUDA enabled for sm_90, runs every test
# (tests/cuda compares each CUDA kernel with the CPU reference) and the benchmarks (model step,
# checkpoint memory, CUDA kernels), and copies at most 8 files (logs and this run's
# bench/results JSON) to $OUT (or ./out) for the caller.
# ONEBIT_GPU_CHECK=cuda builds and runs only the CUDA kernel tests and benchmark (a shorter call).
# On an image without a package registry, run scripts/fetch-device-deps.sh first and carry .deps.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-out}
mkdir -p "$out"
build=${ONEBIT_BUILD_DIR:-build-gpu}
# Packages carried by scripts/fetch-device-deps.sh for an image without a registry.
if [ -d .deps/root/usr ]; then
  deps=$PWD/.deps/root/usr
  libdir=$deps/lib/x86_64-linux-gnu
  sed -i "s|^prefix=.*|prefix=$deps|" "$libdir"/pkgconfig/*.pc
  export PKG_CONFIG_PATH=$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
  export CMAKE_PREFIX_PATH=$deps${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
  export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DONEBIT_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 2>&1 | tee "$out/configure.log"
status=0
if [ "${ONEBIT_GPU_CHECK:-all}" = cuda ]; then
  cmake --build "$build" -j "$(nproc)" --target cuda_kernels_test bench_cuda_kernels 2>&1 | tee "$out/build.log" |
    tail -n 5
  "$build/tests/cuda/cuda_kernels_test" > "$out/ctest.log" 2>&1 || status=$?
  grep -E "^\[  (FAILED|PASSED|SKIPPED) |ONEBIT_TEST_SEED|Failure|error" "$out/ctest.log" | head -n 60 || true
  "$build/bench/bench_cuda_kernels" 2>&1 | tee "$out/bench.log" || status=$?
  cp bench/results/cuda_kernels.json "$out/" 2>/dev/null || true
  exit "$status"
fi
cmake --build "$build" -j "$(nproc)" 2>&1 | tee "$out/build.log" | tail -n 5
# Tests: the CPU suite plus every CUDA test (CUDA cases skip themselves where no GPU is visible).
(cd "$build" && ctest --output-on-failure -j 8 --timeout 900) > "$out/ctest.log" 2>&1 || status=$?
tail -n 30 "$out/ctest.log"
# Model benchmarks (the training step and checkpoint memory), on all cores of the machine.
threads=$(nproc)
{
  echo "== bench_model_step 25m 8 256 $threads"; "$build/bench/bench_model_step" 25m 8 256 "$threads" 3
  echo "== bench_checkpoint_memory"; "$build/bench/bench_checkpoint_memory"
  echo "== bench_cuda_kernels"; "$build/bench/bench_cuda_kernels"
} 2>&1 | tee "$out/bench.log" || status=$?
for f in model_step checkpoint_memory cuda_kernels; do cp "bench/results/$f.json" "$out/" 2>/dev/null || true; done
exit "$status"
