#!/usr/bin/env python3
"""Oracle for onebit's safetensors files, using the Hugging Face `safetensors` package.

  check_safetensors.py check FILE REFERENCE.json
      Loads FILE with safetensors.numpy.load_file and compares every tensor (dtype, shape, exact
      values) and the __metadata__ with REFERENCE.json:
        {"metadata": {...}, "tensors": {"name": {"dtype": "F32", "shape": [..], "values": [..]}}}
      Exit 0 when equal, 1 with a message naming the first difference.
  check_safetensors.py golden OUT
      Writes the committed golden fixture tests/fixtures/formats/golden.safetensors (the values
      are mirrored in tests/formats/safetensors_test.cpp).
"""
import json
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

NP = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
      "I16": np.int16, "I8": np.int8, "U8": np.uint8, "U16": np.uint16, "U32": np.uint32,
      "U64": np.uint64, "BOOL": np.bool_}


def golden_tensors():
    return {
        "weight": (np.arange(6, dtype=np.float32) * 0.25 - 0.5).reshape(2, 3),
        "bias": np.array([1.0, -2.0], dtype=np.float16),
        "ids": np.array([1, -2, 3000000000], dtype=np.int64),
        "mask": np.array([0, 1, 2, 255], dtype=np.uint8),
        "codes": np.array([[-1, 0], [1, -128]], dtype=np.int8),
        "scale": np.array(3.5, dtype=np.float32),
        "empty": np.zeros((0,), dtype=np.float32),
    }


def check(path, ref_path):
    with open(ref_path) as f:
        ref = json.load(f)
    got = load_file(path)
    with safe_open(path, framework="np") as f:
        meta = f.metadata() or {}
    if meta != ref.get("metadata", {}):
        print(f"{path}: metadata {meta} != reference {ref.get('metadata', {})}")
        return 1
    if set(got) != set(ref["tensors"]):
        print(f"{path}: tensor names {sorted(got)} != reference {sorted(ref['tensors'])}")
        return 1
    for name, r in ref["tensors"].items():
        a = got[name]
        want = np.array(r["values"], dtype=NP[r["dtype"]]).reshape(r["shape"])
        if a.dtype != want.dtype or list(a.shape) != list(r["shape"]):
            print(f"{path}: tensor {name}: {a.dtype}{list(a.shape)} != reference {want.dtype}{r['shape']}")
            return 1
        if a.tobytes() != want.tobytes():
            bad = np.argwhere(a.reshape(-1) != want.reshape(-1))
            i = int(bad[0][0]) if len(bad) else 0
            print(f"{path}: tensor {name}: element {i} is {a.reshape(-1)[i]!r}, reference {want.reshape(-1)[i]!r}")
            return 1
    print(f"{path}: {len(got)} tensors match the reference")
    return 0


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "check":
        return check(sys.argv[2], sys.argv[3])
    if len(sys.argv) == 3 and sys.argv[1] == "golden":
        save_file(golden_tensors(), sys.argv[2], metadata={"format": "pt"})
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
