#!/usr/bin/env bash
# stack-stream data throughput: serves tests/fixtures/hub-fixture with tests/hub/fake_hub.py on
# 127.0.0.1 and runs build/bench/bench_stream against it, once per tokenizer.
#   bench/stream_throughput.sh [build-dir] [tokens]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
tokens=${2:-20000000}
work=$(mktemp -d)
trap 'kill "$hub_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
token=hf_benchTOKEN
python3 "$root/tests/hub/fake_hub.py" --root "$root/tests/fixtures/hub-fixture" --repo bench/fake-stack \
  --token "$token" > "$work/ports" &
hub_pid=$!
for _ in $(seq 100); do [ -s "$work/ports" ] && break; sleep 0.1; done
read -r _ main_port _ < "$work/ports"
export HF_ENDPOINT="http://127.0.0.1:$main_port" HF_TOKEN="$token"
for tok in byte "$root/tests/fixtures/tokenizers/gpt2/tokenizer.json"; do
  "$build/bench/bench_stream" bench/fake-stack "$tok" "$tokens" "${THREADS:-2}"
done
