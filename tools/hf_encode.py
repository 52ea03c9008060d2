#!/usr/bin/env python3
"""Encodes and decodes texts with Hugging Face `tokenizers`: the live oracle for tokenizer.json files
that onebit writes (data_tokenizer_test, data_bpe_trainer_test).

  <python> tools/hf_encode.py TOKENIZER_JSON TEXTS_JSONL OUTPUT_JSONL

TEXTS_JSONL holds one {"text": ...} per line; OUTPUT_JSONL gets, per text, {"ids", "decoded",
"decoded_skip_special"} (decode of the ids keeping and skipping special tokens).
"""
import json
import sys

from tokenizers import Tokenizer


def main():
    tok = Tokenizer.from_file(sys.argv[1])
    with open(sys.argv[2], encoding="utf-8") as f, open(sys.argv[3], "w", encoding="utf-8") as out:
        for line in f:
            if not line.strip():
                continue
            ids = tok.encode(json.loads(line)["text"]).ids
            out.write(json.dumps({"ids": ids,
                                  "decoded": tok.decode(ids, skip_special_tokens=False),
                                  "decoded_skip_special": tok.decode(ids, skip_special_tokens=True)},
                                 ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
