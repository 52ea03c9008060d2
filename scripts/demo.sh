#!/usr/bin/env bash
# The main job on the bundled default: build onebit, train the tiny ternary model on Shakespeare
# (byte-level, last 10% held out), evaluate it on the held-out part, and print a generated sample.
# Fits in about ten minutes on two cores. Re-running resumes/reuses runs/demo; DEMO_FRESH=1 starts over.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build=${ONEBIT_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DONEBIT_CUDA="${ONEBIT_CUDA:-AUTO}" >/dev/null
cmake --build "$build" -j "$(nproc)" --target onebit
onebit="$build/src/cli/onebit"
run=${DEMO_RUN:-runs/demo}
steps=${DEMO_STEPS:-600}
[ "${DEMO_FRESH:-0}" = 1 ] && rm -rf "$run"

echo "== train: configs/tiny.json on data/tinyshakespeare.txt, $steps steps"
"$onebit" train --data data/tinyshakespeare.txt --model-config tiny --output-dir "$run" \
  --max-steps "$steps" --batch-size 16 --seq-len 256 --save-every 200
echo "== eval on the held-out 10%"
"$onebit" eval --model "$run" --data data/tinyshakespeare.txt --split val
echo "== generate"
"$onebit" generate --model "$run" --prompt "ROMEO:" --max-tokens 400 --temperature 0.8 --top-p 0.95 --seed 7
echo
"$onebit" info "$run"
