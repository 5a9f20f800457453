#!/usr/bin/env python3
"""hf_tokenize: the reference side of bench_tokenize: Hugging Face `tokenizers` encode
throughput on the same corpus, single thread, and its tokenizer.json load time.

Reports two numbers: encode() one string at a time, and encode_batch() over the whole corpus
with the Rayon pool limited to one thread (TOKENIZERS_PARALLELISM=false and
RAYON_NUM_THREADS=1 are set before the import). Usage:
  python3 bench/tokenizer/hf_tokenize.py TOKENIZER_JSON [CORPUS_GZ] [PASSES]
"""
import os

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"

import gzip  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from tokenizers import Tokenizer  # noqa: E402


def main():
    path = sys.argv[1]
    corpus = sys.argv[2] if len(sys.argv) > 2 else "tests/fixtures/tokenizer/corpus.jsonl.gz"
    passes = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    loads = []
    for _ in range(5):
        a = time.perf_counter()
        tok = Tokenizer.from_file(path)
        loads.append(time.perf_counter() - a)
    print(f"load: median {statistics.median(loads) * 1e3:.1f} ms (min {min(loads) * 1e3:.1f})")
    texts = [json.loads(x) for x in gzip.open(corpus, "rb").read().split(b"\n") if x]
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    one, batch = [], []
    for p in range(passes):
        a = time.perf_counter()
        for t in texts:
            tok.encode(t, add_special_tokens=False)
        one.append(nbytes / (time.perf_counter() - a) / 1e6)
        a = time.perf_counter()
        tok.encode_batch(texts, add_special_tokens=False)
        batch.append(nbytes / (time.perf_counter() - a) / 1e6)
        print(f"pass {p + 1}: encode {one[-1]:.2f} MB/s, encode_batch(1 thread) {batch[-1]:.2f} MB/s")
    print(f"encode: {len(texts)} strings, {nbytes} bytes; median encode {statistics.median(one):.2f}"
          f" MB/s, encode_batch {statistics.median(batch):.2f} MB/s")


if __name__ == "__main__":
    main()
