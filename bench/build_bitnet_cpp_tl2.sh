#!/usr/bin/env bash
# Builds bitnet.cpp's TL2 (x86 lookup-table) kernels for the weight shapes of the benchmark models,
# for bench/llama_cpp_bench.sh's BITNET_CPP_TL2_DIR (bench/bitnet_tl2_gguf.py makes its model files).
#
#   bench/build_bitnet_cpp_tl2.sh SRC_DIR TL2_SRC_DIR BUILD_DIR [CONFIG.json...]
#
# SRC_DIR: the BitNet source bench/build_bitnet_cpp.sh builds (its llama.cpp fork in 3rdparty/). TL2's
# kernels are generated into the source (include/bitnet-lut-kernels.h, include/kernel_config.ini), one
# per [M, K] weight shape, so the TL2 build gets its own copy, TL2_SRC_DIR (replaced), and SRC_DIR's
# I2_S build is left alone. bench/bitnet_tl2_codegen.py writes the kernels for the shapes of CONFIG
# (default: bench/configs' 125m, 1b and 2B-4T shapes as llama.cpp's bitnet architecture); the model
# files must be converted against the same TL2_SRC_DIR (its kernel_config.ini gives their tiles).
# Built: llama-bench and llama-cli (the TL2 path runs only in a -DBITNET_X86_TL2=ON build; llama-quantize
# cannot make TL2 tensors, the TL2 layout is written by Python). Needs clang and AVX2.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
SRC=${1:?BitNet source dir}
TL2_SRC=${2:?dir for the TL2 copy of the source}
BUILD=${3:?build dir}
shift 3
configs=("$@")
[[ ${#configs[@]} -gt 0 ]] || configs=("$repo/bench/configs/125m-bitnet.json" "$repo/bench/configs/1b-bitnet.json" "$repo/configs/bitnet-2b-gguf.json")
PYTHON=${PYTHON:-python3}
[[ -f $SRC/3rdparty/llama.cpp/CMakeLists.txt && -f $SRC/utils/codegen_tl2.py ]] ||
  { echo "build_bitnet_cpp_tl2: no BitNet source with its llama.cpp fork in $SRC" >&2; exit 1; }
command -v clang++ > /dev/null || { echo "build_bitnet_cpp_tl2: bitnet.cpp needs clang++" >&2; exit 1; }
[[ $(realpath -m "$TL2_SRC") != $(realpath "$SRC") ]] || { echo "build_bitnet_cpp_tl2: TL2_SRC_DIR must not be SRC_DIR" >&2; exit 1; }
rm -rf "$TL2_SRC.tmp"
cp -a "$SRC" "$TL2_SRC.tmp"
rm -rf "$TL2_SRC"
mv "$TL2_SRC.tmp" "$TL2_SRC"
"$PYTHON" "$here/bitnet_tl2_codegen.py" "$TL2_SRC" "${configs[@]}"
cmake -S "$TL2_SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DBITNET_X86_TL2=ON -DLLAMA_CURL=OFF
cmake --build "$BUILD" -j "$(nproc)" --target llama-bench llama-cli
echo "built $BUILD/bin: $(ls "$BUILD/bin" | tr '\n' ' ')"
