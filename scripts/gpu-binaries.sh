#!/usr/bin/env bash
# Build the GPU binaries here (no GPU needed: nvcc compiles sm_90a) and carry them to the device machine, so a
# device call spends its minutes running tests and benchmarks rather than building (~3 min a fresh machine).
#
#   here:   bash scripts/gpu-binaries.sh pack [REV]     # default REV: HEAD
#           -> build-gpubin/bin.tar.xz (git-ignored, ~19 MB): onebit, the CUDA test binaries, bench_cuda_kernels,
#              stripped, built for CMAKE_CUDA_ARCHITECTURES=90a in a worktree at $ONEBIT_GPU_SRC (/tmp/obsrc); and a
#              CPU-only onebit for the device's Xeon (build-xeon/: -march=sapphirerapids, the ISA of its Emerald
#              Rapids, family 6 model 207), which ONEBIT_GPU_CHECK=xeon-train times instead of building one there
#              (the build on all 16 cores cost minutes of the call and left the load high for the 2-thread rows)
#   device: bash scripts/gpu-binaries.sh unpack         # in the checkout; carry .deps and build-gpubin
#           -> build-gpu/... as a build there would place them, and a link $ONEBIT_GPU_SRC -> the checkout
#
# The binaries hold absolute paths of the tree they were built from (the tests' fixtures, the benchmarks' configs):
# the worktree sits at a fixed path and the device links that path to its own checkout, whose files must match REV's
# (send the tree at REV). The device's libraries: CUDA 13 (cuBLASLt) as here, the rest from .deps
# (scripts/fetch-device-deps.sh); run the binaries with LD_LIBRARY_PATH=$PWD/.deps/root/usr/lib/x86_64-linux-gnu.
set -euo pipefail
cd "$(dirname "$0")/.."
src=${ONEBIT_GPU_SRC:-/tmp/obsrc}
# The binaries carried, as build-gpu/ places them; their ninja targets are the file names.
bins=(src/cli/onebit tests/cuda/cuda_kernels_test tests/cuda/cuda_ops_test tests/cuda/cuda_model_test
  tests/cuda/cuda_train_test bench/bench_cuda_kernels)
case "${1:-}" in
  pack)
    rev=$(git rev-parse "${2:-HEAD}")
    if [ -e "$src/.git" ]; then
      git -C "$src" checkout -q --detach "$rev"
    else
      git worktree add -q --detach "$src" "$rev"
    fi
    cmake -S "$src" -B "$src/build-gpu" -G Ninja -DCMAKE_BUILD_TYPE=Release -DONEBIT_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90a > /dev/null
    ninja -C "$src/build-gpu" "${bins[@]##*/}"
    cmake -S "$src" -B "$src/build-xeon" -G Ninja -DCMAKE_BUILD_TYPE=Release -DONEBIT_CUDA=OFF -DONEBIT_NATIVE=OFF \
      -DCMAKE_CXX_FLAGS=-march=sapphirerapids -DONEBIT_BUILD_TESTS=OFF -DONEBIT_BUILD_BENCH=OFF > /dev/null
    ninja -C "$src/build-xeon" onebit
    stage=$(mktemp -d)
    trap 'rm -rf "$stage"' EXIT
    for f in "${bins[@]}"; do
      mkdir -p "$stage/build-gpu/$(dirname "$f")"
      strip -o "$stage/build-gpu/$f" "$src/build-gpu/$f"
    done
    mkdir -p "$stage/build-xeon/src/cli"
    strip -o "$stage/build-xeon/src/cli/onebit" "$src/build-xeon/src/cli/onebit"
    mkdir -p build-gpubin
    tar cJf build-gpubin/bin.tar.xz.tmp -C "$stage" build-gpu build-xeon
    mv build-gpubin/bin.tar.xz.tmp build-gpubin/bin.tar.xz
    echo "build-gpubin/bin.tar.xz: $(du -h build-gpubin/bin.tar.xz | cut -f1), built from $(git log --oneline -1 "$rev")"
    ;;
  unpack)
    [ -f build-gpubin/bin.tar.xz ] || { echo "gpu-binaries: no build-gpubin/bin.tar.xz (carry it)" >&2; exit 1; }
    [ -e "$src" ] && [ ! -L "$src" ] && { echo "gpu-binaries: $src exists and is not a link" >&2; exit 1; }
    ln -sfn "$PWD" "$src"
    tar xJf build-gpubin/bin.tar.xz
    echo "unpacked into build-gpu/ and build-xeon/; $src -> $PWD"
    ;;
  *)
    echo "usage: bash scripts/gpu-binaries.sh pack [REV] | unpack" >&2
    exit 2
    ;;
esac
