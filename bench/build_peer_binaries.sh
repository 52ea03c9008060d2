#!/usr/bin/env bash
# Builds the peer engines of bench/llama_cpp_bench.sh, llama.cpp's llama-bench and bitnet.cpp's
# llama-bench + llama-quantize, here, as portable x86-64 binaries for a machine that cannot build them
# (the GPU machine's 16-core Xeon: no network, no package registry), and installs them stripped into
# .peer/ (git-ignored), which the device call carries:
#
#   bench/build_peer_binaries.sh [LLAMA_SRC] [BITNET_SRC]
#     LLAMA_SRC  default /work/ext/llama_cpp_python-0.3.36/vendor/llama.cpp (ggml 0c1e570, the
#                EPYC rows' llama.cpp)
#     BITNET_SRC default /work/ext/bitnet.cpp-src (microsoft/BitNet c82b5e6 with its llama.cpp fork)
#   env: PEER_BUILD (build dirs, default build-peer), PEER_DIR (default .peer), JOBS (default nproc)
#
# Portability: no -march=native. The ISA is named flag by flag: SSE4.2, AVX, AVX2, FMA, F16C, BMI2,
# AVX-512 F/CD/VL/DQ/BW, VBMI, VNNI and BF16, which a Sapphire Rapids Xeon has (and this Zen 5 EPYC,
# so the binaries are tried here). AMX is left out: ggml uses it only for Q4/Q5/Q6/Q8/IQ4_XS weights,
# never for TQ1_0, TQ2_0, I2_S or the F16 head, and code for it could not be run here.
# ggml and llama are static (BUILD_SHARED_LIBS=OFF), so each binary stands alone but for the C/C++
# runtime and OpenMP: llama.cpp (gcc) needs libgomp.so.1, which every gcc install has; bitnet.cpp
# must be built with clang, whose OpenMP runtime libomp.so.5 an Ubuntu image lacks, so it is copied
# into .peer/bitnet.cpp/lib and the two binaries find it through RUNPATH $ORIGIN/../lib (their only
# path entry; no build-tree path). bench/check_peer_binaries.sh checks all of that.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
LLAMA_SRC=$(readlink -f "${1:-/work/ext/llama_cpp_python-0.3.36/vendor/llama.cpp}")
BITNET_SRC=$(readlink -f "${2:-/work/ext/bitnet.cpp-src}")
PEER_BUILD=${PEER_BUILD:-$repo/build-peer}
PEER_DIR=${PEER_DIR:-$repo/.peer}
JOBS=${JOBS:-$(nproc)}
[[ -f $LLAMA_SRC/tools/llama-bench/llama-bench.cpp ]] || { echo "build_peer_binaries: no llama.cpp source in $LLAMA_SRC" >&2; exit 1; }
[[ -f $BITNET_SRC/3rdparty/llama.cpp/CMakeLists.txt ]] || { echo "build_peer_binaries: no bitnet.cpp source in $BITNET_SRC" >&2; exit 1; }
command -v clang++ > /dev/null || { echo "build_peer_binaries: bitnet.cpp needs clang++" >&2; exit 1; }
libomp=$(clang++ -print-file-name=libomp.so.5)
[[ $libomp == /* && -f $libomp ]] || libomp=$(readlink -f "$(clang++ -print-file-name=libomp.so)")
[[ -f $libomp ]] || { echo "build_peer_binaries: clang's libomp.so.5 not found (install libomp-dev)" >&2; exit 1; }

isa=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON
     -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON)
common=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_OPENMP=ON -DLLAMA_CURL=OFF
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DCMAKE_SKIP_BUILD_RPATH=ON)

# The sources are hard-linked copies whose .git names their git dir by its absolute path: a fetched
# submodule's .git file gives it relative to the source, so reached through a symlink (or copied) it
# names a dir that is not there, and llama.cpp's build info makes that missing index a dependency of
# build.ninja, so ninja would re-run CMake forever ("manifest still dirty"). A source without .git
# gets none, and GIT_CEILING_DIRECTORIES keeps git from taking this repo's commit for the peer's.
link_copy() {  # src dst
  local gitdir=""
  [[ -e $1/.git ]] && gitdir=$(git -C "$1" rev-parse --absolute-git-dir 2> /dev/null || true)
  rm -rf "$2" && mkdir -p "$(dirname "$2")"
  cp -al "$1" "$2" 2> /dev/null || cp -a "$1" "$2"
  rm -rf "$2/.git"
  [[ -z $gitdir ]] || echo "gitdir: $gitdir" > "$2/.git"
}
mkdir -p "$PEER_BUILD/src"
export GIT_CEILING_DIRECTORIES=$PEER_BUILD/src

link_copy "$LLAMA_SRC" "$PEER_BUILD/src/llama.cpp"
cmake -S "$PEER_BUILD/src/llama.cpp" -B "$PEER_BUILD/llama.cpp" "${common[@]}" "${isa[@]}" -DGGML_BMI2=ON \
  -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF > "$PEER_BUILD/llama.cpp-configure.log"
cmake --build "$PEER_BUILD/llama.cpp" -j "$JOBS" --target llama-bench > "$PEER_BUILD/llama.cpp-build.log"

# bitnet.cpp: its include/bitnet-lut-kernels.h as bench/build_bitnet_cpp.sh provides it (an I2_S
# build compiles the TL2 body out but must find the file). The fork's GGML_AVX512 adds only
# F/DQ/BW, so VL and CD (and BMI2, which it has no option for) come in CMAKE_*_FLAGS. '\$ORIGIN':
# CMake writes the flag into build.ninja and ninja's shell would expand a bare $ORIGIN.
link_copy "$BITNET_SRC" "$PEER_BUILD/src/bitnet.cpp"
b=$PEER_BUILD/src/bitnet.cpp
if [[ ! -f $b/include/bitnet-lut-kernels.h ]]; then
  cp "$b/preset_kernels/bitnet_b1_58-3B/bitnet-lut-kernels-tl2.h" "$b/include/bitnet-lut-kernels.h"
  cp "$b/preset_kernels/bitnet_b1_58-3B/kernel_config_tl2.ini" "$b/include/kernel_config.ini"
fi
cmake -S "$b" -B "$PEER_BUILD/bitnet.cpp" "${common[@]}" "${isa[@]}" -DBITNET_X86_TL2=OFF \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DLLAMA_BUILD_EXAMPLES=ON \
  "-DCMAKE_C_FLAGS=-mavx512vl -mavx512cd -mbmi2" "-DCMAKE_CXX_FLAGS=-mavx512vl -mavx512cd -mbmi2" \
  '-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath,\$ORIGIN/../lib' > "$PEER_BUILD/bitnet.cpp-configure.log"
cmake --build "$PEER_BUILD/bitnet.cpp" -j "$JOBS" --target llama-bench llama-quantize > "$PEER_BUILD/bitnet.cpp-build.log"

rm -rf "$PEER_DIR/llama.cpp" "$PEER_DIR/bitnet.cpp"
mkdir -p "$PEER_DIR/llama.cpp/bin" "$PEER_DIR/bitnet.cpp/bin" "$PEER_DIR/bitnet.cpp/lib"
strip -o "$PEER_DIR/llama.cpp/bin/llama-bench" "$PEER_BUILD/llama.cpp/bin/llama-bench"
for t in llama-bench llama-quantize; do
  strip -o "$PEER_DIR/bitnet.cpp/bin/$t" "$PEER_BUILD/bitnet.cpp/bin/$t"
done
strip -o "$PEER_DIR/bitnet.cpp/lib/libomp.so.5" "$libomp"
# jq, which bench/llama_cpp_bench.sh needs and the GPU machine's image may lack: this system's, with
# its two libraries (bench/xeon_infer.sh puts them on PATH / LD_LIBRARY_PATH only where jq is missing).
rm -rf "$PEER_DIR/tools" && mkdir -p "$PEER_DIR/tools/bin" "$PEER_DIR/tools/lib"
jq_bin=$(command -v jq) || { echo "build_peer_binaries: no jq here to carry" >&2; exit 1; }
cp "$jq_bin" "$PEER_DIR/tools/bin/jq"
for lib in $(ldd "$jq_bin" | awk '$3 ~ /lib(jq|onig)\.so/ {print $3}'); do
  cp "$(readlink -f "$lib")" "$PEER_DIR/tools/lib/$(basename "$lib")"
done
# What was built from what, for the benchmark's notes.
{
  echo "llama.cpp: $LLAMA_SRC (commit $(git -C "$PEER_BUILD/src/llama.cpp" rev-parse --short HEAD 2> /dev/null ||
    echo unknown)), $(gcc --version | head -n 1)"
  echo "bitnet.cpp: $BITNET_SRC (commit $(git -C "$PEER_BUILD/src/bitnet.cpp" rev-parse --short HEAD 2> /dev/null ||
    echo unknown)), $(clang --version | head -n 1), libomp from $libomp"
  echo "ISA flags: $(grep -m1 -o 'Adding CPU backend variant ggml-cpu: [^ ]*' "$PEER_BUILD/llama.cpp-configure.log" | sed 's/.*: //')"
} > "$PEER_DIR/BUILD_INFO"
"$repo/bench/check_peer_binaries.sh" "$PEER_DIR"
