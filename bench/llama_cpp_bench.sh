#!/usr/bin/env bash
# Decode (tg128) and prefill (pp512) speed: llama.cpp's ternary types TQ2_0 and TQ1_0 vs onebit's
# packed runtime, on the same models and the same threads.
#
#   ONEBIT_BINARY=build/src/cli/onebit LLAMA_CPP_DIR=/path/to/llama.cpp-build bench/llama_cpp_bench.sh
#   env: MODELS (default "125m 1b 2b4t"), TYPES ("tq2_0 tq1_0"), THREADS ("1 2"), REPS (3),
#        PP (512), TG (128), WORK (scratch dir for the GGUF files), CPU_TAG, SEED (1),
#        ONEBIT_BENCH_ARGS (extra `onebit bench` flags, e.g. "--lm-head bf16")
#
# Models: the shapes of the 125m and 1b presets and of bitnet-b1.58-2B-4T (configs/bitnet-2b-gguf.json),
# as llama.cpp's bitnet architecture (bench/configs/*-bitnet.json: the presets with sub-norms, tied
# embeddings and no QK-norm), with random ternary weights (`onebit export --random-weights`; speed
# does not depend on the values). llama.cpp side: llama-bench -r REPS, the median of its samples.
# onebit side: `onebit bench` (the inference runtime), skipped with a message where this binary has no
# bench command. Prints one row per model/type/threads with the ratio onebit / llama.cpp and writes
# bench/results/llama_cpp_<CPU_TAG>.json.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
ONEBIT_BINARY=${ONEBIT_BINARY:-$repo/build/src/cli/onebit}
LLAMA_CPP_DIR=${LLAMA_CPP_DIR:?set LLAMA_CPP_DIR to a llama.cpp build dir (holding bin/llama-bench)}
MODELS=${MODELS:-125m 1b 2b4t}
TYPES=${TYPES:-tq2_0 tq1_0}
THREADS=${THREADS:-1 2}
REPS=${REPS:-3}
PP=${PP:-512}
TG=${TG:-128}
SEED=${SEED:-1}
WORK=${WORK:-${TMPDIR:-/tmp}/onebit-llama-cpp-bench}
CPU_TAG=${CPU_TAG:-$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //; s/[^A-Za-z0-9]\+/-/g; s/-$//' | tr 'A-Z' 'a-z')}
bench_bin=$LLAMA_CPP_DIR/bin/llama-bench
[[ -x $bench_bin ]] || { echo "llama_cpp_bench: no $bench_bin" >&2; exit 1; }
[[ -x $ONEBIT_BINARY ]] || { echo "llama_cpp_bench: no onebit binary at $ONEBIT_BINARY" >&2; exit 1; }
have_onebit_bench=1
if ! "$ONEBIT_BINARY" --help | grep -qE '^  bench  '; then
  have_onebit_bench=0
  echo "llama_cpp_bench: $ONEBIT_BINARY has no 'bench' command (the inference runtime is not in this build): onebit rows skipped" >&2
fi
mkdir -p "$WORK" "$repo/bench/results"
threads_csv=$(echo $THREADS | tr ' ' ',')

config_of() {
  case $1 in
    2b4t) echo "$repo/configs/bitnet-2b-gguf.json" ;;
    *) echo "$repo/bench/configs/$1-bitnet.json" ;;
  esac
}

rows=$WORK/rows.jsonl
: > "$rows"
for m in $MODELS; do
  cfg=$(config_of "$m")
  for t in $TYPES; do
    gguf=$WORK/$m-$t.gguf
    if [[ ! -s $gguf || $cfg -nt $gguf ]]; then
      "$ONEBIT_BINARY" export --format gguf --type "$t" --random-weights "$SEED" "$cfg" "$gguf" >&2
    fi
    # One llama-bench run per model file: all thread counts, pp and tg; JSON on stdout.
    "$bench_bin" -m "$gguf" -p "$PP" -n "$TG" -t "$threads_csv" -r "$REPS" -o json 2>"$WORK/$m-$t.log" \
      | jq -c --arg m "$m" --arg t "$t" '.[] | {engine: "llama.cpp", model: $m, type: $t, threads: .n_threads,
            test: (if .n_prompt > 0 then "pp\(.n_prompt)" else "tg\(.n_gen)" end),
            tokens_per_s: (.samples_ts | sort | .[(length / 2 | floor)]), samples: .samples_ts,
            model_bytes: .model_size, build: .build_commit}' >> "$rows"
  done
  if [[ $have_onebit_bench == 1 ]]; then
    out=$WORK/$m-onebit.json
    # ONEBIT_BENCH_ARGS: e.g. "--lm-head bf16" to read the head at llama.cpp's 16 bits (the default is
    # f32, the trained model's numerics), or "--lm-head int8".
    "$ONEBIT_BINARY" bench --model "random:$cfg" -p "$PP" -n "$TG" -t "$threads_csv" -r "$REPS" ${ONEBIT_BENCH_ARGS:-} \
      --json-out "$out" >&2
    jq -c --arg m "$m" '. as $r | .rows[] | {engine: "onebit", model: $m, type: $r.ternary_layout, threads,
          test, tokens_per_s, bandwidth_fraction, weight_bytes_per_token: $r.weight_bytes_per_token}' "$out" >> "$rows"
  fi
done

result=$repo/bench/results/llama_cpp_$CPU_TAG.json
jq -s --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')" --arg date "$(date -u +%FT%TZ)" \
  --arg reps "$REPS" '{cpu: $cpu, date: $date, repetitions: ($reps | tonumber), rows: .}' "$rows" > "$result.tmp"
mv "$result.tmp" "$result"

# Table: every row, and onebit's ratio to the best llama.cpp ternary type of the same model/test/threads.
jq -r '.rows as $rows
  | ["model", "engine", "type", "threads", "test", "tok/s", "onebit / best llama.cpp"],
    ($rows[] | . as $r
      | ([$rows[] | select(.engine == "llama.cpp" and .model == $r.model and .test == $r.test
                           and .threads == $r.threads) | .tokens_per_s] | max) as $best
      | [$r.model, $r.engine, $r.type, $r.threads, $r.test, ($r.tokens_per_s * 100 | round / 100),
         (if $r.engine == "onebit" and $best then ($r.tokens_per_s / $best * 100 | round / 100) else "" end)])
  | @tsv' "$result" | column -t -s $'\t'
echo "wrote $result" >&2
