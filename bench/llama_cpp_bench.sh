#!/usr/bin/env bash
# Decode (tg128) and prefill (pp512) speed: llama.cpp's ternary types TQ2_0 and TQ1_0 (and, with
# BITNET_CPP_DIR, bitnet.cpp's I2_S) vs onebit's packed runtime, on the same models and the same
# threads, alternating the engines round by round.
#
#   ONEBIT_BINARY=build/src/cli/onebit LLAMA_CPP_DIR=/path/to/llama.cpp-build bench/llama_cpp_bench.sh
#   env: MODELS (default "125m 1b 2b4t"), TYPES (llama.cpp's types, "tq2_0 tq1_0"; "" for no llama.cpp
#        rows, and then no LLAMA_CPP_DIR), EXPORT_TYPES (GGUF types to export, default TYPES; more
#        for a later run with KEEP_SAMPLES=1), THREADS ("1 2"), ROUNDS (3),
#        PP (512), TG (128), WORK (scratch dir for the GGUF files), CPU_TAG, SEED (1),
#        ONEBIT_LM_HEAD (onebit's head storage: int8 (default), bf16 or model; several, space-separated,
#        run one after the other in every round, one row each; "" for no onebit rows),
#        KEEP_SAMPLES (1: add to the samples of the last run in WORK, so its rows stay in the result;
#        a later run can add engines or heads to the same table), RESULT_SUFFIX (appended to the result
#        file's name), RESULT_DIR (where it goes, default bench/results), ONEBIT_BENCH_ARGS (extra
#        `onebit bench` flags),
#        BITNET_CPP_DIR (a bitnet.cpp build dir with bin/llama-bench and bin/llama-quantize, for I2_S;
#        bench/build_bitnet_cpp.sh builds one), BITNET_CPP_TYPES (bitnet.cpp's types: "i2_s" (default)
#        and/or "tl2"; none run while neither BITNET_CPP_DIR nor BITNET_CPP_TL2_DIR is set),
#        BITNET_CPP_TL2_DIR and BITNET_CPP_TL2_SRC (for tl2: the -DBITNET_X86_TL2=ON build dir and the
#        source copy its kernels were generated into, both made by bench/build_bitnet_cpp_tl2.sh for
#        these models' shapes), TL2_PYTHON (a Python with numpy, torch and gguf for
#        bench/bitnet_tl2_gguf.py; default python3)
#
# bitnet.cpp (microsoft/BitNet with its llama.cpp fork) gets the same weights: its llama-quantize
# --allow-requantize turns the TQ2_0 export into I2_S (byte for byte the file it makes from the F16
# export; 2-bit codes and one scale per tensor, which is 1 here, the export's .scale tensors
# multiplying it), and the F16 embedding is kept as it is. TL2 (its x86 lookup-table kernels, one
# build per set of weight shapes) has no llama-quantize path: bench/bitnet_tl2_gguf.py lays the F16
# export out as TL2 with BitNet's converter (scale folded in, F16 embedding kept).
#
# Models: the shapes of the 125m and 1b presets and of bitnet-b1.58-2B-4T (configs/bitnet-2b-gguf.json),
# as llama.cpp's bitnet architecture (bench/configs/*-bitnet.json: the presets with sub-norms, tied
# embeddings and no QK-norm), with random ternary weights (`onebit export --random-weights`; speed
# does not depend on the values). The LM head: llama.cpp uses the GGUF's tied F16 token_embd (the
# exporter's default --embedding-type f16); onebit uses --lm-head ONEBIT_LM_HEAD. Each row says which.
#
# The machine may be shared: each of ROUNDS rounds runs `onebit bench -r 1` (each head), then
# bitnet.cpp's and llama.cpp's llama-bench -r 1 on every type (each after its own warm-up), so the
# engines see the same load over the run; a row is the median of its ROUNDS samples. The load average
# is recorded before every run. onebit goes first and llama.cpp's types in TYPES order, so a run cut
# off in a model's round keeps onebit's rows and the first peers' ones.
# The GGUF files of every model are exported first, all at once (each export is one thread; the
# files are not timed). The result file is rewritten after every engine's run with every row so far
# (the table is printed after each model), so a run cut short keeps what it measured.
# Prints one row per model/engine/LM head/threads/test with the bandwidth fraction (onebit decode)
# and the ratio onebit / best llama.cpp type, and writes
# RESULT_DIR/llama_cpp_<CPU_TAG><RESULT_SUFFIX>.json.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
ONEBIT_BINARY=${ONEBIT_BINARY:-$repo/build/src/cli/onebit}
MODELS=${MODELS:-125m 1b 2b4t}
TYPES=${TYPES-tq2_0 tq1_0}
EXPORT_TYPES=${EXPORT_TYPES-$TYPES}
THREADS=${THREADS:-1 2}
ROUNDS=${ROUNDS:-3}
PP=${PP:-512}
TG=${TG:-128}
SEED=${SEED:-1}
ONEBIT_LM_HEAD=${ONEBIT_LM_HEAD-int8}
RESULT_SUFFIX=${RESULT_SUFFIX:-}
RESULT_DIR=${RESULT_DIR:-$repo/bench/results}
WORK=${WORK:-${TMPDIR:-/tmp}/onebit-llama-cpp-bench}
CPU_TAG=${CPU_TAG:-$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //; s/[^A-Za-z0-9]\+/-/g; s/-$//' | tr 'A-Z' 'a-z')}
if [[ -n $TYPES ]]; then
  bench_bin=${LLAMA_CPP_DIR:?set LLAMA_CPP_DIR to a llama.cpp build dir (holding bin/llama-bench)}/bin/llama-bench
  [[ -x $bench_bin ]] || { echo "llama_cpp_bench: no $bench_bin" >&2; exit 1; }
fi
[[ -x $ONEBIT_BINARY ]] || { echo "llama_cpp_bench: no onebit binary at $ONEBIT_BINARY" >&2; exit 1; }
BITNET_CPP_TYPES=${BITNET_CPP_TYPES:-i2_s}
TL2_PYTHON=${TL2_PYTHON:-python3}
# The bitnet.cpp types this run has rows for, each checked for its build.
bitnet_types=
if [[ -n ${BITNET_CPP_DIR:-} || -n ${BITNET_CPP_TL2_DIR:-} ]]; then
  bitnet_types=$BITNET_CPP_TYPES
  for t in $bitnet_types; do
    if [[ $t == tl2 ]]; then
      [[ -x ${BITNET_CPP_TL2_DIR:-}/bin/llama-bench ]] ||
        { echo "llama_cpp_bench: BITNET_CPP_TYPES has tl2: no llama-bench in BITNET_CPP_TL2_DIR '${BITNET_CPP_TL2_DIR:-}'" >&2; exit 1; }
      [[ -f ${BITNET_CPP_TL2_SRC:-}/include/kernel_config.ini ]] ||
        { echo "llama_cpp_bench: BITNET_CPP_TYPES has tl2: no include/kernel_config.ini in BITNET_CPP_TL2_SRC '${BITNET_CPP_TL2_SRC:-}'" >&2; exit 1; }
    else
      for b in llama-bench llama-quantize; do
        [[ -x ${BITNET_CPP_DIR:-}/bin/$b ]] ||
          { echo "llama_cpp_bench: BITNET_CPP_TYPES has $t: no $b in BITNET_CPP_DIR '${BITNET_CPP_DIR:-}'" >&2; exit 1; }
      done
    fi
  done
fi
# The bitnet.cpp build that runs a type.
bitnet_bench_bin() { if [[ $1 == tl2 ]]; then echo "$BITNET_CPP_TL2_DIR/bin/llama-bench"; else echo "$BITNET_CPP_DIR/bin/llama-bench"; fi; }
have_onebit_bench=1
# (The help goes to a variable first: grep -q under pipefail would fail the pipe by closing it early.)
onebit_help=$("$ONEBIT_BINARY" --help)
if ! grep -qE '^  bench  ' <<< "$onebit_help"; then
  have_onebit_bench=0
  echo "llama_cpp_bench: $ONEBIT_BINARY has no 'bench' command (the inference runtime is not in this build): onebit rows skipped" >&2
fi
mkdir -p "$WORK" "$RESULT_DIR"
threads_csv=$(echo $THREADS | tr ' ' ',')
load1() { cut -d' ' -f1 /proc/loadavg; }

config_of() {
  case $1 in
    2b4t) echo "$repo/configs/bitnet-2b-gguf.json" ;;
    *) echo "$repo/bench/configs/$1-bitnet.json" ;;
  esac
}

