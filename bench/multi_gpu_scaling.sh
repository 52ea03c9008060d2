#!/usr/bin/env bash
# Data-parallel scaling of `onebit train --device cuda` over the GPUs of one host (issue 18): the
# 0.3b-stack and 1b presets (vocab 32000, as bench/gpu_train_throughput.sh) on 1, 2, 4 and 8 GPUs, as
# many of those as are visible, one process per GPU started with torchrun-style variables (RANK,
# LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT). Weak scaling: every GPU runs
# batch B x seq T, so N GPUs train on N x B sequences per step. Ternary weights with int8 activations
# (hard QAT from step 0), AdamW (ZeRO-1 sharded), bf16 gradient buckets.
#
# Reports per row: tokens/s of the whole job (rank 0's metrics.jsonl: global tokens per step over the
# median step time after WARMUP steps), scaling efficiency = tokens/s on N GPUs / (N x tokens/s on 1
# GPU), and peak memory per GPU twice: rank 0's backend allocations (gpu_peak_mb: weights, grads,
# the AdamW shard, activations; the ranks are symmetric) and the most nvidia-smi saw in use on any of
# the job's GPUs (sampled every 200 ms; adds the CUDA context, cuBLAS workspace and NCCL's buffers).
#
#   bench/multi_gpu_scaling.sh   (env: ONEBIT_BINARY, PYTHON, CONFIGS="0.3b 1b", GPUS="1 2 4 8",
#                                      STEPS, WARMUP, B, T, SEGMENTS_1B, RESULT)
# Writes bench/results/$RESULT.json (default multi_gpu_scaling). With one GPU it runs and prints the
# one-GPU rows.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
PYTHON=${PYTHON:-python3}
CONFIGS=${CONFIGS:-0.3b 1b}
GPUS=${GPUS:-1 2 4 8}
STEPS=${STEPS:-20}
WARMUP=${WARMUP:-3}
B=${B:-16}
T=${T:-1024}
SEGMENTS_1B=${SEGMENTS_1B:-8}  # the 1b preset keeps activations of 8 segments (gpu_train_throughput_1b)
RESULT=${RESULT:-multi_gpu_scaling}
if [[ -z "${ONEBIT_BINARY:-}" ]]; then
  for b in "$repo/build-gpu/src/cli/onebit" "$repo/build/src/cli/onebit"; do [[ -x $b ]] && ONEBIT_BINARY=$b && break; done
fi
[[ -x "${ONEBIT_BINARY:-}" ]] || { echo "multi_gpu_scaling: set ONEBIT_BINARY" >&2; exit 1; }
visible=$(nvidia-smi --query-gpu=name --format=csv,noheader | wc -l)
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n1)
[[ $visible -ge 1 ]] || { echo "multi_gpu_scaling: no GPU visible" >&2; exit 1; }
# NVLink multicast stays off in every process this script starts (onebit also forces it).
export NCCL_NVLS_ENABLE=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$repo/bench/results"

run_job() {  # run_job <config json> <segments> <gpus> <out dir>: one process per GPU, waits for all
  local cfg=$1 seg=$2 n=$3 out=$4 port=$((29500 + RANDOM % 2000)) pids=() status=0 smi
  nvidia-smi --query-gpu=index,memory.used --format=csv,noheader,nounits -lms 200 >"$out.smi.csv" 2>/dev/null &
  smi=$!
  for ((r = 0; r < n; r++)); do
    RANK=$r LOCAL_RANK=$r WORLD_SIZE=$n LOCAL_WORLD_SIZE=$n MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      XDG_CACHE_HOME="$work/cache" "$ONEBIT_BINARY" train --device cuda --data "$repo/data/tinyshakespeare.txt" \
      --model-config "$cfg" --output-dir "$out" --no-resume --batch-size "$B" --seq-len "$T" \
      --max-steps $((WARMUP + STEPS)) --quant-warmup-steps 0 --quant-anneal-steps 0 --val-fraction 0 \
      --keep-checkpoints 1 --save-every 0 --gradient-checkpointing-segments "$seg" >"$out.rank$r.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || status=1; done
  kill "$smi" 2>/dev/null || true
  wait "$smi" 2>/dev/null || true
  return $status
}

