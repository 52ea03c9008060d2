#!/usr/bin/env bash
# A/B of onebit builds and switches in one GPU call. Machines of one kind differ by ~2% in training throughput,
# so only variants timed in the same call compare; this runs each variant through bench/gpu_train_throughput.sh
# (onebit only, segments 0, the same shapes and flags), interleaved over ROUNDS rounds so that drift of the
# machine spreads over all of them, then prints each variant's runs, their median and its ratio to the first
# variant's, and writes bench/results/$RESULT.json.
#
#   bench/gpu_ab.sh VARIANT...     (env: CONFIGS ["125m"], ROUNDS [2], STEPS [20], WARMUP [3], RESULT [gpu_ab],
#                                         ONEBIT_BINARY: the default binary)
#   VARIANT: LABEL[:NAME=VALUE[,NAME=VALUE...]][@BINARY]
#   e.g.     bench/gpu_ab.sh base 'pairs-off:ONEBIT_CUDA_QK_PAIRS=0' 'main@/tmp/onebit_main'
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
PYTHON=${PYTHON:-python3}
CONFIGS=${CONFIGS:-125m}
ROUNDS=${ROUNDS:-2}
RESULT=${RESULT:-gpu_ab}
THROUGHPUT=${THROUGHPUT:-$here/gpu_train_throughput.sh}  # the runner (tests put a stand-in here)
[[ $# -ge 1 ]] || { echo "usage: gpu_ab.sh LABEL[:NAME=VALUE,...][@BINARY] ..." >&2; exit 2; }
labels=() envs=() bins=()
for spec in "$@"; do
  bin=${ONEBIT_BINARY:-}
  [[ $spec == *@* ]] && bin=${spec#*@} && spec=${spec%%@*}
  label=${spec%%:*} env=
  [[ $spec == *:* ]] && env=${spec#*:}
  [[ -n $label && $label != *[!A-Za-z0-9._-]* ]] || { echo "gpu_ab: bad label in '$spec' (letters, digits, . _ -)" >&2; exit 2; }
  for kv in ${env//,/ }; do
    [[ $kv =~ ^[A-Z_][A-Z0-9_]*=.*$ ]] || { echo "gpu_ab: '$kv' in '$spec' is not NAME=VALUE" >&2; exit 2; }
  done
  [[ -z $bin || -x $bin ]] || { echo "gpu_ab: '$bin' ($label) is not an executable" >&2; exit 2; }
  labels+=("$label") envs+=("$env") bins+=("$bin")
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for round in $(seq 1 "$ROUNDS"); do
  for i in "${!labels[@]}"; do
    label=${labels[$i]}
    tag="_ab_${label}_$round"
    # shellcheck disable=SC2086  # the variant's NAME=VALUE words
    if env ${envs[$i]//,/ } ${bins[$i]:+ONEBIT_BINARY=${bins[$i]}} NO_PEER=1 SEGMENTS=0 CONFIGS="$CONFIGS" \
      RESULT="$tag" bash "$THROUGHPUT" > "$work/$tag.log" 2>&1; then
      mv "$repo/bench/results/$tag.json" "$work/$tag.json"
    else
      echo "gpu_ab: $label, round $round failed (log: the last lines)" >&2
      tail -n 5 "$work/$tag.log" >&2
      rm -f "$repo/bench/results/$tag.json"
    fi
    echo "round $round $label: $(grep -E 'seg 0: onebit' "$work/$tag.log" | awk '{print $1, $5}' | tr '\n' ' ')" >&2
  done
done
"$PYTHON" - "$work" "$repo/bench/results/$RESULT.json" "$ROUNDS" "$CONFIGS" "${labels[@]}" -- "${envs[@]/#/=}" <<'PY'
import datetime, json, os, statistics, sys
work, out, rounds, configs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split()
rest = sys.argv[5:]
cut = rest.index("--")
labels, envs = rest[:cut], [e[1:] for e in rest[cut + 1:]]
variants, gpu = [], None
for label, env in zip(labels, envs):
    runs = {c: [] for c in configs}
    for r in range(1, rounds + 1):
        f = os.path.join(work, f"_ab_{label}_{r}.json")
        if not os.path.exists(f):
            continue
        d = json.load(open(f))
        gpu = gpu or d.get("gpu")
        for row in d["rows"]:
            runs[row["config"]].append(row["onebit_tok_s"])
    variants.append(dict(label=label, env=env, tok_s=runs,
                         median={c: statistics.median(v) if v else None for c, v in runs.items()}))
base = variants[0]["median"]
for v in variants:
    v["ratio_to_first"] = {c: round(m / base[c], 4) if m and base[c] else None for c, m in v["median"].items()}
    for c in configs:
        runs = ", ".join(f"{x:,}" for x in v["tok_s"][c]) or "no run"
        m = v["median"][c]
        print(f"{c:5s} {v['label']:<20s} median {m or 0:>10,.0f} tok/s  x{v['ratio_to_first'][c] or 0:.4f}  ({runs})"
              + (f"  [{v['env']}]" if v["env"] else ""))
json.dump(dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes"), gpu=gpu,
               rounds=rounds, variants=variants), open(out + ".tmp", "w"), indent=1)
os.replace(out + ".tmp", out)
print("wrote", out)
PY
