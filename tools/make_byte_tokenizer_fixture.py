#!/usr/bin/env python3
"""Records what Hugging Face `tokenizers` does with onebit's byte tokenizer.json.

Run once (needs the oracle venv: bash scripts/install-test-oracles.sh); the ctest data_byte_tokenizer compares onebit against the output:
  .venv-oracles/bin/python tools/make_byte_tokenizer_fixture.py
Input:  tests/fixtures/data/byte_tokenizer.json (written by onebit's make_byte_tokenizer()->to_json())
Output: tests/fixtures/data/byte_tokenizer_cases.jsonl, one {"text", "ids", "decoded"} per line.
"""
import json
import pathlib

from tokenizers import Tokenizer

root = pathlib.Path(__file__).resolve().parent.parent
fixtures = root / "tests" / "fixtures" / "data"
tok = Tokenizer.from_str((fixtures / "byte_tokenizer.json").read_text(encoding="utf-8"))

texts = [
    "Hello, world!",
    "  leading spaces and trailing  ",
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n",
    "tabs\tand\r\nCRLF\x0bvertical\x0cform feed",
    "naïve café — “quotes” ‘single’ … ©®™",
    "日本語のテキスト、中文文本，한국어 텍스트",
    "emoji: 😀🎉👩‍👩‍👧‍👦 flags 🇩🇪🇯🇵",
    "combining: e\u0301 a\u0308 o\u0302, Zalgo: Z\u0351\u0367\u0300a\u0358l\u0350g\u0364o",
    "RTL: עברית العربية",
    "control bytes: \x00\x01\x02\x1f\x7f end",
    "doc one<|endoftext|>doc two <|endoftext|><|endoftext|> three",
    "def f(x):\n    return x ** 2  # comment\n",
    "",
    " ",
    "\n\n\n",
    "math: ∑ᵢ xᵢ² ≤ ∞, √2 ≈ 1.414",
    "almost special: <|endoftext| and |endoftext|>",
]

with open(fixtures / "byte_tokenizer_cases.jsonl", "w", encoding="utf-8") as f:
    for t in texts:
        enc = tok.encode(t)
        expected = []
        for part in t.split("<|endoftext|>"):
            expected.extend(part.encode("utf-8"))
            expected.append(256)
        expected.pop()
        assert enc.ids == expected, (t, enc.ids, expected)
        decoded = tok.decode(enc.ids, skip_special_tokens=False)
        f.write(json.dumps({"text": t, "ids": enc.ids, "decoded": decoded}, ensure_ascii=False) + "\n")
print("wrote", fixtures / "byte_tokenizer_cases.jsonl", len(texts), "cases")
