#!/usr/bin/env bash
# Run here (Debian, with apt) before sending the tree to a GPU machine that has no package registry:
# downloads the Debian packages onebit builds against that such an image lacks (PCRE2, utf8proc,
# simdjson, the Parquet codecs snappy / lz4 / brotli) and unpacks them into .deps/root (git-ignored).
# scripts/gpu-check.sh picks them up.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .deps && mkdir -p .deps/debs .deps/root
(cd .deps/debs && apt-get download -qq libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 \
  libutf8proc-dev libutf8proc2 libsimdjson-dev libsimdjson14 libsnappy-dev libsnappy1v5 liblz4-dev liblz4-1 \
  libbrotli-dev libbrotli1)
# The Hub client (src/onebit/hub): libcurl with OpenSSL, and libcrypto for sha256.
# libssh2 and OpenLDAP 2.5 are libcurl4's direct dependencies that Ubuntu images lack (seen on the GPU machine).
(cd .deps/debs && apt-get download -qq libcurl4-openssl-dev libcurl4 libssl-dev libssl3 libssh2-1 libldap-2.5-0)
for f in .deps/debs/*.deb; do dpkg -x "$f" .deps/root; done
rm -rf .deps/debs
# onebit links the shared libraries: the static archives (libcrypto.a alone is 9 MB) and the docs would
# be half of .deps, and a device call carries 64 MiB in all, the tracked tree (~30 MB) and .peer with it.
find .deps/root -name '*.a' -delete
rm -rf .deps/root/usr/share/doc .deps/root/usr/share/man .deps/root/usr/share/lintian
du -sh .deps
