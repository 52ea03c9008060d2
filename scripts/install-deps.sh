#!/usr/bin/env bash
# Installs the Debian packages onebit builds against (DESIGN.md "Dependencies"). Idempotent: does
# nothing when everything is already there, so the README commands stay fast on a second run.
set -euo pipefail
pkgs=(cmake ninja-build g++ pkg-config libopenblas-dev libcli11-dev nlohmann-json3-dev libpcre2-dev
      libutf8proc-dev libzstd-dev zlib1g-dev libsimdjson-dev libgtest-dev libgmock-dev libbenchmark-dev
      libsnappy-dev liblz4-dev libbrotli-dev)
pkgs+=(libcurl4-openssl-dev libssl-dev)  # the Hub client: HTTP and sha256 (src/onebit/hub)
pkgs+=(libopenmpi-dev openmpi-bin)  # data-parallel training on CPUs: mpirun and the MPI communicator (src/onebit/dist)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "onebit: installing ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
