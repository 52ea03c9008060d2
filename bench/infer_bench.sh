#!/usr/bin/env bash
# CPU inference speed of the packed runtime (`onebit bench`): pp512 / tg128 on the 125m and 1b presets
# and the shape of microsoft/bitnet-b1.58-2B-4T (bench/configs/bitnet-b1.58-2b-4t-shape.json), with
# random ternary weights generated in memory (`--model random:<config>`; a 2B-parameter f32 model dir
# would be ~10 GB on disk and in memory). Writes bench/results/infer_<model>[_<head>]_<cpu-tag>.json.
# Environment: ONEBIT (binary, default build/src/cli/onebit), THREADS (default "1,2"), REPS (default 2),
# MODELS (default "125m 1b 2b4t"), HEADS (LM head storages, default "model int8").
set -euo pipefail
cd "$(dirname "$0")/.."
ONEBIT=${ONEBIT:-build/src/cli/onebit}
THREADS=${THREADS:-1,2}
REPS=${REPS:-2}
MODELS=${MODELS:-125m 1b 2b4t}
HEADS=${HEADS:-model int8}
cpu_tag=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//' | awk '{print tolower($1) "-" tolower($2)}')
mkdir -p bench/results
for m in $MODELS; do
  case $m in
    2b4t) spec=random:bench/configs/bitnet-b1.58-2b-4t-shape.json ;;
    *) spec=random:$m ;;
  esac
  for head in $HEADS; do
    out=bench/results/infer_${m}_${head}-head_${cpu_tag}.json
    echo "== $m, LM head: $head -> $out"
    "$ONEBIT" bench --model "$spec" -p 512 -n 128 -t "$THREADS" -r "$REPS" --lm-head "$head" --json-out "$out"
  done
done
