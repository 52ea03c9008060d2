#!/usr/bin/env python3
"""Builds the tokenizer parity fixtures in tests/fixtures/tokenizers/ with Hugging Face `tokenizers`.

Run once (the outputs are committed, so CI needs no Python package):
    .venv-oracles/bin/python tools/make_tokenizer_fixtures.py

Writes
  corpus/corpus.bin        raw bytes of all documents back to back (includes invalid UTF-8)
  corpus/index.json        {"docs": [[offset, length, kind], ...]}
  <family>/tokenizer.json  a small tokenizer trained here with BpeTrainer
  <family>/ids.u16         HF ids (add_special_tokens=True) of every document, little-endian uint16
  <family>/expected.json   ids per document, template prefix/suffix lengths, and the FNV-1a 64 of
                           HF's decode (skip_special_tokens) for documents where decode(encode(x)) != x
  zoo/<name>/tokenizer.json + zoo/<name>/cases.jsonl
                           tiny tokenizers, one per component setting, with ids and decodes of
                           edge-case texts

Invalid UTF-8: HF only accepts str, so every document is given to HF as
bytes.decode("utf-8", "replace"); onebit defines that same repair for byte input.
"""
import json
import os
import random
import struct
import sys
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
OUT = REPO / "tests" / "fixtures" / "tokenizers"
rng = random.Random(20261125)

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")


# ---------------------------------------------------------------- corpus
def chunks(text: str, lo: int, hi: int):
    i = 0
    while i < len(text):
        n = rng.randint(lo, hi)
        yield text[i:i + n]
        i += n


def cjk_text(n_chars: int) -> str:
    ranges = [(0x4E00, 0x4E00 + 3000), (0x3041, 0x3096), (0x30A1, 0x30FA), (0xAC00, 0xAC00 + 2000)]
    out, total = [], 0
    while total < n_chars:
        lo, hi = rng.choice(ranges)
        run = "".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 12)))
        out.append(run + rng.choice(["", "", "。", "、", " ", "\n", "！", "（注）", "123", " abc "]))
        total += len(out[-1])
    return "".join(out)


def emoji_text(n_items: int) -> str:
    base = [chr(c) for c in list(range(0x1F600, 0x1F64F)) + list(range(0x1F300, 0x1F3FF))]
    tones = [chr(c) for c in range(0x1F3FB, 0x1F400)]
    out = []
    for _ in range(n_items):
        r = rng.random()
        if r < 0.4:
            out.append(rng.choice(base))
        elif r < 0.55:
            out.append(rng.choice(base) + rng.choice(tones))
        elif r < 0.7:
            out.append("\U0001F468\u200D\U0001F469\u200D\U0001F467")
        elif r < 0.8:
            out.append(chr(0x1F1E6 + rng.randint(0, 25)) + chr(0x1F1E6 + rng.randint(0, 25)))
        elif r < 0.9:
            out.append("\u2764\uFE0F")
        else:
            out.append(rng.choice([" ", " ok ", "!", "\n", "e\u0301", "ñ"]))
    return "".join(out)


def invalid_utf8_doc(base: bytes) -> bytes:
    bad = [b"\xff", b"\xfe", b"\x80", b"\xbf", b"\xc0\x80", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xf0\x9f\x98",
           b"\xf4\x90\x80\x80", b"\xf5", b"\xe0\x80\xaf", b"\xc2", b"\x00"]
    out = bytearray()
    i = 0
    while i < len(base):
        n = rng.randint(5, 60)
        out += base[i:i + n]
        out += rng.choice(bad)
        i += n
    return bytes(out)


def whitespace_digit_doc() -> str:
    parts = []
    for _ in range(rng.randint(20, 60)):
        r = rng.random()
        if r < 0.3:
            parts.append(" " * rng.choice([1, 2, 3, 7, 16, 100, 1000 if rng.random() < 0.1 else 40]))
        elif r < 0.45:
            parts.append("".join(rng.choice(" \t\n\r\u00a0\u3000") for _ in range(rng.randint(1, 300))))
        elif r < 0.7:
            parts.append("".join(rng.choice("0123456789") for _ in range(rng.choice([1, 2, 3, 4, 9, 30, 500]))))
        elif r < 0.8:
            parts.append("١٢٣٤٥ ٣.١٤ ①②③ ½ ² 3.14159e-10 0xDEADBEEF 1,234,567.89")
        else:
            parts.append(rng.choice(["word", "Word", "WORD", "it's", "IT'S", "we'LL", "x", "\n\n", "end."]))
    return "".join(parts)


