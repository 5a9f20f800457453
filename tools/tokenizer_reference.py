#!/usr/bin/env python3
"""Runs Hugging Face `tokenizers` over the tokenizer corpus and writes the reference ids that
tests/tokenizer/test_tokenizer.c compares against (gzip JSONL, one object per corpus line):

  {"ids": [...]}                      encode(text, add_special_tokens=False)
  "plain": [...]                      ids with encode_special_tokens=True, only when different
  "dec": "..."                        decode(ids), only when it differs from the text
  "skip": "..."                       decode(ids, skip_special_tokens=True), only when it
                                      differs from "dec" (or the text)

and a second file of random id sequences (the ids a random-weight model samples, including
ids past the vocabulary) with their decodes: {"ids": [...], "dec": "...", "skip": "..."}.

Usage:
  python3 tools/tokenizer_reference.py --tokenizer DIR_OR_JSON --out PREFIX [--limit N]
      [--corpus tests/fixtures/tokenizer/corpus.jsonl.gz] [--vocab-rows N] [--stride S]
writes PREFIX.ids.jsonl.gz and PREFIX.decode.jsonl.gz. Also reports strings where
decode(encode(s)) != unicodedata.normalize("NFC", s) (expected only for normalizers other
than NFC or invalid text).
"""
import argparse
import gzip
import json
import os
import random
import sys
import unicodedata

from tokenizers import Tokenizer


def dump(f, obj):
    f.write((json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--corpus", default="tests/fixtures/tokenizer/corpus.jsonl.gz")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N corpus lines")
    ap.add_argument("--stride", type=int, default=1,
                    help="use only corpus lines 0, S, 2S, ... (a subset across all categories)")
    ap.add_argument("--vocab-rows", type=int, default=0,
                    help="embedding rows for random ids (default: tokenizer size + 300)")
    ap.add_argument("--random-seqs", type=int, default=400)
    a = ap.parse_args()
    path = a.tokenizer
    if os.path.isdir(path):
        path = os.path.join(path, "tokenizer.json")
    tok = Tokenizer.from_file(path)
    raw = gzip.open(a.corpus, "rb").read().split(b"\n")
    texts = [json.loads(line) for line in raw if line]
    texts = texts[:: a.stride]
    if a.limit:
        texts = texts[: a.limit]
    n_nfc = 0
    with gzip.GzipFile(a.out + ".ids.jsonl.gz", "wb", mtime=0) as f:
        for t in texts:
            tok.encode_special_tokens = False
            ids = tok.encode(t, add_special_tokens=False).ids
            tok.encode_special_tokens = True
            plain = tok.encode(t, add_special_tokens=False).ids
            tok.encode_special_tokens = False
            rec = {"ids": ids}
            if plain != ids:
                rec["plain"] = plain
            dec = tok.decode(ids, skip_special_tokens=False)
            skip = tok.decode(ids, skip_special_tokens=True)
            if dec != t:
                rec["dec"] = dec
            if skip != dec:
                rec["skip"] = skip
            if dec != unicodedata.normalize("NFC", t):
                n_nfc += 1
            dump(f, rec)
    n = tok.get_vocab_size(with_added_tokens=True)
    rows = a.vocab_rows or n + 300
    r = random.Random(1234)
    with gzip.GzipFile(a.out + ".decode.jsonl.gz", "wb", mtime=0) as f:
        for i in range(a.random_seqs):
            k = r.randint(1, 64)
            if i % 4 == 0:  # mostly byte tokens: split and invalid UTF-8
                ids = [r.randrange(256) for _ in range(k)]
            else:
                ids = [r.randrange(rows) for _ in range(k)]
            dump(f, {"ids": ids, "dec": tok.decode(ids, skip_special_tokens=False),
                     "skip": tok.decode(ids, skip_special_tokens=True)})
    print(f"{len(texts)} strings; {n_nfc} where decode(encode(s)) != NFC(s); "
          f"tokenizer knows {n} ids", file=sys.stderr)


if __name__ == "__main__":
    main()
