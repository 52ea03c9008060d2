#!/usr/bin/env bash
# CPU training throughput: onebit vs the PyTorch BitNet peer (../shared/bench/peer_torch_bitnet.py), eager
# and torch.compile, on the same model (configs/25m.json = the peer's 25M: vocab 32000, d 512, 6 layers,
# 8 heads, ff 1408, untied head), batch 8 x seq 256, hard-quantized (QAT) on both sides, AdamW included,
# at each thread count of THREADS (default: 2 and all cores), in one run.
#
#   bench/train_throughput.sh     (env: ONEBIT_BINARY, PYTHON, PEER, THREADS, STEPS, WARMUP, PEER_RUNS,
#                                       PEER_STEPS, CPU_TAG, RESULT_JSON)
# onebit: median time per step from metrics.jsonl, excluding the first WARMUP steps.
# torch:  each peer run times PEER_STEPS steps after its own warm-up, eager then compiled (compilation is
#         not timed); it is run PEER_RUNS times and the median of the runs is reported for each mode, with
#         onebit's ratio to that median and to the fastest run.
# Writes RESULT_JSON (default bench/results/train_throughput_<CPU_TAG>.json; CPU_TAG defaults to one made
# from the CPU model name) and prints a table with the ratios.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
if [[ -z "${PYTHON:-}" ]]; then  # the first interpreter that has torch
  for p in /opt/venv-torch/bin/python "$repo/../.venv-torch/bin/python" python3; do
    p=$(command -v "$p" || true)
    [[ -n $p ]] && "$p" -c 'import torch' 2>/dev/null && PYTHON=$p && break
  done
