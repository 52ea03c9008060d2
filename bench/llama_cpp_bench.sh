#!/usr/bin/env bash
# Decode (tg128) and prefill (pp512) speed: llama.cpp's ternary types TQ2_0 and TQ1_0 (and, with
# BITNET_CPP_DIR, bitnet.cpp's I2_S) vs onebit's packed runtime, on the same models and the same
# threads, in one run.
#
#   ONEBIT_BINARY=build/src/cli/onebit LLAMA_CPP_DIR=/path/to/llama.cpp-build bench/llama_cpp_bench.sh
#   env: MODELS (default "125m 1b 2b4t"), TYPES ("tq2_0 tq1_0"), THREADS ("1 2"), REPS (3),
#        PP (512), TG (128), WORK (scratch dir for the GGUF files), CPU_TAG, SEED (1),
#        ONEBIT_BENCH_ARGS (extra `onebit bench` flags, e.g. "--lm-head bf16"),
#        BITNET_CPP_DIR (a bitnet.cpp build dir with bin/llama-bench and bin/llama-quantize; unset: no
#        bitnet.cpp rows), BITNET_CPP_TYPES ("i2_s"; "tl2" needs a build with -DBITNET_X86_TL2=ON and
#        kernels generated for these shapes)
#
# bitnet.cpp (microsoft/BitNet with its llama.cpp fork) gets the same weights: its llama-quantize
# --allow-requantize turns the TQ2_0 export into I2_S (byte for byte the file it makes from the F16
# export; 2-bit codes and one scale per tensor, which is 1 here, the export's .scale tensors
# multiplying it), and the F16 embedding is kept as it is.
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
BITNET_CPP_TYPES=${BITNET_CPP_TYPES:-i2_s}
if [[ -n ${BITNET_CPP_DIR:-} ]]; then
  for b in llama-bench llama-quantize; do
    [[ -x $BITNET_CPP_DIR/bin/$b ]] || { echo "llama_cpp_bench: no $BITNET_CPP_DIR/bin/$b" >&2; exit 1; }
  done
fi
have_onebit_bench=1
# The help text is read whole first: `grep -q` stopping early would SIGPIPE the binary, and pipefail
# would then report "no bench command" at random.
onebit_help=$("$ONEBIT_BINARY" --help)
if ! grep -qE '^  bench  ' <<< "$onebit_help"; then
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
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
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
  if [[ -n ${BITNET_CPP_DIR:-} ]]; then
    tq2=$WORK/$m-tq2_0.gguf
    if [[ ! -s $tq2 || $cfg -nt $tq2 ]]; then
      "$ONEBIT_BINARY" export --format gguf --type tq2_0 --random-weights "$SEED" "$cfg" "$tq2" >&2
    fi
    for t in $BITNET_CPP_TYPES; do
      gguf=$WORK/$m-bitnet-$t.gguf
      if [[ ! -s $gguf || $tq2 -nt $gguf ]]; then
        "$BITNET_CPP_DIR/bin/llama-quantize" --allow-requantize "$tq2" "$gguf.tmp" "$(echo "$t" | tr a-z A-Z)" 1 \
          > "$WORK/$m-bitnet-$t-quantize.log" 2>&1
        mv "$gguf.tmp" "$gguf"
      fi
      # bitnet.cpp's llama-bench is llama.cpp's of 2024-10: the same JSON fields.
      "$BITNET_CPP_DIR/bin/llama-bench" -m "$gguf" -p "$PP" -n "$TG" -t "$threads_csv" -r "$REPS" -o json \
        2>"$WORK/$m-bitnet-$t.log" \
        | jq -c --arg m "$m" --arg t "$t" '.[] | {engine: "bitnet.cpp", model: $m, type: $t, threads: .n_threads,
              test: (if .n_prompt > 0 then "pp\(.n_prompt)" else "tg\(.n_gen)" end),
              tokens_per_s: (if .samples_ts then (.samples_ts | sort | .[(length / 2 | floor)]) else .avg_ts end),
              samples: .samples_ts, model_bytes: .model_size, build: .build_commit}' >> "$rows"
    done
  fi
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
# The machine's load average (1, 5, 15 min) before and after: on a shared machine it moves the numbers.
jq -s --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')" --arg date "$(date -u +%FT%TZ)" \
  --arg reps "$REPS" --arg l0 "$load_start" --arg l1 "$(cut -d' ' -f1-3 /proc/loadavg)" \
  '{cpu: $cpu, date: $date, repetitions: ($reps | tonumber), load_average_start: $l0, load_average_end: $l1,
    rows: .}' "$rows" > "$result.tmp"
mv "$result.tmp" "$result"

# Table: every row, and onebit's ratio to the best llama.cpp ternary type and to bitnet.cpp's best
# type of the same model/test/threads.
jq -r '.rows as $rows
  | def best($engine; $r): [$rows[] | select(.engine == $engine and .model == $r.model and .test == $r.test
                                             and .threads == $r.threads) | .tokens_per_s] | max;
    def ratio($r; $b): if $r.engine == "onebit" and $b then ($r.tokens_per_s / $b * 100 | round / 100) else "" end;
    ["model", "engine", "type", "threads", "test", "tok/s", "onebit / best llama.cpp", "onebit / bitnet.cpp"],
    ($rows[] | . as $r
      | [$r.model, $r.engine, $r.type, $r.threads, $r.test, ($r.tokens_per_s * 100 | round / 100),
         ratio($r; best("llama.cpp"; $r)), ratio($r; best("bitnet.cpp"; $r))])
  | @tsv' "$result" | column -t -s $'\t'
echo "wrote $result" >&2
