#!/usr/bin/env bash
# CPU training throughput: onebit vs the PyTorch eager BitNet peer (../shared/bench/peer_torch_bitnet.py)
# on the same model (configs/25m.json = the peer's 25M: vocab 32000, d 512, 6 layers, 8 heads, ff 1408,
# untied head), batch 8 x seq 256, the same number of threads, both in hard-quantized (QAT) mode.
#
#   bench/train_throughput.sh            (env: ONEBIT_BINARY, PYTHON, PEER, THREADS, STEPS, WARMUP,
#                                              PEER_RUNS, PEER_STEPS)
# onebit: median time per step from metrics.jsonl, excluding the first WARMUP steps.
# torch:  the peer times PEER_STEPS steps after its own warm-up; it is run PEER_RUNS times and the
#         median of the runs is reported.
# Writes bench/results/train_throughput.json and prints a table.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
PYTHON=${PYTHON:-/opt/venv-torch/bin/python}
PEER=${PEER:-$repo/../shared/bench/peer_torch_bitnet.py}
THREADS=${THREADS:-2}
STEPS=${STEPS:-6}
WARMUP=${WARMUP:-2}
PEER_RUNS=${PEER_RUNS:-3}
PEER_STEPS=${PEER_STEPS:-3}
BATCH=8
SEQ=256
if [[ -z "${ONEBIT_BINARY:-}" ]]; then
  for b in "$repo/build/src/cli/onebit" "$repo/build/onebit"; do [[ -x $b ]] && ONEBIT_BINARY=$b && break; done
fi
[[ -x "${ONEBIT_BINARY:-}" ]] || { echo "train_throughput: set ONEBIT_BINARY to the onebit executable (not found under build/)" >&2; exit 1; }
[[ -x "$PYTHON" ]] || { echo "train_throughput: PYTHON=$PYTHON is not an interpreter with torch (set PYTHON)" >&2; exit 1; }
[[ -f "$PEER" ]] || { echo "train_throughput: peer script $PEER not found (expected ../shared/bench/ next to the repo; set PEER)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$repo/bench/results"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)  # other work on the machine skews both numbers

echo "== onebit: 25m, batch $BATCH x seq $SEQ, $THREADS threads, $((WARMUP + STEPS)) steps" >&2
# The byte tokenizer keeps ids < 257; the step's cost does not depend on which ids appear.
XDG_CACHE_HOME="$work/cache" "$ONEBIT_BINARY" train --data "$repo/data/tinyshakespeare.txt" \
  --model-config "$repo/configs/25m.json" --output-dir "$work/onebit" --no-resume \
  --batch-size $BATCH --seq-len $SEQ --max-steps $((WARMUP + STEPS)) --threads "$THREADS" \
  --quant-warmup-steps 0 --quant-anneal-steps 0 --val-fraction 0 --keep-checkpoints 1 >&2

echo "== torch eager peer: $PEER_RUNS runs of $PEER_STEPS timed steps" >&2
for r in $(seq 1 "$PEER_RUNS"); do
  "$PYTHON" "$PEER" --device cpu --config 25M --batch $BATCH --seq $SEQ --threads "$THREADS" \
    --steps "$PEER_STEPS" --no-compile --no-unquantized --json-out "$work/peer-$r.json" >&2
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
"$PYTHON" - "$work" "$WARMUP" "$repo/bench/results/train_throughput.json" "$THREADS" "$cpu" "$ONEBIT_BINARY" \
  "$load_before" "$load_after" <<'PY'
import glob, json, statistics, sys
work, warmup, out, threads, cpu, binary = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
load_before, load_after = sys.argv[7], sys.argv[8]
steps = [json.loads(l) for l in open(f"{work}/onebit/metrics.jsonl") if '"loss"' in l]
timed = [s for s in steps if s["step"] > warmup]
ob_ms = statistics.median(s["step_ms"] for s in timed)
tokens = timed[0]["tokens"] // timed[0]["step"]
peer = [json.load(open(p))[0] for p in sorted(glob.glob(f"{work}/peer-*.json"))]
pt_ms = statistics.median(p["ms_step"] for p in peer)
res = {
    "benchmark": "train_throughput", "config": "25m (vocab 32000, d 512, 6 layers, 8 heads, ff 1408, untied head)",
    "batch": 8, "seq": 256, "threads": threads, "cpu": cpu, "loadavg_before": load_before, "loadavg_after": load_after, "quantization": "hard ternary weights + int8 activations (QAT)",
    "onebit": {"binary": binary, "ms_step_median": ob_ms, "tok_s": tokens / ob_ms * 1e3, "steps_timed": len(timed),
               "warmup_steps_excluded": warmup, "ms_steps": [round(s["step_ms"], 1) for s in steps],
               "peak_rss_mb": max(s["peak_rss_mb"] for s in steps)},
    "torch_eager": {"ms_step_median_of_runs": pt_ms, "tok_s": tokens / pt_ms * 1e3, "runs": peer},
}
res["speedup_onebit_over_torch"] = pt_ms / ob_ms
json.dump(res, open(out, "w"), indent=1)
print(f"{'':14}{'ms/step':>10}{'tokens/s':>10}")
print(f"{'onebit':14}{ob_ms:10.0f}{res['onebit']['tok_s']:10.0f}   (median of {len(timed)} steps after {warmup} warm-up)")
print(f"{'torch eager':14}{pt_ms:10.0f}{res['torch_eager']['tok_s']:10.0f}   (median of {len(peer)} runs)")
print(f"speedup onebit / torch: {res['speedup_onebit_over_torch']:.2f}x   ({threads} threads, {cpu}; load avg {load_before} -> {load_after})")
print(f"wrote {out}")
PY