def mixed_scripts_doc() -> str:
    samples = ["Ελληνικά κείμενα με τόνους", "Русский текст, ёжик и Ёлка", "עברית מימין לשמאל", "العربية نص",
               "हिन्दी पाठ", "ไทยภาษา", "Tiếng Việt có dấu", "naïve café résumé coöperate", "ﬁ ﬂ ﬀ Ⅸ ㎏ ℃ ™",
               "ǅ ǈ ǋ ß ẞ İstanbul ΣΑΣ", "\u0000\u0001\u001f\u007f control", "e\u0301 a\u0308 o\u0303 combining",
               "“quotes” ‘single’ — – … •", "<s> literal </s> and <|begin_of_text|> inside", "<unk> [UNK] <0x41>",
               "tab\tseparated\tvalues\n", "CRLF line\r\nendings\r\n", "\u2028line sep\u2029para sep",
               "zero\u200bwidth\u200cjoiners\u200d", "ＦＵＬＬＷＩＤＴＨ ｶﾀｶﾅ"]
    return " ".join(rng.choice(samples) for _ in range(rng.randint(20, 60)))


def repo_sources() -> str:
    texts = []
    for root in ["src/onebit/core", "src/onebit/data"]:
        for p in sorted((REPO / root).rglob("*")):
            if p.suffix in (".h", ".cpp") and p.is_file():
                texts.append(p.read_text(encoding="utf-8"))
    return "\n".join(texts)