# One llama-bench run of one GGUF file (llama.cpp's, or bitnet.cpp's of 2024-10: the same JSON fields,
# avg_ts where samples_ts is missing): every thread count, pp and tg, one row each into $samples.
# Args: engine name, llama-bench binary, GGUF file, model, type, round.
llama_bench_round() {
  local engine=$1 bin=$2 gguf=$3 m=$4 t=$5 round=$6 load
  load=$(load1)
  echo "== $(date -u +%T) $m round $round: $engine $t (load $load)" >&2
  "$bin" -m "$gguf" -p "$PP" -n "$TG" -t "$threads_csv" -r 1 -o json 2>"${gguf%.gguf}.log" \
    | jq -c --arg e "$engine" --arg m "$m" --arg t "$t" --argjson round "$round" --argjson load "$load" '.[] | {
          engine: $e, model: $m, type: $t, lm_head: "f16 (GGUF token_embd, tied)", threads: .n_threads,
          test: (if .n_prompt > 0 then "pp\(.n_prompt)" else "tg\(.n_gen)" end), round: $round,
          load_average: $load, tokens_per_s: (if .samples_ts then .samples_ts[0] else .avg_ts end),
          model_bytes: .model_size, build: .build_commit}' >> "$samples"
}

# The files one model needs: one job per type, bitnet.cpp's I2_S requantized after the TQ2_0 export
# and its TL2 converted after the F16 export, in the same job.
# Args: model.
export_jobs() {
  local m=$1 cfg t gguf
  cfg=$(config_of "$m")
  local types=" $EXPORT_TYPES "
  local b need_tq2=0 need_f16=0
  for b in $bitnet_types; do
    if [[ $b == tl2 ]]; then need_f16=1; else need_tq2=1; fi
  done
  [[ $need_tq2 == 1 && $types != *" tq2_0 "* ]] && types="$types tq2_0 "
  [[ $need_f16 == 1 && $types != *" f16 "* ]] && types="$types f16 "
  for t in $types; do
    (
      gguf=$WORK/$m-$t.gguf
      if [[ ! -s $gguf || $cfg -nt $gguf ]]; then
        "$ONEBIT_BINARY" export --format gguf --type "$t" --random-weights "$SEED" "$cfg" "$gguf" > "$WORK/$m-$t-export.log" 2>&1 ||
          { cat "$WORK/$m-$t-export.log" >&2; exit 1; }
      fi
      if [[ $t == f16 && $need_f16 == 1 ]]; then
        out=$WORK/$m-bitnet-tl2.gguf
        if [[ ! -s $out || $gguf -nt $out || $BITNET_CPP_TL2_SRC/include/kernel_config.ini -nt $out ]]; then
          "$TL2_PYTHON" "$here/bitnet_tl2_gguf.py" "$BITNET_CPP_TL2_SRC" "$gguf" "$out" > "$WORK/$m-bitnet-tl2-convert.log" 2>&1 ||
            { tail -n 5 "$WORK/$m-bitnet-tl2-convert.log" >&2; exit 1; }
        fi
      fi
      if [[ $t == tq2_0 && $need_tq2 == 1 ]]; then
        for b in $bitnet_types; do
          [[ $b != tl2 ]] || continue
          out=$WORK/$m-bitnet-$b.gguf
          if [[ ! -s $out || $gguf -nt $out ]]; then
            "$BITNET_CPP_DIR/bin/llama-quantize" --allow-requantize "$gguf" "$out.tmp" "$(echo "$b" | tr a-z A-Z)" 1 \
              > "$WORK/$m-bitnet-$b-quantize.log" 2>&1 || { tail -n 5 "$WORK/$m-bitnet-$b-quantize.log" >&2; exit 1; }
            mv "$out.tmp" "$out"
          fi
        done
      fi
    ) &
  done
}

