#!/usr/bin/env python3
"""Trains Hugging Face `tokenizers`' BpeTrainer with the settings of a onebit-trained tokenizer.json.

  <python> tools/hf_bpe_train.py ONEBIT_TOKENIZER_JSON CORPUS MIN_FREQUENCY OUTPUT_JSON

The oracle for data_bpe_trainer_test: same pre-tokenizer (the Split regex and ByteLevel of the onebit
file), same vocab size, special tokens and minimum frequency, the full 256-symbol byte alphabet, and the
corpus fed as one document, as `onebit tokenizer train` reads a .txt file (HF's train(files) would cut
it into lines, which changes the words of patterns that match across newlines, such as llama3's).
Writes HF's tokenizer.json; the test compares its merges and vocab with onebit's.
"""
import json
import sys

from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers


def main():
    onebit_json, corpus, min_frequency, output = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    ob = json.load(open(onebit_json, encoding="utf-8"))
    regex = ob["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), "isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    specials = [t["content"] for t in sorted(ob["added_tokens"], key=lambda t: t["id"])]
    trainer = trainers.BpeTrainer(vocab_size=len(ob["model"]["vocab"]), min_frequency=min_frequency,
                                  special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    with open(corpus, encoding="utf-8", newline="") as f:
        tok.train_from_iterator([f.read()], trainer)
    with open(output, "w", encoding="utf-8") as f:
        f.write(tok.to_str())


if __name__ == "__main__":
    main()
