#!/usr/bin/env bash
# Quality on the GPU: nanoGPT's shakespeare-char baseline shape (6 layers, 6 heads, 384 hidden, context
# 256, batch 64, dropout 0.2, lr 1e-3, 5000 iterations; nanoGPT reaches 1.4697 validation loss in full
# precision) trained by onebit on the byte tokenizer (= characters for this ASCII text), once ternary
# with the three-phase schedule (configs/shakespeare-char.json) and once in full precision (the same
# config with f32 weights and no activation quantization). The SwiGLU MLP's 1024 hidden units give the
# parameter count of nanoGPT's 4x GELU MLP. Reports the final validation loss over the whole held-out
# 10% and the wall time, and the model --save-best kept: the lowest whole-split evaluation (every 250
# steps) in the schedule's final phase (Hard for ternary), as nanoGPT keeps its best checkpoint.
#   bench/shakespeare_char.sh   (env: ONEBIT_BINARY, DEVICE=cuda, STEPS=5000, PYTHON)
# Writes bench/results/shakespeare_char.json and each run's metrics (shakespeare_char_<variant>_metrics.jsonl).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
STEPS=${STEPS:-5000}
[[ -x "${ONEBIT_BINARY:-}" ]] || { echo "shakespeare_char: set ONEBIT_BINARY" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PYTHON" - "$repo/configs/shakespeare-char.json" "$work/fp.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["quantization"]["weight_bits"].update(attention="f32", mlp="f32")
c["quantization"]["activation_bits"] = "none"
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
results=()
for variant in ternary fp; do
  cfg=$repo/configs/shakespeare-char.json
  extra=()
  # Full precision has no schedule: one phase, so every evaluation can give its best model.
  [[ $variant == fp ]] && cfg=$work/fp.json && extra=(--quant-warmup-steps "$STEPS")
  echo "== $variant: $STEPS steps of 64 x 256 on $DEVICE" >&2
  start=$(date +%s%N)
  XDG_CACHE_HOME="$work/cache" "$ONEBIT_BINARY" train --device "$DEVICE" --data "$repo/data/tinyshakespeare.txt" \
    --model-config "$cfg" --output-dir "$work/$variant" --no-resume --batch-size 64 --seq-len 256 \
    --max-steps "$STEPS" --lr 1e-3 --min-lr 1e-4 --warmup-steps 100 --beta2 0.99 --weight-decay 0.1 \
    --eval-every 250 --eval-batches 0 --final-eval-batches 0 --val-fraction 0.1 --keep-checkpoints 1 --save-best \
    "${extra[@]}" > "$work/$variant.out" 2> "$work/$variant.err" || { tail -n 5 "$work/$variant.err" >&2; exit 1; }
  end=$(date +%s%N)
  cat "$work/$variant.out" >&2
  cp "$work/$variant/metrics.jsonl" "$repo/bench/results/shakespeare_char_${variant}_metrics.jsonl"
  cp "$work/$variant/best/best.json" "$repo/bench/results/shakespeare_char_${variant}_best.json"
  results+=("$variant" "$(grep -o 'val_loss [0-9.]*' "$work/$variant.out" | awk '{print $2}')" "$(( (end - start) / 1000000 ))")
done
"$PYTHON" - "$repo/bench/results/shakespeare_char.json" "$DEVICE" "$STEPS" "${results[@]}" <<'PY'
import json, os, sys, datetime, subprocess
out, device, steps, rest = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True).stdout.strip() if device == "cuda" else ""
rows = [dict(variant=rest[i], val_loss=float(rest[i + 1]), wall_s=round(float(rest[i + 2]) / 1e3, 1)) for i in range(0, len(rest), 3)]
for r in rows:
    # The best periodic evaluation (over --eval-batches) beside the final whole-split score: over-fitting shows as a gap.
    evals = [json.loads(l) for l in open(os.path.join(os.path.dirname(out), f"shakespeare_char_{r['variant']}_metrics.jsonl")) if '"val_loss"' in l]
    best = min(evals, key=lambda j: j["val_loss"]) if evals else None
    if best: r.update(best_eval_val_loss=best["val_loss"], best_eval_step=best["step"])
    # --save-best's model: the lowest whole-split evaluation in the schedule's final phase (for ternary
    # the Hard phase: a ternary model), as nanoGPT keeps its best checkpoint.
    kept = json.load(open(os.path.join(os.path.dirname(out), f"shakespeare_char_{r['variant']}_best.json")))
    r.update(saved_best_val_loss=kept["val_loss"], saved_best_step=kept["step"])
    print(f"{r['variant']:8s} final val_loss {r['val_loss']:.4f}  saved best (final phase) {kept['val_loss']:.4f} at step "
          f"{kept['step']}  best of any phase {r.get('best_eval_val_loss', float('nan')):.4f} at step "
          f"{r.get('best_eval_step', -1)}  wall {r['wall_s']:.0f} s  (nanoGPT fp baseline 1.4697; ternary target <= 1.55)")
json.dump(dict(date=datetime.date.today().isoformat(), device=device, gpu=gpu, steps=steps, rows=rows), open(out + ".tmp", "w"), indent=1)
os.replace(out + ".tmp", out)
PY
