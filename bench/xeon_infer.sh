#!/usr/bin/env bash
# Issue 16's inference rows on the GPU machine's 16-core Xeon, in one device call:
#   ONEBIT_GPU_CHECK=xeon-infer bash scripts/gpu-check.sh      (carry .deps and .peer)
# gpu-check.sh points the build at the carried Debian packages (.deps) and hands over to this script,
# which uses no GPU: it checks the carried peer binaries (bench/build_peer_binaries.sh made them on the
# dev machine; the Xeon has no network to build them), builds only the `onebit` CLI (CPU build, native
# for this CPU), then runs bench/llama_cpp_bench.sh: onebit vs llama.cpp TQ2_0 and TQ1_0 vs bitnet.cpp
# I2_S, pp512 and tg128, at 1, 2 and all threads, with the memory-bandwidth fraction of each onebit
# decode row. Results and logs go to $OUT as they are made: the result JSON is rewritten after every
# engine's run and the log is written line by line, so a call cut off returns what it measured.
#
# env (defaults in brackets): MODELS ["125m 2b4t 1b": the small one first, then the issue's 2B-4T
# anchor, 1b last], THREADS ["1 2 <nproc>"], ROUNDS [1: the machine is the call's alone, so one run
# per engine, each after its own warm-up], XEON_PHASES ["main bf16 tq1", below], XEON_DEADLINE_S
# [540], CPU_TAG [intel-xeon], RESULT_SUFFIX [""], PEER_DIR [.peer], ONEBIT_BUILD_DIR [build-xeon],
# WORK [/tmp/onebit-xeon-infer]; MAIN_MODELS, BF16_MODELS, TQ1_MODELS [MODELS] give one phase other models
# (the GGUF files are exported by phase main: TQ1_MODELS must be among its models); MAIN_HEADS ["int8"]:
# onebit's LM heads in phase main ("int8 bf16" measures both there, beside the peers, with no bf16
# phase); MAIN_BITNET [1]: 0 leaves bitnet.cpp's I2_S out of phase main (on the 2B-4T shape it takes
# about 2.5 of the call's minutes, so that shape's TQ2_0, TQ1_0 and both heads fit one call without it).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
exec > >(tee -a "$OUT/xeon-infer.log") 2>&1
PEER_DIR=${PEER_DIR:-.peer}
build=${ONEBIT_BUILD_DIR:-build-xeon}
WORK=${WORK:-/tmp/onebit-xeon-infer}
mkdir -p "$WORK"
since() { echo "[$(date -u +%T), ${SECONDS}s] $*"; }
# The llama-bench / quantize / export logs and onebit's own JSON (read bandwidth per thread count)
# travel back too, at the end or when cut off (a SIGKILL at the hard limit skips this; the main log
# and the result JSON are already in $OUT).
pack_logs() { (cd "$WORK" && shopt -s nullglob && tar czf "$OUT/xeon-infer-logs.tgz" -- *.log *.json) 2> /dev/null || true; }
trap pack_logs EXIT

since "xeon-infer: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) CPUs, $(awk '/^MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo) GiB"
flags=" $(grep -m1 '^flags' /proc/cpuinfo | sed 's/.*: //') "
echo "ISA: $(tr ' ' '\n' <<< "$flags" | grep -E '^(avx2|avx512.*|amx.*|avx_vnni)$' | tr '\n' ' ')"
# Where the peers cannot run (a CPU without their ISA, a library missing), onebit's rows are still
# measured: the call is not wasted, and the log says why the peers' rows are missing.
peers_ok=1
for f in avx2 fma f16c bmi2 avx512f avx512cd avx512vl avx512dq avx512bw avx512vbmi avx512_vnni avx512_bf16; do
  [[ $flags == *" $f "* ]] || { echo "xeon-infer: this CPU lacks $f, which the carried llama.cpp/bitnet.cpp binaries use: onebit's rows only"; peers_ok=0; }
