#!/usr/bin/env bash
# Checks that the peer binaries bench/build_peer_binaries.sh put in PEER_DIR (default .peer) will run
# on the GPU machine's Xeon (Sapphire Rapids class, Ubuntu 24.04: glibc 2.39, gcc 13's libstdc++ and
# libgomp or newer), not only here:
#   - each starts with an empty environment (no LD_LIBRARY_PATH) and prints its usage;
#   - it needs no library beyond libc, libm, libstdc++, libgcc_s and an OpenMP runtime (libgomp, or
#     the carried libomp.so.5 for bitnet.cpp; the carried jq its carried libjq and libonig), and no
#     symbol version above GLIBC_2.39 / GLIBCXX_3.4.32;
#   - no RPATH/RUNPATH but $ORIGIN/../lib (bitnet.cpp's carried libomp);
#   - no instruction from an ISA extension a Sapphire Rapids Xeon lacks. This machine (Zen 5) also
#     has AVX-512, so running here proves nothing about that: the disassembly is searched for the
#     mnemonics of VP2INTERSECT, SSE4a, FMA4, XOP, TBM and AMD's own instructions (which Zen has and
#     the Xeon does not), of Xeon Phi's AVX-512 ER/PF/4FMAPS/4VNNIW, and of what came after
#     Sapphire Rapids (AVX-VNNI-INT8/INT16, AVX-NE-CONVERT, AMX-FP16/COMPLEX, SHA512, SM3, SM4,
#     CMPccXADD, PREFETCHI, RAO-INT). The build's flags are the first line of defence (no
#     -march=native, each extension named); this checks what the compiler actually emitted.
#   bench/check_peer_binaries.sh [PEER_DIR]
set -euo pipefail
PEER_DIR=${1:-$(cd "$(dirname "$0")/.." && pwd)/.peer}
bins=("$PEER_DIR/llama.cpp/bin/llama-bench" "$PEER_DIR/bitnet.cpp/bin/llama-bench"
      "$PEER_DIR/bitnet.cpp/bin/llama-quantize" "$PEER_DIR/bitnet.cpp/lib/libomp.so.5"
      "$PEER_DIR/tools/bin/jq" "$PEER_DIR/tools/lib/libjq.so.1" "$PEER_DIR/tools/lib/libonig.so.5")
deny='^(vp2intersect[dq]|extrq|insertq|movnts[sd]|vfn?m(add|sub)(sub)?(ps|pd|ss|sd)|vfmaddsub(ps|pd)|vfmsubadd(ps|pd)'
deny+='|vpperm|vpcmov|vprot[bwdq]|vpsha[bwdq]|vpshl[bwdq]|vfrcz(ps|pd|ss|sd)|vpcom(lt|le|gt|ge|eq|neq|false|true)?u?[bwdq]|vpmacss?[dw].*|vpmadcss?wd'
deny+='|vphaddu?(bw|bd|bq|wd|wq|dq)|vphsub(bw|wd|dq)|vpermil2p[sd]|blcfill|blci|blcic|blcmsk|blcs|blsfill|blsic|t1mskc|tzmsk'
deny+='|clzero|rdpru|monitorx|mwaitx|v4f?n?madd(ps|ss)|vp4dpwssds?|vexp2p[sd]|vrcp28.*|vrsqrt28.*|vgatherpf.*|vscatterpf.*'
deny+='|vpdpb(ss|su|uu)ds?|vpdpw(su|us|uu)ds?|vbcstne.*|vcvtne[eo].*|tdpfp16ps|tcmmimfp16ps|tcmmrlfp16ps|vsha512.*'
deny+='|vsm3.*|vsm4.*|cmp[a-z]*xadd|prefetchit[01]|aadd|aand|aor|axor)$'
fail=0
bad() { echo "check_peer_binaries: $*" >&2; fail=1; }
# Without binutils (an image may lack them) only the start checks run; the rest are properties of the
# files, checked where they were built.
static=1
command -v readelf > /dev/null && command -v objdump > /dev/null ||
  { static=0; echo "check_peer_binaries: no readelf/objdump here: only checking that the binaries start"; }