def build_corpus():
    shakespeare = (SHARED / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
    wikitext = (SHARED / "wikitext-2" / "test.txt").read_text(encoding="utf-8")
    code = []
    for lang in ["python", "c"]:
        for f in sorted((SHARED / "hub-fixture" / "data" / lang).glob("*.expected.jsonl")):
            for line in f.read_text(encoding="utf-8").splitlines():
                code.append(json.loads(line)["content"])
    code_text = "\n".join(code)
    docs = []  # (bytes, kind)
    docs += [(c.encode(), "shakespeare") for c in chunks(shakespeare[400000:700000], 1000, 8000)]
    docs += [(c.encode(), "wikitext") for c in chunks(wikitext[:300000], 1000, 8000)]
    docs += [(c.encode(), "code") for c in chunks(code_text[:150000], 500, 6000)]
    docs += [(c.encode(), "code") for c in chunks(repo_sources()[:50000], 500, 6000)]
    docs += [(cjk_text(rng.randint(200, 1500)).encode(), "cjk") for _ in range(30)]
    docs += [(emoji_text(rng.randint(50, 400)).encode(), "emoji") for _ in range(30)]
    docs += [(whitespace_digit_doc().encode(), "whitespace_digits") for _ in range(25)]
    docs += [(mixed_scripts_doc().encode(), "mixed") for _ in range(30)]
    sources = shakespeare[700000:760000] + wikitext[300000:360000]
    docs += [(invalid_utf8_doc(c.encode()), "invalid_utf8") for c in chunks(sources, 500, 3000)]
    docs += [(b"", "empty"), (b" ", "space"), (b"\n", "newline"), (b"a", "letter")]
    rng.shuffle(docs)
    return docs


def fnv1a64(data: bytes) -> int:
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


# ---------------------------------------------------------------- families
def training_text():
    shakespeare = (SHARED / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
    wikitext = (SHARED / "wikitext-2" / "valid.txt").read_text(encoding="utf-8")
    code = []
    for f in sorted((SHARED / "hub-fixture" / "data" / "python").glob("*.expected.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            code.append(json.loads(line)["content"])
    lines = shakespeare[:400000].splitlines() + wikitext[:400000].splitlines() + "\n".join(code)[:200000].splitlines()
    lines += cjk_text(20000).splitlines() + emoji_text(2000).splitlines()
    return [l for l in lines if l]


def llama_sp_family():
    """SentencePiece-style BPE as Llama 2 ships it: Metaspace, byte_fallback, <s> template."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    trainer = trainers.BpeTrainer(vocab_size=4000, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=180,
                                  show_progress=False)
    tok.train_from_iterator(training_text(), trainer)
    j = json.loads(tok.to_str())
    old = j["model"]["vocab"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for t, _ in sorted(old.items(), key=lambda kv: kv[1]):
        if t not in vocab:
            vocab[t] = len(vocab)
    j["model"]["vocab"] = vocab
    for a in j["added_tokens"]:
        a["id"] = vocab[a["content"]]
        a["normalized"] = False
    # Llama runs BPE over the whole segment; merges learned within words never cross "▁" anyway.
    j["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
    j["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    j["post_processor"] = {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    return Tokenizer.from_str(json.dumps(j, ensure_ascii=False)), 1, 0


def llama3_family():
    """Llama-3 style: Split(regex) + ByteLevel(use_regex=false), ignore_merges, special tokens after the vocab."""
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=6000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(training_text(), trainer)
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    specials += ["<|reserved_special_token_%d|>" % i for i in range(20)]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    return tok, 1, 0


def write_family(name, tok, prefix_len, suffix_len, docs):
    d = OUT / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "tokenizer.json").write_text(tok.to_str(pretty=True), encoding="utf-8")
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))  # the committed file is what we measure
    texts = [b.decode("utf-8", "replace") for b, _ in docs]
    encs = tok.encode_batch(texts, add_special_tokens=True)
    counts, ids = [], []
    decode_mismatch = {}
    assert tok.get_vocab_size() < 65536
    for i, (text, enc) in enumerate(zip(texts, encs)):
        counts.append(len(enc.ids))
        ids.extend(enc.ids)
        dec = tok.decode(enc.ids, skip_special_tokens=True)
        if dec != text:
            decode_mismatch[str(i)] = "%016x" % fnv1a64(dec.encode("utf-8"))
    with open(d / "ids.u16", "wb") as f:
        f.write(struct.pack("<%dH" % len(ids), *ids))
    meta = {"counts": counts, "add_special": True, "template_prefix": prefix_len, "template_suffix": suffix_len,
            "decode_skip_special_fnv1a64": decode_mismatch, "vocab_size": tok.get_vocab_size()}
    (d / "expected.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    print(f"{name}: {len(ids)} ids, {len(decode_mismatch)} docs not lossless in HF", file=sys.stderr)


# ---------------------------------------------------------------- zoo
EDGE_TEXTS = [
    "", " ", "  ", "Hello world", " Hello  world ", "Hello, world! How's it going?", "it's IT'S we'LL they'Re",
    "x=1+2; y = [3,4]", "\tTabs\tand   spaces   \n\n", "   leading and trailing   ", "line1\nline2\r\nline3\n\n\n",
    "numbers 1234567890 3.14159 1e-5 0x1F 00007", "١٢٣ ½ ² ①", "naïve café — “quotes” ’s", "ﬁ ﬂ Ⅸ ㎏ ℃ ™ ＦＵＬＬ",
    "İstanbul ΣΑΣ ǅ ß ẞ", "e\u0301 a\u0308 combining", "日本語のテキストと한국어 텍스트", "emoji 😀👍🏽 ZWJ 👨\u200d👩\u200d👧 🇫🇷",
    "<s>hello</s> <unk> [UNK] <|endoftext|>", "foo <mask> bar<mask>baz <mask>", "the [SPECIAL] token", "[special] lower",
    "a<sep>b < sep > <sep><sep>", "word_with_underscores and-dashes", "CamelCaseWord snake_case kebab-case",
    "...!!!???,,,;;;", "a.b,c;d:e!f?g", "   \u00a0nbsp\u2003em\u3000ideographic", "\u2028\u2029\x85 separators",
    "zero\u200bwidth", "0" * 40, " " * 33 + "x", "ab" * 50,
]


def zoo_training_text():
    shakespeare = (SHARED / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")[:60000]
    wikitext = (SHARED / "wikitext-2" / "valid.txt").read_text(encoding="utf-8")[:40000]
    return [l for l in (shakespeare + wikitext + cjk_text(800) + emoji_text(100)).splitlines() if l]


def zoo_texts():
    src = (SHARED / "wikitext-2" / "test.txt").read_text(encoding="utf-8")
    extra = []
    for _ in range(12):
        i = rng.randint(0, len(src) - 400)
        extra.append(src[i:i + rng.randint(50, 400)])
    extra += [cjk_text(60), emoji_text(30), whitespace_digit_doc()[:400], mixed_scripts_doc()[:400]]
    return EDGE_TEXTS + extra


def bl():
    return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)


def zoo_configs():
    sp = lambda: pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    cfgs = {}
    punct = Regex(r"\s+|[,.;:!?]")
    for behavior in ["removed", "isolated", "merged_with_previous", "merged_with_next", "contiguous"]:
        cfgs["split_" + behavior] = dict(pre=lambda b=behavior: pre_tokenizers.Sequence(
            [pre_tokenizers.Split(punct, behavior=b), bl()]), dec=decoders.ByteLevel)
        cfgs["split_invert_" + behavior] = dict(pre=lambda b=behavior: pre_tokenizers.Sequence(
            [pre_tokenizers.Split(Regex(r"\p{L}+"), behavior=b, invert=True), bl()]), dec=decoders.ByteLevel)
    cfgs["split_string"] = dict(pre=lambda: pre_tokenizers.Sequence(
        [pre_tokenizers.Split(" ", behavior="merged_with_next"), pre_tokenizers.Split("a.", behavior="isolated"), bl()]),
        dec=decoders.ByteLevel)
    cfgs["bytelevel_regex_prefix"] = dict(pre=lambda: pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True),
                                          dec=decoders.ByteLevel, added=True, norm=lambda: normalizers.Lowercase())
    cfgs["bytelevel_noregex"] = dict(pre=lambda: pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
                                     dec=decoders.ByteLevel, added=True)
    cfgs["digits_whitespace"] = dict(pre=lambda: pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)]), unk=True)
    cfgs["digits_contiguous_punct"] = dict(pre=lambda: pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Digits(individual_digits=False),
         pre_tokenizers.Punctuation(behavior="isolated")]), unk=True)
    cfgs["punct_merged_next"] = dict(pre=lambda: pre_tokenizers.Sequence(
        [pre_tokenizers.Punctuation(behavior="merged_with_next"), bl()]), dec=decoders.ByteLevel)
    cfgs["bert_like"] = dict(
        norm=lambda: normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(), normalizers.Strip(),
                                           normalizers.Replace(Regex(r"\d+"), "0")]),
        pre=lambda: pre_tokenizers.Whitespace(), unk=True, prefix="##", suffix="</w>",
        dec=lambda: decoders.BPEDecoder(suffix="</w>"),
        post=lambda t: processors.BertProcessing(("[SEP]", t.token_to_id("[SEP]")), ("[CLS]", t.token_to_id("[CLS]"))),
        specials=["[UNK]", "[CLS]", "[SEP]"])
    cfgs["nfc_prepend_replace"] = dict(
        norm=lambda: normalizers.Sequence([normalizers.NFC(), normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]),
        pre=None, byte_fallback=True, unk=True,
        dec=lambda: decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                       decoders.Strip(" ", 1, 0)]),
        post=lambda t: processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[
            ("<s>", t.token_to_id("<s>")), ("</s>", t.token_to_id("</s>"))]), specials=["<unk>", "<s>", "</s>"])
    cfgs["nfkd_strip_left"] = dict(norm=lambda: normalizers.Sequence([normalizers.NFKD(), normalizers.Strip(True, False)]),
                                   pre=sp, dec=lambda: decoders.Metaspace(replacement="▁", prepend_scheme="always"))
    cfgs["metaspace_first_split"] = dict(pre=lambda: pre_tokenizers.Metaspace(prepend_scheme="first", split=True),
                                         dec=lambda: decoders.Metaspace(prepend_scheme="first"), byte_fallback=True,
                                         unk=True, specials=["<unk>", "<s>", "</s>"])
    cfgs["metaspace_never"] = dict(pre=lambda: pre_tokenizers.Metaspace(prepend_scheme="never", split=True),
                                   dec=lambda: decoders.Metaspace(prepend_scheme="never"), unk=True)
    cfgs["unk_no_fuse"] = dict(pre=lambda: pre_tokenizers.Whitespace(), unk=True, fuse_unk=False, alphabet=40)
    cfgs["unk_fuse"] = dict(pre=lambda: pre_tokenizers.Whitespace(), unk=True, fuse_unk=True, alphabet=40)
    cfgs["no_pretokenizer_no_decoder"] = dict(pre=None, unk=True)
    return cfgs


def zoo_added_tokens(tok):
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=False, special=True, normalized=False),
                            AddedToken("<|endoftext|>", special=True, normalized=False)])
    tok.add_tokens([AddedToken("[SPECIAL]", single_word=True, normalized=True),
                    AddedToken("<sep>", rstrip=True, normalized=False), AddedToken("the", single_word=True)])


def build_zoo():
    texts = zoo_texts()
    train = zoo_training_text()
    names = []
    for name, c in zoo_configs().items():
        specials = c.get("specials", ["<unk>"] if c.get("unk") else [])
        margs = dict(byte_fallback=c.get("byte_fallback", False), fuse_unk=c.get("fuse_unk", False))
        if c.get("unk"):
            margs["unk_token"] = specials[0]
        if c.get("prefix"):
            margs["continuing_subword_prefix"] = c["prefix"]
        if c.get("suffix"):
            margs["end_of_word_suffix"] = c["suffix"]
        model = models.BPE(**margs)
        tok = Tokenizer(model)
        if c.get("norm"):
            tok.normalizer = c["norm"]()
        if c.get("pre"):
            tok.pre_tokenizer = c["pre"]()
        kwargs = dict(vocab_size=500, special_tokens=specials, show_progress=False,
                      limit_alphabet=c.get("alphabet", 120))
        if c.get("prefix"):
            kwargs["continuing_subword_prefix"] = c["prefix"]
        if c.get("suffix"):
            kwargs["end_of_word_suffix"] = c["suffix"]
        if c.get("dec") is decoders.ByteLevel:
            kwargs["initial_alphabet"] = pre_tokenizers.ByteLevel.alphabet()
            kwargs["limit_alphabet"] = 1000
        tok.train_from_iterator(train, trainers.BpeTrainer(**kwargs))
        if c.get("byte_fallback"):
            j = json.loads(tok.to_str())
            v = j["model"]["vocab"]
            for b in range(256):
                v.setdefault("<0x%02X>" % b, len(v))
            tok = Tokenizer.from_str(json.dumps(j, ensure_ascii=False))
        if c.get("dec"):
            tok.decoder = c["dec"]()
        if c.get("post"):
            tok.post_processor = c["post"](tok)
        if c.get("added", True):
            zoo_added_tokens(tok)
        d = OUT / "zoo" / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "tokenizer.json").write_text(tok.to_str(pretty=False), encoding="utf-8")
        tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        with open(d / "cases.jsonl", "w", encoding="utf-8") as f:
            for t in texts:
                ids = tok.encode(t, add_special_tokens=False).ids
                ids_special = tok.encode(t, add_special_tokens=True).ids
                row = {"text": t, "ids": ids, "ids_special": ids_special,
                       "decoded": tok.decode(ids, skip_special_tokens=False),
                       "decoded_skip": tok.decode(ids_special, skip_special_tokens=True)}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        names.append(name)
    (OUT / "zoo" / "index.json").write_text(json.dumps(names, indent=1), encoding="utf-8")
    print(f"zoo: {len(names)} tokenizers x {len(texts)} texts", file=sys.stderr)


def main():
    docs = build_corpus()
    (OUT / "corpus").mkdir(parents=True, exist_ok=True)
    index, off = [], 0
    with open(OUT / "corpus" / "corpus.bin", "wb") as f:
        for b, kind in docs:
            f.write(b)
            index.append([off, len(b), kind])
            off += len(b)
    (OUT / "corpus" / "index.json").write_text(json.dumps({"docs": index}), encoding="utf-8")
    print(f"corpus: {len(docs)} docs, {off} bytes", file=sys.stderr)
    assert off >= 1_000_000
    for name, build in [("llama-sp", llama_sp_family), ("llama3", llama3_family)]:
        tok, pre, suf = build()
        write_family(name, tok, pre, suf, docs)
    build_zoo()


if __name__ == "__main__":
    main()