for c in $CONFIGS; do
  case $c in
    0.3b) preset=0.3b-stack seg=0 ;;
    1b) preset=1b seg=$SEGMENTS_1B ;;
    *) echo "unknown config $c (0.3b or 1b)" >&2; exit 1 ;;
  esac
  "$PYTHON" - "$repo/configs/$preset.json" "$work/$c.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["vocab_size"] = 32000; c["max_position_embeddings"] = max(1024, c["max_position_embeddings"])
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
  for n in $GPUS; do
    if ((n > visible)); then echo "== $c on $n GPUs: skipped ($visible visible)" >&2; continue; fi
    echo "== onebit $c on $n x $gpu: batch $B x seq $T per GPU, $((WARMUP + STEPS)) steps" >&2
    if run_job "$work/$c.json" "$seg" "$n" "$work/run-$c-$n"; then
      cp "$work/run-$c-$n/metrics.jsonl" "$work/metrics-$c-$n.jsonl"
      cp "$work/run-$c-$n.smi.csv" "$work/smi-$c-$n.csv" 2>/dev/null || true
    else
      echo "onebit $c on $n GPUs failed; the ranks' last lines:" >&2
      for f in "$work/run-$c-$n".rank*.log; do tail -n 3 "$f" >&2; done
    fi
  done
done

"$PYTHON" - "$work" "$repo/bench/results/$RESULT.json" "$gpu" "$visible" "$WARMUP" "$CONFIGS" "$GPUS" "$B" "$T" <<'PY'
import datetime, json, os, statistics, sys
work, out, gpu, visible, warmup = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
configs, gpus, B, T = sys.argv[6].split(), [int(g) for g in sys.argv[7].split()], int(sys.argv[8]), int(sys.argv[9])
rows = []
def smi_peak_gib(path, n):  # the most memory.used (MiB) on GPUs 0..n-1 during the job
    best = 0
    if os.path.exists(path):
        for line in open(path):
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit() and int(parts[0]) < n:
                best = max(best, int(parts[1]))
    return round(best / 1024, 2) if best else None
print(f"{'config':6s} {'GPUs':>4s} {'tokens/s':>11s} {'per GPU':>10s} {'efficiency':>10s} {'ms/step':>8s} "
      f"{'peak GiB/GPU':>12s} {'nvidia-smi GiB':>14s}")
for c in configs:
    one = None
    for n in gpus:
        mf = os.path.join(work, f"metrics-{c}-{n}.jsonl")
        if not os.path.exists(mf):
            continue
        recs = [json.loads(l) for l in open(mf) if '"loss"' in l]
        timed = recs[warmup:] or recs
        ms = statistics.median(r["step_ms"] for r in timed)
        tok_s = n * B * T / ms * 1e3
        if n == 1:
            one = tok_s
        row = dict(config=c, gpus=n, gpu=gpu, batch_per_gpu=B, seq_len=T, global_batch=n * B, steps_timed=len(timed),
                   ms_step=round(ms, 2), tok_s=round(tok_s), tok_s_per_gpu=round(tok_s / n),
                   scaling_efficiency=round(tok_s / (n * one), 3) if one else None,
                   peak_gib_per_gpu=round(max(r.get("gpu_peak_mb", 0) for r in recs) / 1024, 2),
                   nvidia_smi_peak_gib_per_gpu=smi_peak_gib(os.path.join(work, f"smi-{c}-{n}.csv"), n),
                   final_loss=recs[-1]["loss"])
        rows.append(row)
        eff = f"{row['scaling_efficiency']:.1%}" if one else "-"
        smi = row["nvidia_smi_peak_gib_per_gpu"]
        print(f"{c:6s} {n:4d} {row['tok_s']:>11,} {row['tok_s_per_gpu']:>10,} {eff:>10s} {ms:8.1f} "
              f"{row['peak_gib_per_gpu']:12.2f} {smi if smi is not None else '-':>14}")
json.dump(dict(date=datetime.date.today().isoformat(), gpu=gpu, gpus_visible=visible, rows=rows), open(out + ".tmp", "w"), indent=1)
os.replace(out + ".tmp", out)
print("wrote", out)
PY
