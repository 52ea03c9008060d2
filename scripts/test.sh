#!/usr/bin/env bash
# Builds onebit (Release, CPU; CUDA too when nvcc is present), installs the Python test oracles and
# runs the whole ctest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# The Python oracles (numpy, safetensors, tokenizers) the tests compare against; without them they skip.
ONEBIT_TEST_PYTHON=$(bash scripts/install-test-oracles.sh)
export ONEBIT_TEST_PYTHON
build=${ONEBIT_BUILD_DIR:-build}
jobs=$(nproc)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DONEBIT_CUDA="${ONEBIT_CUDA:-AUTO}" >/dev/null
cmake --build "$build" -j "$jobs"
cd "$build"
ctest --output-on-failure -j "$jobs" --timeout 900
