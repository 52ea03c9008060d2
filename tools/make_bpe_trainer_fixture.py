#!/usr/bin/env python3
"""Fixtures for the BPE trainer ctest (data_bpe_trainer_test), made once with the Python oracle (bash scripts/install-test-oracles.sh makes .venv-oracles).

  .venv-oracles/bin/python tools/make_bpe_trainer_fixture.py --onebit <build>/src/cli/onebit

1. Trains onebit tokenizers on tests/fixtures/data/bpe_corpus.txt (vocab 600, min frequency 2) with the
   gpt2 and llama3 pre-tokenization patterns → tests/fixtures/data/bpe_trained_{gpt2,llama3}.json.
   The ctest retrains and must get the same file (deterministic training).
2. Loads each with Hugging Face `tokenizers` and records its ids for test texts →
   tests/fixtures/data/bpe_trainer_cases.jsonl. The ctest encodes them with onebit's tokenizer.json
   loader and must get the same ids, and decodes them back to the text.
"""
import argparse
import json
import pathlib
import subprocess

from tokenizers import Tokenizer

root = pathlib.Path(__file__).resolve().parent.parent
fixtures = root / "tests" / "fixtures" / "data"

TEXTS = [
    "First Citizen:\nBefore we proceed any further, hear me speak.",
    "What's this? I'LL tell thee, you'RE a villain; we've done't, they'd say.",
    "Numbers 1234567890 and 3.14159, the year 2024, 100,000 items.",
    "  leading spaces,\ttabs\t\tand   runs   \n\n\nof newlines\r\n",
    "Français : « Où est la bibliothèque ? » Größe Straße 日本語のテキスト 中文 Русский",
    "emoji 😀🎉👍🏽 and symbols ∑∞≈ © — …",
    "doc one<|endoftext|>doc two",
    "def f(x):\n    return {'a': [1, 2, 3]}  # comment\n",
    "unseen words: antidisestablishmentarianism, supercalifragilistic",
    "",
    " ",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onebit", required=True, help="path of the onebit binary")
    args = ap.parse_args()
    cases = []
    for pattern in ["gpt2", "llama3"]:
        out = fixtures / f"bpe_trained_{pattern}.json"
        subprocess.run([args.onebit, "tokenizer", "train", "--files", str(fixtures / "bpe_corpus.txt"),
                        "--vocab-size", "600", "--min-frequency", "2", "--pattern", pattern,
                        "--threads", "2", "--output", str(out)], check=True)
        tok = Tokenizer.from_file(str(out))
        assert tok.get_vocab_size() == 600, tok.get_vocab_size()
        for text in TEXTS:
            enc = tok.encode(text)
            dec = tok.decode(enc.ids, skip_special_tokens=False)
            assert dec == text, (pattern, text, dec)
            cases.append({"pattern": pattern, "text": text, "ids": enc.ids})
    with open(fixtures / "bpe_trainer_cases.jsonl", "w", encoding="utf-8") as f:
        for c in cases:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    print("wrote", len(cases), "cases")


if __name__ == "__main__":
    main()