result=$RESULT_DIR/llama_cpp_$CPU_TAG$RESULT_SUFFIX.json
# One row per engine/model/type/LM head/threads/test: the median of the rounds' samples (the lower
# middle one for an even count), the samples and the load averages they ran at; then the table:
# every row, and onebit's ratio to the best llama.cpp ternary type of the same model/test/threads.
write_result() {
  jq -s --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')" --arg date "$(date -u +%FT%TZ)" \
    --argjson rounds "$ROUNDS" '{cpu: $cpu, date: $date, rounds: $rounds,
      load_average: {min: (map(.load_average) | min), max: (map(.load_average) | max)},
      rows: (group_by([.engine, .model, .type, .lm_head, .threads, .test]) | map(
        (map(.tokens_per_s) | sort) as $s
        | (.[0] | del(.round, .load_average, .tokens_per_s, .bandwidth_fraction))
          + {tokens_per_s: $s[(($s | length) - 1) / 2 | floor], samples: map(.tokens_per_s),
             load_averages: map(.load_average)}
          + (if .[0].bandwidth_fraction then {bandwidth_fraction: (map(.bandwidth_fraction) | sort
               | .[((length - 1) / 2 | floor)])} else {} end)))}' "$samples" > "$result.tmp"
  mv "$result.tmp" "$result"
  jq -r '.rows as $rows
    | ["model", "engine", "type", "lm head", "threads", "test", "tok/s", "bandwidth fraction", "onebit / best llama.cpp"],
      ($rows[] | . as $r
        | ([$rows[] | select(.engine == "llama.cpp" and .model == $r.model and .test == $r.test
                             and .threads == $r.threads) | .tokens_per_s] | max) as $best
        | [$r.model, $r.engine, $r.type, $r.lm_head, $r.threads, $r.test, ($r.tokens_per_s * 100 | round / 100),
           (if $r.bandwidth_fraction then ($r.bandwidth_fraction * 100 | round | tostring) + "%" else "" end),
           (if $r.engine == "onebit" and $best then ($r.tokens_per_s / $best * 100 | round / 100) else "" end)])
    | @tsv' "$result" | if command -v column > /dev/null; then column -t -s $'\t'; else cat; fi
  jq -r '"load average over the run: \(.load_average.min)-\(.load_average.max)"' "$result"
}