fi
PYTHON=$(command -v "${PYTHON:-}" || true)  # a bare name such as PYTHON=python3 works too
PEER=${PEER:-$repo/../shared/bench/peer_torch_bitnet.py}
THREADS=${THREADS:-$(printf '%s\n' 2 "$(nproc)" | sort -nu | tr '\n' ' ')}
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
[[ -x "${PYTHON:-}" ]] || { echo "train_throughput: no Python with torch found (set PYTHON)" >&2; exit 1; }
[[ -f "$PEER" ]] || { echo "train_throughput: peer script $PEER not found (expected ../shared/bench/ next to the repo; set PEER)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$repo/bench/results"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
cpu_tag=${CPU_TAG:-$(echo "$cpu" | tr 'A-Z' 'a-z' | sed -E 's/\((r|tm)\)//g; s/(processor|cpu|[0-9]+-core|@.*)//g; s/[^a-z0-9]+/-/g; s/^-+|-+$//g')}
out=${RESULT_JSON:-$repo/bench/results/train_throughput_${cpu_tag}.json}

# The summary (JSON and table) is rewritten after each thread count, so a run cut short (a device call's
# time limit) keeps the rows it finished; "complete" says whether every count of THREADS is in it.
summarize() {  # $1: the thread counts done so far
"$PYTHON" - "$work" "$WARMUP" "$out" "$cpu" "$ONEBIT_BINARY" "$1" "$THREADS" <<'PY'
import datetime, glob, json, statistics, sys
work, warmup, out, cpu, binary, threads, planned = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
res = {"benchmark": "train_throughput", "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
       "cpu": cpu, "config": "25m (vocab 32000, d 512, 6 layers, 8 heads, ff 1408, untied head)", "batch": 8, "seq": 256,
       "quantization": "hard ternary weights + int8 activations (QAT), AdamW step included", "onebit_binary": binary,
       "threads_planned": [int(t) for t in planned.split()],
       "complete": threads.split() == planned.split(), "by_threads": []}
for t in map(int, threads.split()):
    steps = [json.loads(l) for l in open(f"{work}/onebit-{t}/metrics.jsonl") if '"loss"' in l]
    timed = [s for s in steps if s["step"] > warmup]
    ob_ms = statistics.median(s["step_ms"] for s in timed)
    tokens = timed[0]["tokens"] // timed[0]["step"]
    runs = [json.load(open(p)) for p in sorted(glob.glob(f"{work}/peer-{t}-*.json"))]
    load = open(f"{work}/load-{t}").read().split("\n")
    r = {"threads": t, "loadavg_before": load[0], "loadavg_after": load[1],
         "onebit": {"ms_step_median": ob_ms, "tok_s": tokens / ob_ms * 1e3, "steps_timed": len(timed),
                    "warmup_steps_excluded": warmup, "ms_steps": [round(s["step_ms"], 1) for s in steps],
                    "peak_rss_mb": max(s["peak_rss_mb"] for s in steps)}}
    for key, compiled in (("torch_eager", False), ("torch_compile", True)):
        mine = [row for run in runs for row in run if row["compiled"] == compiled]
        if not mine:  # e.g. torch.compile failed (the peer prints the error and goes on)
            r[key] = None
            continue
        ms = statistics.median(row["ms_step"] for row in mine)
        fastest = min(row["ms_step"] for row in mine)
        r[key] = {"ms_step_median_of_runs": ms, "ms_step_fastest_run": fastest, "tok_s": tokens / ms * 1e3,
                  "runs": mine}
        r[f"speedup_over_{key}"] = ms / ob_ms
        # The peer's runs spread widely on a shared machine: the ratio against its fastest run too, the
        # figure to quote where the target must hold run for run.
        r[f"speedup_over_{key}_fastest_run"] = fastest / ob_ms
    res["by_threads"].append(r)
json.dump(res, open(out + ".tmp", "w"), indent=1)
import os; os.replace(out + ".tmp", out)
print(f"{cpu}, {res['date_utc']} UTC")
print(f"{'threads':>8}{'trainer':>15}{'ms/step':>10}{'tokens/s':>10}{'onebit is':>12}{'vs fastest run':>16}   load avg")
for r in res["by_threads"]:
    t = r["threads"]
    print(f"{t:8}{'onebit':>15}{r['onebit']['ms_step_median']:10.0f}{r['onebit']['tok_s']:10.0f}{'':28}   "
          f"{r['loadavg_before']} -> {r['loadavg_after']}")
    for key, label in (("torch_eager", "torch eager"), ("torch_compile", "torch.compile")):
        if r[key] is None:
            print(f"{t:8}{label:>15}    failed (see the peer's output above)")
            continue
        print(f"{t:8}{label:>15}{r[key]['ms_step_median_of_runs']:10.0f}{r[key]['tok_s']:10.0f}"
              f"{r['speedup_over_' + key]:11.2f}x{r['speedup_over_' + key + '_fastest_run']:15.2f}x")
print("targets: >= 1.5x torch eager, >= 1.2x torch.compile"
      + ("" if res["complete"] else f" (partial: {threads} of {planned} threads so far)"))
print(f"wrote {out}")
PY
}

for t in $THREADS; do
  load=$(cut -d' ' -f1-3 /proc/loadavg)  # other work on the machine skews every number
  echo "== $t threads (load avg $load): onebit, 25m, batch $BATCH x seq $SEQ, $((WARMUP + STEPS)) steps" >&2
  echo "$load" > "$work/load-$t"
  # The byte tokenizer keeps ids < 257; the step's cost does not depend on which ids appear.
  XDG_CACHE_HOME="$work/cache" "$ONEBIT_BINARY" train --data "$repo/data/tinyshakespeare.txt" \
    --model-config "$repo/configs/25m.json" --output-dir "$work/onebit-$t" --no-resume \
    --batch-size $BATCH --seq-len $SEQ --max-steps $((WARMUP + STEPS)) --threads "$t" \
    --quant-warmup-steps 0 --quant-anneal-steps 0 --val-fraction 0 --keep-checkpoints 1 >&2
  echo "== $t threads: torch peer, $PEER_RUNS runs of $PEER_STEPS timed steps, eager then torch.compile" >&2
  for r in $(seq 1 "$PEER_RUNS"); do
    "$PYTHON" "$PEER" --device cpu --config 25M --batch $BATCH --seq $SEQ --threads "$t" \
      --steps "$PEER_STEPS" --no-unquantized --json-out "$work/peer-$t-$r.json" >&2
  done
  cut -d' ' -f1-3 /proc/loadavg >> "$work/load-$t"
  done_threads="${done_threads:+$done_threads }$t"
  summarize "$done_threads"
done
