#!/usr/bin/env bash
# Installs the small Python oracles the tests compare onebit against (numpy, safetensors, Hugging Face
# tokenizers, gguf; never torch) into .venv-oracles/ in the checkout, and prints the venv's python path.
# Tests find it through ONEBIT_TEST_PYTHON (scripts/test.sh exports it); without it they skip.
# Idempotent: a venv that already holds the pinned versions is left as it is (a second run takes ~1 s).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${ONEBIT_ORACLE_VENV:-$PWD/.venv-oracles}
pins=(numpy==2.4.6 safetensors==0.8.0 tokenizers==0.23.3 gguf==0.19.0)
stamp="$venv/.onebit-pins"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${pins[*]}" ]; then
  echo "$venv/bin/python"
  exit 0
fi
py=$(command -v python3 || true)
if [ -z "$py" ] || ! "$py" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "onebit: installing python3-venv for the test oracles" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  py=$(command -v python3)
fi
rm -rf "$venv"
"$py" -m venv "$venv" >&2
"$venv/bin/python" -m pip install -q --disable-pip-version-check "${pins[@]}" >&2
"$venv/bin/python" -c 'import numpy, safetensors, tokenizers, gguf' >&2
echo "${pins[*]}" > "$stamp"
echo "$venv/bin/python"