samples=$WORK/samples.jsonl
[[ ${KEEP_SAMPLES:-0} == 1 ]] || : > "$samples"
touch "$samples"
if [[ -n $EXPORT_TYPES || -n $bitnet_types ]]; then
  echo "== $(date -u +%T) exporting the GGUF files of: $MODELS (load $(load1))" >&2
  for m in $MODELS; do export_jobs "$m"; done
  export_failed=0
  for job in $(jobs -p); do wait "$job" || export_failed=1; done
  [[ $export_failed == 0 ]] || { echo "llama_cpp_bench: an export failed (logs in $WORK)" >&2; exit 1; }
fi
for m in $MODELS; do
  cfg=$(config_of "$m")
  for ((round = 1; round <= ROUNDS; round++)); do
    if [[ $have_onebit_bench == 1 ]]; then
      for head in $ONEBIT_LM_HEAD; do
        out=$WORK/$m-onebit-$head.json
        load=$(load1)
        echo "== $(date -u +%T) $m round $round: onebit, --lm-head $head (load $load)" >&2
        "$ONEBIT_BINARY" bench --model "random:$cfg" -p "$PP" -n "$TG" -t "$threads_csv" -r 1 \
          --lm-head "$head" ${ONEBIT_BENCH_ARGS:-} --json-out "$out" >&2
        jq -c --arg m "$m" --argjson round "$round" --argjson load "$load" '. as $r | .rows[] | {engine: "onebit",
              model: $m, type: $r.ternary_layout, lm_head: $r.lm_head, threads, test, round: $round,
              load_average: $load, tokens_per_s, bandwidth_fraction, weight_bytes_per_token: $r.weight_bytes_per_token}' \
          "$out" >> "$samples"
        write_result > /dev/null
      done
    fi
    for t in $bitnet_types; do
      llama_bench_round bitnet.cpp "$(bitnet_bench_bin "$t")" "$WORK/$m-bitnet-$t.gguf" "$m" "$t" "$round"
      write_result > /dev/null
    done
    for t in $TYPES; do
      llama_bench_round llama.cpp "$bench_bin" "$WORK/$m-$t.gguf" "$m" "$t" "$round"
      write_result > /dev/null
    done
  done
  write_result
  echo "wrote $result" >&2
done