done
cat "$PEER_DIR/BUILD_INFO" 2> /dev/null || true
if ! jq -n 1 > /dev/null 2>&1; then  # the image may lack it: the one build_peer_binaries.sh carried
  export PATH=$PWD/$PEER_DIR/tools/bin:$PATH
  export LD_LIBRARY_PATH=$PWD/$PEER_DIR/tools/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
bash bench/check_peer_binaries.sh "$PEER_DIR" || { echo "xeon-infer: the peer binaries fail their check: onebit's rows only"; peers_ok=0; }

since "building onebit ($build, CPU only)"
bash bench/build_cpu_onebit.sh "$build" "$OUT/xeon-build.log" || exit 1
since "built $build/src/cli/onebit"

# The work in the order it matters, each phase adding its rows to the same result
# (llama_cpp_<CPU_TAG>.json in $OUT): "main" = onebit with its int8 head, bitnet.cpp I2_S and
# llama.cpp TQ2_0 (the issue's comparison; the TQ1_0 files are exported with the others, in
# parallel), "bf16" = onebit with a 16-bit head (as many head bytes as the peers' f16), "tq1" =
# llama.cpp TQ1_0. All three do not fit one 9-minute call with the build (about 11 minutes, from EPYC
# timings): XEON_PHASES picks (a second call: XEON_PHASES="tq1" RESULT_SUFFIX=-tq1). Everything stops
# at XEON_DEADLINE_S seconds after this script started (default 540, a 9-minute call under the
# device's 10-minute limit), so the logs are packed and the call ends by itself.
deadline=${XEON_DEADLINE_S:-540}
status=0
phase() {  # name, then the phase's settings for bench/llama_cpp_bench.sh
  local name=$1 left=$((deadline - SECONDS)) rc=0
  shift
  ((left > 20)) || { since "no time left for phase $name"; return 0; }
  since "phase $name ($left s left)"
  local models_var=${name^^}_MODELS  # MAIN_MODELS, BF16_MODELS, TQ1_MODELS: that phase's models
  env ONEBIT_BINARY="$build/src/cli/onebit" LLAMA_CPP_DIR="$PEER_DIR/llama.cpp" \
    MODELS="${!models_var:-${MODELS:-125m 2b4t 1b}}" \
    THREADS="${THREADS:-1 2 $(nproc)}" ROUNDS="${ROUNDS:-1}" CPU_TAG="${CPU_TAG:-intel-xeon}" \
    RESULT_SUFFIX="${RESULT_SUFFIX:-}" RESULT_DIR="$OUT" WORK="$WORK" KEEP_SAMPLES=$((phases_run > 0)) "$@" \
    timeout "$left" bash bench/llama_cpp_bench.sh || rc=$?
  phases_run=$((phases_run + 1))
  if ((rc == 124)); then since "phase $name stopped at the deadline (${deadline}s): the result holds the runs that finished"
  elif ((rc != 0)); then since "phase $name failed ($rc)"; status=1
  fi
}
phases_run=0
for p in ${XEON_PHASES:-main bf16 tq1}; do
  case $p in
    main) if ((peers_ok)); then
            bitnet=$PEER_DIR/bitnet.cpp
            [[ ${MAIN_BITNET:-1} == 1 ]] || bitnet=
            phase main TYPES=tq2_0 EXPORT_TYPES="tq2_0 tq1_0" ONEBIT_LM_HEAD="${MAIN_HEADS:-int8}" BITNET_CPP_DIR="$bitnet"
          else
            phase main TYPES= EXPORT_TYPES= ONEBIT_LM_HEAD="${MAIN_HEADS:-int8}" BITNET_CPP_DIR=
          fi ;;
    bf16) phase bf16 TYPES= EXPORT_TYPES= ONEBIT_LM_HEAD=bf16 BITNET_CPP_DIR= ;;
    tq1) ((peers_ok)) && phase tq1 TYPES=tq1_0 ONEBIT_LM_HEAD= BITNET_CPP_DIR= ;;
    *) echo "xeon-infer: unknown phase '$p' in XEON_PHASES (main, bf16, tq1)" >&2; exit 1 ;;
  esac
done
since "xeon-infer done"
exit "$status"
