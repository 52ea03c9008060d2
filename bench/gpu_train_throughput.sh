#!/usr/bin/env bash
# GPU training throughput: `onebit train --device cuda` vs the PyTorch BitNet peer
# (../shared/bench/peer_torch_bitnet.py, eager and torch.compile, bf16 autocast) on the same shapes in
# one run: the 125m preset (= the peer's 125M) and the 0.3b-stack preset with vocab 32000 (= the peer's
# 0.3B), batch 16 x seq 1024, ternary weights with int8 activations (hard QAT from step 0), AdamW
# included. Reports tokens/s, MFU against the H200's 989 TFLOP/s dense bf16 peak (the peer's FLOP
# count for both: 6 N per token + 12 L d T attention), peak GPU memory, and the ratios.
#
#   bench/gpu_train_throughput.sh   (env: ONEBIT_BINARY, PYTHON, PEER, CONFIGS="125m 0.3b", STEPS,
#                                         WARMUP, PEER_STEPS, SEGMENTS="0", NO_PEER=1, RESULT)
# onebit: median step time from metrics.jsonl after WARMUP steps; memory: the backend's peak
# allocation (gpu_peak_mb), comparable to torch.cuda.max_memory_allocated. SEGMENTS lists
# --gradient-checkpointing-segments values to run (0 = keep every activation).
# Writes bench/results/$RESULT.json (default gpu_train_throughput).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
PYTHON=${PYTHON:-python3}
PEER=${PEER:-$repo/../shared/bench/peer_torch_bitnet.py}
CONFIGS=${CONFIGS:-125m 0.3b}
STEPS=${STEPS:-20}
WARMUP=${WARMUP:-3}
PEER_STEPS=${PEER_STEPS:-20}
SEGMENTS=${SEGMENTS:-0}
RESULT=${RESULT:-gpu_train_throughput}
B=16
T=1024
if [[ -z "${ONEBIT_BINARY:-}" ]]; then
  for b in "$repo/build-gpu/src/cli/onebit" "$repo/build/src/cli/onebit"; do [[ -x $b ]] && ONEBIT_BINARY=$b && break; done
fi
[[ -x "${ONEBIT_BINARY:-}" ]] || { echo "gpu_train_throughput: set ONEBIT_BINARY" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$repo/bench/results"
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n1)

for c in $CONFIGS; do
  case $c in
    125m) preset=125m peer=125M ;;
    0.3b) preset=0.3b-stack peer=0.3B ;;
    1b) preset=1b peer= ;;
    *) echo "unknown config $c" >&2; exit 1 ;;
  esac
  # The preset with the peer's vocabulary (32000); the byte tokenizer's ids fit in it.
  "$PYTHON" - "$repo/configs/$preset.json" "$work/$c.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["vocab_size"] = 32000; c["max_position_embeddings"] = max(1024, c["max_position_embeddings"])
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
  for seg in $SEGMENTS; do
    echo "== onebit $c (segments $seg): batch $B x seq $T, $((WARMUP + STEPS)) steps on $gpu" >&2
    XDG_CACHE_HOME="$work/cache" "$ONEBIT_BINARY" train --device cuda --data "$repo/data/tinyshakespeare.txt" \
      --model-config "$work/$c.json" --output-dir "$work/onebit-$c-$seg" --no-resume --batch-size $B --seq-len $T \
      --max-steps $((WARMUP + STEPS)) --quant-warmup-steps 0 --quant-anneal-steps 0 --val-fraction 0 \
      --keep-checkpoints 1 --gradient-checkpointing-segments "$seg" >&2 || echo "onebit $c failed" >&2
    cp "$work/onebit-$c-$seg/metrics.jsonl" "$work/metrics-$c-$seg.jsonl" 2>/dev/null || true
  done
  if [[ -n $peer && -z "${NO_PEER:-}" && -f $PEER ]]; then
    echo "== torch peer $peer: eager then torch.compile, $PEER_STEPS timed steps" >&2
    "$PYTHON" "$PEER" --device cuda --config "$peer" --batch $B --seq $T --steps "$PEER_STEPS" --no-unquantized \
      --json-out "$work/peer-$c.json" >&2 || echo "peer $peer failed" >&2
  fi
done

"$PYTHON" - "$work" "$repo/bench/results/$RESULT.json" "$gpu" "$WARMUP" "$CONFIGS" "$SEGMENTS" <<'PY'
import json, os, statistics, sys, datetime
work, out, gpu, warmup, configs, segments = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5].split(), sys.argv[6].split()
shapes = {"125m": (32000, 768, 12, 2048), "0.3b": (32000, 1024, 16, 2816), "1b": (32000, 2048, 24, 5632)}
B, T = 16, 1024
rows = []
for c in configs:
    V, d, L, ff = shapes[c]
    n = 2 * V * d + L * (4 * d * d + 3 * d * ff)  # the peer's parameter count (embedding + untied head)
    flops_per_step = 6 * n * B * T + 12 * L * d * T * B * T
    peer = {}
    pf = os.path.join(work, f"peer-{c}.json")
    if os.path.exists(pf):
        for r in json.load(open(pf)):
            peer["compile" if r["compiled"] else "eager"] = r
    for seg in segments:
        mf = os.path.join(work, f"metrics-{c}-{seg}.jsonl")
        if not os.path.exists(mf):
            print(f"{c}: onebit produced no metrics"); continue
        recs = [json.loads(l) for l in open(mf) if '"loss"' in l]
        ms = statistics.median(r["step_ms"] for r in recs[warmup:])
        # attention: the flash-attention kernels onebit ran (ONEBIT_CUDA_ATTENTION; unset = auto); int8_forward:
        # the Hard-phase forward on int8 tensor cores (ONEBIT_CUDA_INT8_FORWARD; unset = on where it runs)
        row = dict(config=c, segments=int(seg), gpu=gpu, attention=os.environ.get("ONEBIT_CUDA_ATTENTION") or "auto",
                   int8_forward=os.environ.get("ONEBIT_CUDA_INT8_FORWARD") or "default",
                   B=B, T=T, steps_timed=len(recs) - warmup,
                   onebit_ms_step=round(ms, 2), onebit_tok_s=round(B * T / ms * 1e3),
                   onebit_mfu=round(flops_per_step / (ms / 1e3) / 989e12, 3),
                   onebit_peak_gib=round(max(r.get("gpu_peak_mb", 0) for r in recs) / 1024, 2),
                   onebit_final_loss=recs[-1]["loss"])
        for mode, r in peer.items():
            row[f"torch_{mode}_tok_s"] = r["tok_s"]
            row[f"torch_{mode}_peak_gib"] = r.get("peak_GiB")
            row[f"torch_{mode}_mfu"] = r.get("mfu_bf16")
            row[f"ratio_vs_{mode}"] = round(row["onebit_tok_s"] / r["tok_s"], 3)
        rows.append(row)
        print(f"{c:5s} seg {seg}: onebit {row['onebit_tok_s']:>9,} tok/s  {ms:7.1f} ms/step  MFU {row['onebit_mfu']:.3f}  "
              f"peak {row['onebit_peak_gib']:6.2f} GiB" +
              "".join(f" | torch {m} {peer[m]['tok_s']:>9,} tok/s peak {peer[m].get('peak_GiB')} GiB ratio {row['ratio_vs_' + m]:.2f}x"
                      for m in ("eager", "compile") if m in peer))
json.dump(dict(date=datetime.date.today().isoformat(), gpu=gpu, rows=rows), open(out + ".tmp", "w"), indent=1)
os.replace(out + ".tmp", out)
print("wrote", out)
PY
