#!/usr/bin/env python3
"""Makes small byte-level BPE tokenizer.json variants and their HF `tokenizers` reference
outputs, for the configuration paths the Qwen file does not exercise:

  mini_gpt2.json  ByteLevel(use_regex=true) pre-tokenizer, null normalizer, merges as "a b"
                  strings, added tokens with lstrip / rstrip / single_word / normalized flags
  mini_seq.json   Sequence normalizer [NFKC], Sequence pre-tokenizer [Split(regex),
                  ByteLevel(use_regex=false)], merges as ["a", "b"] pairs
  mini_expect.json  [{"tokenizer", "text", "ids", "plain", "dec", "skip"}, ...]

The BPE itself is trained with the tokenizers trainer on a fixed slice of the corpus, so the
output is deterministic. Usage: python3 tools/tokenizer_mini.py [--dir tests/fixtures/tokenizer]
"""
import argparse
import gzip
import json
import os

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

QWEN_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
           r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

ADDED = [
    {"content": "<|endoftext|>", "special": True, "lstrip": False, "rstrip": False,
     "normalized": False, "single_word": False},
    {"content": "<mask>", "special": True, "lstrip": True, "rstrip": False, "normalized": False,
     "single_word": False},
    {"content": "[SEP]", "special": True, "lstrip": False, "rstrip": True, "normalized": False,
     "single_word": False},
    {"content": "word", "special": False, "lstrip": False, "rstrip": False, "normalized": False,
     "single_word": True},
    {"content": "ﬁne", "special": False, "lstrip": False, "rstrip": False, "normalized": True,
     "single_word": False},
    {"content": "<tool>", "special": False, "lstrip": False, "rstrip": False,
     "normalized": False, "single_word": False},
    {"content": "<tool_long>", "special": True, "lstrip": False, "rstrip": False,
     "normalized": False, "single_word": False},
]

TEXTS = [
    "Hello world", "It's  a word, a sword and words. word", "x <mask> y   <mask>z",
    "a[SEP]  b [SEP]\n\nc", "fine ﬁne FINE ﬁ ne", "<tool><tool_long><tool_lo<tool>",
    "<|endoftext|>end<|endoftext|", "wordword word_ word! (word)", " \t\n\r\n  trailing   ",
    "café cafe\u0301 Ａｂｃ ①②", "12345 6789", "日本語のテキスト", "😀👍🏽 emoji", "",
    "<mask><mask>   <mask>", "naïve résumé", "ǅ ﬀ ﬃ ㎏", "\u00a0\u00a0x\u2003y",
]


def train(texts):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=700, min_frequency=2, show_progress=False,
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=tr)
    return json.loads(tok.to_str())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="tests/fixtures/tokenizer")
    a = ap.parse_args()
    raw = gzip.open(os.path.join(a.dir, "corpus.jsonl.gz"), "rb").read().split(b"\n")
    texts = [json.loads(x) for x in raw[:1500] if x]
    base = train(texts)
    n = len(base["model"]["vocab"])
    added = [dict(t, id=n + i) for i, t in enumerate(ADDED)]
    merges = base["model"]["merges"]
    pairs = [m.split(" ", 1) if isinstance(m, str) else m for m in merges]

    gpt2 = dict(base)
    gpt2["added_tokens"] = added
    gpt2["normalizer"] = None
    gpt2["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False,
                             "trim_offsets": True, "use_regex": True}
    gpt2["model"] = dict(base["model"], merges=[" ".join(p) for p in pairs])

    seq = dict(base)
    seq["added_tokens"] = added
    seq["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "NFKC"}]}
    seq["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": QWEN_RE}, "behavior": "Isolated",
         "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
         "use_regex": False}]}
    seq["model"] = dict(base["model"], merges=pairs)

    expect = []
    for name, cfg in (("mini_gpt2.json", gpt2), ("mini_seq.json", seq)):
        path = os.path.join(a.dir, name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(cfg, f, ensure_ascii=False)
        tok = Tokenizer.from_file(path)
        for t in TEXTS:
            tok.encode_special_tokens = False
            ids = tok.encode(t, add_special_tokens=False).ids
            tok.encode_special_tokens = True
            plain = tok.encode(t, add_special_tokens=False).ids
            expect.append({"tokenizer": name, "text": t, "ids": ids, "plain": plain,
                           "dec": tok.decode(ids, skip_special_tokens=False),
                           "skip": tok.decode(ids, skip_special_tokens=True)})
    with open(os.path.join(a.dir, "mini_expect.json"), "w", encoding="utf-8") as f:
        json.dump(expect, f, ensure_ascii=False, indent=0)


if __name__ == "__main__":
    main()
