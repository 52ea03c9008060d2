#!/usr/bin/env bash
# Run on a CUDA machine (the lent H200): builds onebit with CUDA enabled for sm_90a, runs every test
# (tests/cuda compares each CUDA kernel with the CPU reference) and the benchmarks (model step,
# checkpoint memory, CUDA kernels), and copies the logs and this run's bench/results JSON (logs and this run's
# bench/results JSON) to $OUT (or ./out) for the caller.
# ONEBIT_GPU_CHECK=cuda builds and runs only the GPU tests (kernels, CudaOps, model, `train --device
# cuda`) and the GPU benchmarks (a shorter call). GPU_BENCH=0 skips the training benchmarks,
# GPU_QUALITY=0 the shakespeare-char quality run, GPU_THROUGHPUT=0 the throughput runs, GPU_SCALING=1
# adds bench/multi_gpu_scaling.sh (1, 2, 4, 8 GPUs, as many as are visible);
# ONEBIT_GPU_CHECK=bench builds onebit and runs only the GPU benchmarks.
# ONEBIT_GPU_CHECK=attention: what a flash-attention change needs in one call: the attention tests, the
# kernel benchmark, and training throughput (no peer) under each ONEBIT_CUDA_ATTENTION generation
# (ATTENTION_VERSIONS, default "auto v2 v3 v4"; CONFIGS, default "125m 0.3b").
# ONEBIT_GPU_CHECK=xeon-infer uses no GPU: bench/xeon_infer.sh, issue 16's CPU inference rows (onebit vs
# llama.cpp and bitnet.cpp) on this machine's Xeon; carry .deps and .peer (bench/build_peer_binaries.sh).
# ONEBIT_GPU_CHECK=xeon-train uses no GPU either: issue 13's CPU training rows on the Xeon, a CPU-only
# `onebit` (the one scripts/gpu-binaries.sh carries, or built here) then bench/train_throughput.sh against the
# PyTorch peer (eager and torch.compile) at 2 threads and every core (THREADS, PEER_RUNS [2], CPU_TAG [intel-xeon]
# as that script takes them; the peer from ../shared/bench or .peer/); the result JSON and the log go to $OUT.
# Each CUDA test binary runs under `timeout ${GPU_TEST_TIMEOUT:-300}` (seconds): a kernel that hangs (an mbarrier
# waiting for bytes that never come) then costs one binary's limit, not the whole device call.
# On an image without a package registry, run scripts/fetch-device-deps.sh first and carry .deps.
set -euo pipefail
cd "$(dirname "$0")/.."
final_out=${OUT:-out}
# Logs and results gather in one folder, packed into $OUT/gpu-check.tgz at exit (the device returns at
# most 8 files); the JSON results are also copied next to it.
out=$(mktemp -d)
pack() { tar czf "$final_out/gpu-check.tgz" -C "$out" . && cp "$out"/*.json "$final_out/" 2>/dev/null; true; }
mkdir -p "$final_out"
trap pack EXIT
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
if [ "${ONEBIT_GPU_CHECK:-all}" = xeon-infer ]; then  # its own logs and results, straight into $OUT
  trap - EXIT
  rm -rf "$out"
  OUT=$final_out exec bash bench/xeon_infer.sh
fi
# The peer trainer for the side-by-side benchmarks: ../shared/bench, or .peer/ where the checkout
# travelled without ../shared (the device copies only the working tree).
peer=../shared/bench/peer_torch_bitnet.py
[ -f "$peer" ] || peer=.peer/peer_torch_bitnet.py
if [ "${ONEBIT_GPU_CHECK:-all}" = xeon-train ]; then
  trap - EXIT
  rm -rf "$out"
  lscpu -e=CPU,CORE,SOCKET,NODE 2>/dev/null | tee "$final_out/xeon-train-cpus.txt" | head -n 3
  # The binary `scripts/gpu-binaries.sh pack` built for this CPU where it was unpacked, else a build here.
  if [ -x build-xeon/src/cli/onebit ] && [ ! -f build-xeon/CMakeCache.txt ]; then
    echo "xeon-train: the carried build-xeon/src/cli/onebit (-march=sapphirerapids)" | tee "$final_out/xeon-train-build.log"
  else
    bash bench/build_cpu_onebit.sh build-xeon "$final_out/xeon-train-build.log" || exit 1
  fi
  # A build runs on every core: let the load settle before the 2-thread rows (a run started at load 6.8 took
  # 25% longer than the same code at rest). At most two minutes.
  for _ in $(seq 1 30); do awk '{exit !($1 < 1.5)}' /proc/loadavg && break; sleep 4; done
  tag=${CPU_TAG:-intel-xeon}
  status=0
  # The JSON goes straight to $OUT, rewritten after each thread count: a call cut short by its time limit
  # still brings back the rows it finished ("complete": false in it says so).
  THREADS="${THREADS:-2 $(nproc)}" PEER_RUNS="${PEER_RUNS:-2}" PYTHON="${PYTHON:-python3}" PEER=$peer CPU_TAG=$tag \
    RESULT_JSON="$final_out/train_throughput_$tag.json" ONEBIT_BINARY=build-xeon/src/cli/onebit \
    bash bench/train_throughput.sh 2>&1 |
    tee "$final_out/xeon-train.log" | grep -vE "it/s|step/s|^\[onebit info\]|[Ww]arn" | tail -n 12 || status=1
  [ -f "$final_out/train_throughput_$tag.json" ] || status=1
  exit "$status"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DONEBIT_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90a 2>&1 | tee "$out/configure.log"
status=0
gpu_tests="cuda_kernels_test cuda_ops_test cuda_model_test cuda_train_test"
# The NCCL data-parallel tests (one GPU: a world of one forced onto NCCL; two GPUs where visible),
# where the configure found NCCL.
grep -q "dist backends: .*NCCL ON" "$out/configure.log" && gpu_tests="$gpu_tests cuda_nccl_test cuda_dist_train_test"
run_gpu_benches() {  # training throughput vs the peer (and the 1b preset with checkpointing), then
                     # (GPU_QUALITY=1) the shakespeare-char quality run
  if [ "${GPU_THROUGHPUT:-1}" = 1 ]; then
    PEER=$peer ONEBIT_BINARY=$build/src/cli/onebit SEGMENTS="0 4" bash bench/gpu_train_throughput.sh 2>&1 |
      tee "$out/gpu_train.log" | grep -vE "^\[onebit info\]|it/s|step/s|tokenize|model saved" | tail -n 40 || status=1
    ONEBIT_BINARY=$build/src/cli/onebit CONFIGS=1b SEGMENTS="8" RESULT=gpu_train_throughput_1b \
      bash bench/gpu_train_throughput.sh 2>&1 | tee "$out/gpu_train_1b.log" | tail -n 3 || status=1
    cp bench/results/gpu_train_throughput*.json "$out/" 2>/dev/null || true
  fi
  if [ "${GPU_SCALING:-0}" = 1 ]; then  # data-parallel scaling over the visible GPUs (several-GPU kinds)
    ONEBIT_BINARY=$build/src/cli/onebit bash bench/multi_gpu_scaling.sh 2>&1 | tee "$out/multi_gpu.log" |
      grep -vE "^\[onebit info\]|it/s|step/s|tokenize|model saved" | tail -n 20 || status=1
    cp bench/results/multi_gpu_scaling.json "$out/" 2>/dev/null || true
  fi
  if [ "${GPU_QUALITY:-1}" = 1 ]; then
    ONEBIT_BINARY=$build/src/cli/onebit bash bench/shakespeare_char.sh 2>&1 | tee "$out/shakespeare.log" |
      grep -E "val_loss|error" | tail -n 8 || status=1
    cp bench/results/shakespeare_char*.json bench/results/shakespeare_char_*_metrics.jsonl "$out/" 2>/dev/null || true
  fi
}
if [ "${ONEBIT_GPU_CHECK:-all}" = bench ]; then  # the GPU benchmarks alone (after a passing check)
  cmake --build "$build" -j "$(nproc)" --target onebit 2>&1 | tee "$out/build.log" | grep -E "error|FAILED" | head || true
  run_gpu_benches
  exit "$status"
fi
if [ "${ONEBIT_GPU_CHECK:-all}" = attention ]; then
  cmake --build "$build" -j "$(nproc)" --target onebit cuda_kernels_test bench_cuda_kernels 2>&1 | tee "$out/build.log" |
    grep -E "error|FAILED" | head -n 30 || true
  timeout "${GPU_TEST_TIMEOUT:-300}" "$build/tests/cuda/cuda_kernels_test" --gtest_filter='*Attention*' \
    > "$out/attention_test.log" 2>&1 || status=$?
  grep -E "^\[  (FAILED|PASSED) |ONEBIT_TEST_SEED|Failure|relative" "$out/attention_test.log" | head -n 30 || true
  "$build/bench/bench_cuda_kernels" > "$out/bench.log" 2>&1 || status=$?
  grep -E "flash attention" "$out/bench.log" | grep -v "fwd+bwd" || true
  cp bench/results/cuda_kernels.json "$out/" 2>/dev/null || true
  for v in ${ATTENTION_VERSIONS:-auto v2 v3 v4}; do
    ONEBIT_CUDA_ATTENTION=$v NO_PEER=1 CONFIGS="${CONFIGS:-125m 0.3b}" RESULT=gpu_train_attention_$v \
      ONEBIT_BINARY=$build/src/cli/onebit bash bench/gpu_train_throughput.sh 2> "$out/train_$v.err" |
      grep " seg " | sed "s/^/$v /" || status=1
  done
  exit "$status"
fi
if [ "${ONEBIT_GPU_CHECK:-all}" = cuda ]; then
  cmake --build "$build" -j "$(nproc)" --target onebit $gpu_tests bench_cuda_kernels 2>&1 | tee "$out/build.log" |
    grep -E "error|FAILED" | head -n 30 || true
  for t in $gpu_tests; do
    rc=0
    timeout "${GPU_TEST_TIMEOUT:-300}" "$build/tests/cuda/$t" > "$out/$t.log" 2>&1 || rc=$?
    if [ "$rc" != 0 ]; then status=$rc; fi
    if [ "$rc" = 124 ]; then echo "== $t: timed out after ${GPU_TEST_TIMEOUT:-300} s (a hang?)"; fi
    echo "== $t"; grep -E "^\[  (FAILED|PASSED|SKIPPED) |ONEBIT_TEST_SEED|Failure|error|steps .*diff|largest" "$out/$t.log" |
      head -n 40 || true
  done
  "$build/bench/bench_cuda_kernels" > "$out/bench.log" 2>&1 || status=$?
  cp bench/results/cuda_kernels.json "$out/" 2>/dev/null || true
  [ "${GPU_BENCH:-1}" = 1 ] && run_gpu_benches
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
[ "${GPU_BENCH:-1}" = 1 ] && run_gpu_benches
exit "$status"
