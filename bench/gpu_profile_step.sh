#!/usr/bin/env bash
# Where a CUDA training step's time goes: trains the throughput benchmark's shapes (vocab 32000,
# batch 16 x 1024, ternary + int8 from step 1) for a few steps with ONEBIT_CUDA_PROFILE=1 and prints
# the per-call GPU time, the GPU time spent waiting for the host between calls, and the host time
# inside the calls (kernels/cuda/cuda_ops.cu, Profile). Tells a host-bound step from a GPU-bound one.
#   ONEBIT_BINARY=build-gpu/src/cli/onebit bash bench/gpu_profile_step.sh
#   env: CONFIGS ("125m 0.3b"), STEPS (12), SEGMENTS (0), OUT_DIR (where the profiles are written; default
#        bench/results/profile)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
ONEBIT_BINARY=${ONEBIT_BINARY:-$repo/build-gpu/src/cli/onebit}
CONFIGS=${CONFIGS:-125m 0.3b}
STEPS=${STEPS:-12}
SEGMENTS=${SEGMENTS:-0}
OUT_DIR=${OUT_DIR:-$repo/bench/results/profile}
[[ -x $ONEBIT_BINARY ]] || { echo "gpu_profile_step: no onebit binary at $ONEBIT_BINARY" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$OUT_DIR"
for c in $CONFIGS; do
  case $c in
    125m) preset=125m ;;
    0.3b) preset=0.3b-stack ;;
    1b) preset=1b ;;
    *) echo "gpu_profile_step: unknown config $c" >&2; exit 1 ;;
  esac
  sed -e 's/"vocab_size": *[0-9]*/"vocab_size": 32000/' "$repo/configs/$preset.json" > "$work/$c.json"
  XDG_CACHE_HOME="$work/cache" ONEBIT_CUDA_PROFILE=1 "$ONEBIT_BINARY" train --device cuda \
    --data "$repo/data/tinyshakespeare.txt" --model-config "$work/$c.json" --output-dir "$work/run-$c" --no-resume \
    --batch-size 16 --seq-len 1024 --max-steps "$STEPS" --quant-warmup-steps 0 --quant-anneal-steps 0 \
    --val-fraction 0 --keep-checkpoints 1 --save-every 0 --gradient-checkpointing-segments "$SEGMENTS" \
    > "$work/$c.log" 2> "$OUT_DIR/profile-$c.txt" || { tail -n 5 "$OUT_DIR/profile-$c.txt" >&2; exit 1; }
  echo "== $c: $STEPS steps (median step_ms $(grep -o '"step_ms":[0-9.]*' "$work/run-$c/metrics.jsonl" | cut -d: -f2 | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'))"
  grep -A 60 "ONEBIT_CUDA_PROFILE" "$OUT_DIR/profile-$c.txt"
done
