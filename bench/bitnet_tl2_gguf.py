#!/usr/bin/env python3
"""Rewrites an onebit F16 GGUF export as bitnet.cpp's TL2 GGUF (for bench/llama_cpp_bench.sh).

    bitnet_tl2_gguf.py TL2_SRC IN_F16.gguf OUT_TL2.gguf

bitnet.cpp makes TL2 files only in Python, from an HF checkpoint (utils/convert-hf-to-gguf-bitnet.py
--outtype tl2, which wants a BitnetForCausalLM dir with a SentencePiece tokenizer); its llama-quantize
has no TL2 quantizer (ggml_quantize_chunk has no TL2 case; it keeps TL1/TL2 tensors it is given).
So this script takes `onebit export --format gguf --type f16` (ternary codes -1/0/1 as F16 plus one
F32 `<name>.scale` per linear weight, llama.cpp's bitnet architecture) and lays each linear weight out
with that converter's own preprocess_weights_tl2 (imported from TL2_SRC, not copied), for the tiles
in TL2_SRC/include/kernel_config.ini, i.e. the kernels bench/build_bitnet_cpp_tl2.sh compiled.

The tensor bytes are what bitnet.cpp's loader expects of a TL2 tensor: ggml_nbytes(TL2) is the packed
size rounded up to 32 bytes plus 32, and ggml_bitnet_transform_tensor reads the per-tensor F32 scale
at the rounded-up offset; the scale is put there (codes times scale is the weight, so the TL2 scale is
the export's .scale). A TL2 build does not load `.scale` tensors (llama.cpp's bitnet loader creates
them only without TL1/TL2), and a tensor it does not create is an error, so they are dropped. The rest
(metadata, F16 embedding, F32 norms) is copied unchanged.
"""
import importlib.util
import os
import sys

import numpy as np
import gguf

GGML_TYPE_TL2 = 39  # ggml.h of bitnet.cpp's llama.cpp fork; not in upstream gguf-py
LINEAR = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


def load_tl2_layout(src):
    """bitnet.cpp's converter, for preprocess_weights_tl2 (which reads include/kernel_config.ini from
    the working directory, hence the chdir)."""
    # It imports gguf at load and names the TL1/TL2 types, which only the fork's gguf-py has; that
    # gguf-py's reader does not run on numpy 2, so it is swapped in for the import alone and this
    # script reads and writes with the installed gguf.
    own = {n: m for n, m in sys.modules.items() if n == "gguf" or n.startswith("gguf.")}
    for n in own:
        del sys.modules[n]
    path = list(sys.path)
    sys.path[:0] = [os.path.join(src, "3rdparty", "llama.cpp", "gguf-py"), os.path.join(src, "utils")]
    try:
        spec = importlib.util.spec_from_file_location("bitnet_convert", os.path.join(src, "utils", "convert-hf-to-gguf-bitnet.py"))
        conv = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(conv)
    finally:
        for n in [n for n in sys.modules if n == "gguf" or n.startswith("gguf.")]:
            del sys.modules[n]
        sys.modules.update(own)
        sys.path[:] = path
    os.chdir(src)
    return conv.preprocess_weights_tl2


def tl2_bytes(m, k):
    """ggml_nbytes of a TL2 tensor in the fork's ggml.c: the packed size, rounded up to 32, and 32 more."""
    n = (k - 256) * m // 3 * 5 // 8 + 256 * m // 2 * 4 // 8
    if n % 32:
        n += 32 - n % 32
    return n, n + 32


class Writer(gguf.GGUFWriter):
    """gguf's writer refuses empty arrays, and onebit's byte-level tokenizer has no merges
    (tokenizer.ggml.merges is an empty string array), which llama.cpp's BPE loader wants present."""

    def _pack_val(self, val, vtype, add_vtype, sub_type=None):
        if vtype == gguf.GGUFValueType.ARRAY and len(val) == 0:
            return (self._pack("I", vtype) if add_vtype else b"") + self._pack("I", sub_type) + self._pack("Q", 0)
        return super()._pack_val(val, vtype, add_vtype, sub_type)


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    src, inp, out = (os.path.abspath(a) for a in sys.argv[1:])
    preprocess = load_tl2_layout(src)
    reader = gguf.GGUFReader(inp)
    arch = reader.fields["general.architecture"].contents()
    writer = Writer(out + ".tmp", arch)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue
        vtype = field.types[0]
        if field.name == "general.file_type":
            writer.add_key_value(field.name, GGML_TYPE_TL2, vtype)  # LLAMA_FTYPE_MOSTLY_TL2 = 39 too
            continue
        sub = None
        if vtype == gguf.GGUFValueType.ARRAY:  # parts: key length, key, type, item type, count, items
            sub = gguf.GGUFValueType(int(field.parts[3][0]))
        writer.add_key_value(field.name, field.contents(), vtype, sub)

    tensors = {t.name: t for t in reader.tensors}
    converted = 0
    for t in reader.tensors:
        base = t.name.rsplit(".", 1)[0]
        if t.name.endswith(".scale") and base.split(".")[-1] in LINEAR:
            continue
        if t.name.endswith(".weight") and base.split(".")[-1] in LINEAR:
            if t.tensor_type != gguf.GGMLQuantizationType.F16:
                raise SystemExit(f"bitnet_tl2_gguf: {inp}: {t.name} is {t.tensor_type.name}, not F16 (export with --type f16)")
            codes = np.asarray(t.data, dtype=np.float32)  # [out, in] = [M, K]
            if not np.all(np.isin(codes, (-1.0, 0.0, 1.0))):
                raise SystemExit(f"bitnet_tl2_gguf: {inp}: {t.name} holds values other than -1, 0, 1")
            scale = float(np.asarray(tensors[base + ".scale"].data, dtype=np.float32).reshape(-1)[0])
            m, k = codes.shape
            packed = preprocess(codes)
            rounded, total = tl2_bytes(m, k)
            data = np.zeros(total, dtype=np.uint8)
            data[: packed.size] = packed
            data[rounded: rounded + 4] = np.frombuffer(np.float32(scale).tobytes(), dtype=np.uint8)
            writer.add_tensor(t.name, data.view(np.int8), raw_shape=(m, k), raw_dtype=GGML_TYPE_TL2)
            converted += 1
        else:
            writer.add_tensor(t.name, np.asarray(t.data), raw_shape=list(reversed([int(n) for n in t.shape])),
                              raw_dtype=t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(out + ".tmp", out)
    print(f"bitnet_tl2_gguf: wrote {out} ({converted} TL2 tensors, {os.path.getsize(out) / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