mnemonics_of() {  # binary → "count mnemonic" lines
  objdump -d --no-show-raw-insn "$1" | awk -F'\t' 'NF >= 2 { split($2, w, " "); print w[1] }' | sort | uniq -c
}
# The ISA search checks itself first: instructions planted in an object file (VP2INTERSECT, SSE4a,
# AMD's CLZERO, AVX-VNNI-INT8; and VNNI's vpdpbusd, which is allowed) must come out as denied, or
# this objdump prints something the search does not read: then its "ok" would mean nothing, which is
# said, without failing the check (the binaries are the ones checked where they were built).
if ((static)) && command -v as > /dev/null; then
  tmp=$(mktemp -d)
  printf '%s\n' .text 'vp2intersectd %zmm1, %zmm2, %k2' 'extrq $1, $2, %xmm0' clzero 'vpdpbssd %ymm1, %ymm2, %ymm3' \
    'vpdpbusd %zmm1, %zmm2, %zmm3' > "$tmp/planted.s"
  if as "$tmp/planted.s" -o "$tmp/planted.o" 2> /dev/null; then
    planted=$(mnemonics_of "$tmp/planted.o" | awk '{print $2}' | grep -E "$deny" | sort | tr '\n' ' ' || true)
    [[ $planted == "clzero extrq vp2intersectd vpdpbssd " ]] ||
      echo "check_peer_binaries: warning: the ISA search misreads this objdump (planted instructions came out as '$planted'): its result below means nothing"
  fi
  rm -rf "$tmp"
fi
for f in "${bins[@]}"; do
  [[ -f $f ]] || { bad "missing $f (run bench/build_peer_binaries.sh)"; continue; }
  name=${f#"$PEER_DIR"/}
  if [[ $name == tools/bin/jq ]]; then  # the carried jq, with its carried libraries
    [[ $(env -i LD_LIBRARY_PATH="$PEER_DIR/tools/lib" "$f" -n '1 + 1' 2>&1) == 2 ]] || bad "$name does not run here"
  elif [[ $f == */bin/* ]]; then
    # llama-quantize exits 1 after its usage; a loader failure (missing library, bad ISA) would not print it.
    usage=$(env -i "$f" --help 2>&1 || true)
    grep -qi usage <<< "$usage" || bad "$name does not start here: $(head -n 2 <<< "$usage")"
  fi
  ((static)) || continue
  needed=$(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
  for lib in $needed; do
    case $lib in
      libc.so.6 | libm.so.6 | libstdc++.so.6 | libgcc_s.so.1 | libgomp.so.1 | ld-linux-x86-64.so.2) ;;
      libomp.so.5) [[ $name == bitnet.cpp/bin/* ]] || bad "$name needs libomp.so.5" ;;
      libjq.so.1 | libonig.so.5) [[ $name == tools/* ]] || bad "$name needs $lib" ;;
      *) bad "$name needs $lib, which the Xeon image may lack" ;;
    esac
  done
  paths=$(readelf -d "$f" | sed -n 's/.*(R\(UN\)\{0,1\}PATH).*\[\(.*\)\]/\2/p')
  if [[ $name == bitnet.cpp/bin/* ]]; then
    [[ $paths == '$ORIGIN/../lib' ]] || bad "$name: runpath '$paths', expected \$ORIGIN/../lib"
  else
    [[ -z $paths ]] || bad "$name has a library path: $paths"
  fi
  versions=$(objdump -T "$f" | grep -oE '\b(GLIBC|GLIBCXX)_[0-9.]+' | sort -u -V)
  glibc=$(grep '^GLIBC_' <<< "$versions" | tail -n 1 || true)
  glibcxx=$(grep '^GLIBCXX_' <<< "$versions" | tail -n 1 || true)
  [[ -z $glibc || $(printf '%s\n' "$glibc" GLIBC_2.39 | sort -V | tail -n 1) == GLIBC_2.39 ]] || bad "$name needs $glibc"
  [[ -z $glibcxx || $(printf '%s\n' "$glibcxx" GLIBCXX_3.4.32 | sort -V | tail -n 1) == GLIBCXX_3.4.32 ]] ||
    bad "$name needs $glibcxx"
  mnemonics=$(mnemonics_of "$f")
  denied=$(awk '{print $2}' <<< "$mnemonics" | grep -E "$deny" | tr '\n' ' ' || true)
  [[ -z $denied ]] || bad "$name uses instructions a Sapphire Rapids Xeon lacks: $denied"
  zmm=$(objdump -d --no-show-raw-insn "$f" | grep -c '%zmm' || true)
  vnni=$(awk '$2 ~ /^vpdpbusds?$/ {n += $1} END {print n + 0}' <<< "$mnemonics")
  echo "$name: needs $needed; ${paths:+runpath $paths; }max $glibc ${glibcxx:-(no libstdc++)}; $zmm zmm instructions, $vnni vpdpbusd; no denied ISA: ${denied:-ok}"
done
[[ $fail == 0 ]] && echo "check_peer_binaries: all ok ($(du -sh "$PEER_DIR" | cut -f1) in $PEER_DIR)"
exit "$fail"
