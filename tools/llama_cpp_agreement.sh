#!/usr/bin/env bash
# How closely upstream llama.cpp reproduces an onebit model exported to GGUF: greedy continuations
# (tokens in agreement before the first difference) and perplexity on the same text.
#
#   tools/llama_cpp_agreement.sh MODEL_DIR TEXT_FILE
#   FINETUNE_FROM=HF_DIR tools/llama_cpp_agreement.sh RUN_DIR TEXT_FILE
#   env: ONEBIT_BINARY (build/src/cli/onebit), LLAMA_CPP_DIR (a llama.cpp build dir with bin/llama-simple
#        and bin/llama-perplexity), N (greedy tokens, 64), CTX (perplexity window, 128), CHUNKS (16),
#        PROMPTS (file of prompts, one a line; default: the first 8 lines of TEXT_FILE that are at least
#        10 bytes), WORK (scratch dir), TYPES ("tq2_0 tq1_0 f16")
#   FINETUNE_FROM: first `onebit import hf HF_DIR`, then fine-tune the import in hard QAT
#        (`train --init-from --start-phase hard`, STEPS (30) steps of batch 8 x TRAIN_SEQ (64) at lr 3e-3
#        on TRAIN_TEXT, default the first 200,000 bytes of data/tinyshakespeare.txt) into RUN_DIR, and
#        compare that (issue 17's GGUF leg; tests/cli/gguf_finetune_e2e_test.cpp is the same as a test).
#
# The model must use a byte-level tokenizer with one token per byte of output (onebit's byte
# tokenizer), so that agreement can be counted on the bytes both programs print. Exports TQ2_0, TQ1_0
# and F16 (each with an F32 embedding, so that only the linears' numerics differ). llama.cpp's TQ types
# quantize activations per 256-value block to 8 bits (q8_K) where onebit quantizes per token; its F16
# path does not quantize activations at all.
# Perplexity: llama-perplexity scores the second half of each CTX window; `onebit eval
# --llama-perplexity-positions` scores exactly those targets, so the two numbers are over the same
# tokens (the plain eval, every position of each window, is printed too).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
MODEL=${1:?model dir}
TEXT=${2:?text file}
ONEBIT_BINARY=${ONEBIT_BINARY:-$repo/build/src/cli/onebit}
LLAMA_CPP_DIR=${LLAMA_CPP_DIR:?set LLAMA_CPP_DIR to a llama.cpp build dir}
N=${N:-64}
CTX=${CTX:-128}
CHUNKS=${CHUNKS:-16}
WORK=${WORK:-${TMPDIR:-/tmp}/onebit-llama-cpp-agreement}
TYPES=${TYPES:-tq2_0 tq1_0 f16}
mkdir -p "$WORK"
if [[ -n ${FINETUNE_FROM:-} ]]; then
  TRAIN_TEXT=${TRAIN_TEXT:-$WORK/train.txt}
  [[ -s $TRAIN_TEXT ]] || head -c 200000 "$repo/data/tinyshakespeare.txt" > "$TRAIN_TEXT"
  rm -rf "$WORK/imported"
  "$ONEBIT_BINARY" import hf "$FINETUNE_FROM" "$WORK/imported" >&2
  "$ONEBIT_BINARY" train --init-from "$WORK/imported" --start-phase hard --data "$TRAIN_TEXT" --output-dir "$MODEL" \
    --max-steps "${STEPS:-30}" --batch-size 8 --seq-len "${TRAIN_SEQ:-64}" --lr 3e-3 --warmup-steps 3 --eval-every 0 \
    --final-eval-batches 2 2>&1 | grep -E '^final:' >&2
fi
if [[ -z ${PROMPTS:-} ]]; then
  PROMPTS=$WORK/prompts.txt
  awk 'length($0) >= 10 && n++ < 8' "$TEXT" > "$PROMPTS"
fi

# Common prefix length, in bytes, of two files.
common_prefix() {
  python3 -c 'import sys
a, b = (open(f, "rb").read() for f in sys.argv[1:3])
n = 0
while n < min(len(a), len(b)) and a[n] == b[n]:
    n += 1
print(n)' "$1" "$2"
}

onebit_ppl=$("$ONEBIT_BINARY" eval -m "$MODEL" --data "$TEXT" --seq-len "$CTX" --max-batches "$CHUNKS" -b 1 --json 2>/dev/null | jq .perplexity)
printf 'onebit eval (every position of %d-token windows, %d windows): ppl %.4f\n' "$CTX" "$CHUNKS" "$onebit_ppl"
onebit_half=$("$ONEBIT_BINARY" eval -m "$MODEL" --data "$TEXT" --seq-len "$CTX" --max-batches "$CHUNKS" -b 1 \
  --llama-perplexity-positions --json 2>/dev/null | jq .perplexity)
printf "onebit eval --llama-perplexity-positions (llama-perplexity's targets): ppl %.4f\n" "$onebit_half"
i=0
while IFS= read -r p; do
  "$ONEBIT_BINARY" generate -m "$MODEL" -p "$p" -n "$N" -t 0 > "$WORK/onebit-$i.txt" 2>/dev/null
  i=$((i + 1))
done < "$PROMPTS"
n_prompts=$i

for t in $TYPES; do
  g=$WORK/model-$t.gguf
  "$ONEBIT_BINARY" export --format gguf --type "$t" --embedding-type f32 "$MODEL" "$g" 2>/dev/null
  total=0 agree=0 full=0
  for ((i = 0; i < n_prompts; i++)); do
    p=$(sed -n "$((i + 1))p" "$PROMPTS")
    "$LLAMA_CPP_DIR/bin/llama-simple" -m "$g" -n "$N" "$p" > "$WORK/llama-$t-$i.txt" 2>/dev/null
    # Both print the prompt and then the continuation; compare the continuations.
    plen=$(printf '%s' "$p" | wc -c)
    tail -c +$((plen + 1)) "$WORK/onebit-$i.txt" | head -c "$N" > "$WORK/a.txt"
    tail -c +$((plen + 1)) "$WORK/llama-$t-$i.txt" | head -c "$N" > "$WORK/b.txt"
    n=$(wc -c < "$WORK/a.txt")
    c=$(common_prefix "$WORK/a.txt" "$WORK/b.txt")
    total=$((total + n)) agree=$((agree + c))
    [[ $c -ge $n ]] && full=$((full + 1))
  done
  # The running estimate after CHUNKS windows ("[CHUNKS]ppl,"); one window more is asked for because
  # llama.cpp's asynchronous log sometimes loses its last lines at exit (the final estimate included).
  ppl=$("$LLAMA_CPP_DIR/bin/llama-perplexity" -m "$g" -f "$TEXT" -c "$CTX" -b "$CTX" --chunks $((CHUNKS + 1)) 2>&1 \
        | grep -o "\[$CHUNKS\][0-9.]*" | sed 's/.*\]//' || true)
  rel=$(awk -v a="$ppl" -v b="$onebit_half" 'BEGIN { if (a == "" || b == 0) print "?"; else printf "%+.2f%%", 100 * (a / b - 1) }')
  printf '%-6s greedy: %d/%d prompts identical for %d tokens, %d of %d tokens before the first difference; llama-perplexity (second half of %d-token windows): ppl %s (%s vs onebit on the same tokens)\n' \
    "$t" "$full" "$n_prompts" "$N" "$agree" "$total" "$CTX" "$ppl" "$rel"
done
