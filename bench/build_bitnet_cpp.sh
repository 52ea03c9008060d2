#!/usr/bin/env bash
# Builds bitnet.cpp (microsoft/BitNet with its llama.cpp fork in 3rdparty/llama.cpp) outside the repo,
# for bench/llama_cpp_bench.sh's BITNET_CPP_DIR: the I2_S kernels (x86, TL2 off) and the tools the
# benchmark and the agreement check use (llama-bench, llama-quantize, llama-perplexity, llama-simple,
# llama-cli).
#
#   bench/build_bitnet_cpp.sh SRC_DIR BUILD_DIR
#
# SRC_DIR: microsoft/BitNet with the fork's source in 3rdparty/llama.cpp (a submodule, so fetch it
# too). Built here: BitNet c82b5e6 (2024-10-18) with the commit it pins, Eddie-Wang1120/llama.cpp
# 406a5036 (merge-dev); BitNet's newer commits pin isHuangXin/llama.cpp, which could not be fetched.
# BitNet's CMake requires clang. include/bitnet-lut-kernels.h is generated per model by setup_env.py's
# codegen step for TL1/TL2; an I2_S build compiles its body out (#if GGML_BITNET_X86_TL2) but must find
# the file, so the preset for bitnet_b1_58-3B (what `setup_env.py --use-pretuned` copies) is put there
# when it is missing. The TL2 build (kernels generated for the benchmark models' shapes, in a copy of
# the source) is bench/build_bitnet_cpp_tl2.sh.
set -euo pipefail
SRC=${1:?BitNet source dir}
BUILD=${2:?build dir}
[[ -f $SRC/3rdparty/llama.cpp/CMakeLists.txt ]] || { echo "build_bitnet_cpp: no llama.cpp fork in $SRC/3rdparty/llama.cpp" >&2; exit 1; }
command -v clang++ > /dev/null || { echo "build_bitnet_cpp: bitnet.cpp needs clang++" >&2; exit 1; }
if [[ ! -f $SRC/include/bitnet-lut-kernels.h ]]; then
  cp "$SRC/preset_kernels/bitnet_b1_58-3B/bitnet-lut-kernels-tl2.h" "$SRC/include/bitnet-lut-kernels.h"
  cp "$SRC/preset_kernels/bitnet_b1_58-3B/kernel_config_tl2.ini" "$SRC/include/kernel_config.ini"
fi
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DBITNET_X86_TL2=OFF -DLLAMA_CURL=OFF
cmake --build "$BUILD" -j "$(nproc)" --target llama-bench llama-quantize llama-perplexity llama-simple llama-cli
echo "built $BUILD/bin: $(ls "$BUILD/bin" | tr '\n' ' ')"
