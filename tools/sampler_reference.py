#!/usr/bin/env python3
"""Writes tests/fixtures/sampler/vllm_cases.bin: sampling cases and the distribution vLLM v1's
sampler would draw from, computed with torch in float32 the way vLLM's ops compute it.

Order (vllm/v1/sample/sampler.py): min_tokens (stop ids -> -inf), logit_bias, then penalties
(repetition over prompt+output ids, frequency and presence over output ids), then greedy
(argmax) when temperature < 1e-5, else temperature, min_p, top_k and top_p (sort ascending,
drop while the cumulative probability <= 1 - top_p, keep the largest), softmax.
Ties are sorted stably (equal logits in id order). Raw top-5 logprobs are log_softmax of the
unprocessed logits (vLLM's default logprobs_mode "raw_logprobs").

File layout, little-endian: "VSMP", u32 version (1), u32 n_cases, u32 V; then per case:
f32 temperature, i32 top_k, f32 top_p, f32 min_p, f32 repetition, f32 frequency,
f32 presence, i32 min_tokens, i32 n_bias, n_bias x (i32 id, f32 bias), i32 n_stop,
n_stop x i32, i32 n_prompt, i32 n_output, the prompt and output ids (i32), f32 logits[V],
f32 probs[V], i32 top_ids[5], f32 top_logprobs[5].

Usage: python3 tools/sampler_reference.py [--out tests/fixtures/sampler/vllm_cases.bin]
"""
import argparse
import os
import struct

import numpy as np
import torch

V = 128
N_TOP = 5
EPS = 1e-5


def process(x, prompt, output, c):
    """The distribution over V ids (float32 tensor) for one case."""
    l = x.clone().unsqueeze(0)
    if len(output) < c["min_tokens"]:
        for i in c["stop"]:
            l[0, i] = float("-inf")
    for i, b in c["bias"]:
        l[0, i] += b
    seen = torch.zeros(V, dtype=torch.bool)
    seen[torch.tensor(prompt + output, dtype=torch.long)] = True
    counts = torch.zeros(V, dtype=torch.long)
    for i in output:
        counts[i] += 1
    rep = torch.full((1, V), c["rep"], dtype=torch.float32)
    pen = torch.where(seen.unsqueeze(0), rep, torch.ones_like(rep))
    l *= torch.where(l > 0, 1.0 / pen, pen)
    l -= torch.tensor([[c["freq"]]], dtype=torch.float32) * counts.unsqueeze(0)
    l -= torch.tensor([[c["pres"]]], dtype=torch.float32) * (counts > 0).unsqueeze(0)
    if c["t"] < EPS:
        out = torch.zeros(V)
        out[int(l[0].argmax())] = 1.0
        return out
    l = l / torch.tensor([[c["t"]]], dtype=torch.float32)
    if c["min_p"] > 0:
        pr = torch.softmax(l, -1)
        l[pr < pr.amax(-1, keepdim=True) * c["min_p"]] = float("-inf")
    if c["k"] > 0 or c["p"] < 1.0:
        ls, li = l.sort(dim=-1, descending=False, stable=True)
        if c["k"] > 0:
            thr = ls[:, V - c["k"]:V - c["k"] + 1]
            ls = ls.masked_fill(ls < thr, float("-inf"))
        if c["p"] < 1.0:
            cum = ls.softmax(-1).cumsum(-1)
            drop = cum <= 1 - torch.tensor([[c["p"]]], dtype=torch.float32)
            drop[:, -1] = False
            ls = ls.masked_fill(drop, float("-inf"))
        l = ls.scatter(-1, li, ls)
    return torch.softmax(l, -1)[0]


def make_cases(n):
    g = torch.Generator().manual_seed(0)
    cases = []
    for c in range(n):
        x = torch.randn(V, generator=g) * 2.5
        hot = torch.randint(0, V, (6,), generator=g)
        x[hot] += 6.0
        tie = torch.randint(0, V, (4,), generator=g)
        x[tie] = x.max()  # equal logits at the top exercise the tie rules
        prompt = torch.randint(0, V, (24,), generator=g).tolist()
        output = torch.randint(0, V, (c % 9,), generator=g).tolist()
        bias_ids = torch.randint(0, V, (3,), generator=g).tolist()
        case = {
            "t": [0.0, 0.6, 1.0, 1.4, 0.8, 1e-6][c % 6],
            "k": [0, 1, 3, 10, 40][c % 5],
            "p": [1.0, 0.9, 0.5, 0.2, 0.97, 0.75, 1.0][c % 7],
            "min_p": [0.0, 0.05, 0.2][c % 3],
            "rep": [1.0, 1.05, 1.5, 0.8][c % 4],
            "freq": [0.0, 0.4, -0.3][(c // 2) % 3],
            "pres": [0.0, 0.6, -0.5][(c // 3) % 3],
            "min_tokens": [0, 4, 0, 12][c % 4],
            "bias": list(zip(bias_ids, [1.5, -3.0, 5.0])) if c % 3 != 1 else [],
            "stop": [int(torch.argmax(x)), 7],
        }
        cases.append((x.float(), prompt, output, case))
    return cases


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/sampler/vllm_cases.bin")
    ap.add_argument("--cases", type=int, default=36)
    a = ap.parse_args()
    cases = make_cases(a.cases)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "wb") as f:
        f.write(b"VSMP" + struct.pack("<III", 1, len(cases), V))
        for x, prompt, output, c in cases:
            probs = process(x, prompt, output, c)
            raw = torch.log_softmax(x, -1)
            top_v, top_i = torch.topk(raw, N_TOP)
            f.write(struct.pack("<fifffffi", c["t"], c["k"], c["p"], c["min_p"], c["rep"],
                                c["freq"], c["pres"], c["min_tokens"]))
            f.write(struct.pack("<i", len(c["bias"])))
            for i, b in c["bias"]:
                f.write(struct.pack("<if", i, b))
            f.write(struct.pack("<i", len(c["stop"])))
            f.write(np.asarray(c["stop"], dtype="<i4").tobytes())
            f.write(struct.pack("<ii", len(prompt), len(output)))
            f.write(np.asarray(prompt + output, dtype="<i4").tobytes())
            f.write(x.numpy().astype("<f4").tobytes())
            f.write(probs.numpy().astype("<f4").tobytes())
            f.write(top_i.numpy().astype("<i4").tobytes())
            f.write(top_v.numpy().astype("<f4").tobytes())
    print(f"wrote {a.out}: {len(cases)} cases, V={V}")


if __name__ == "__main__":
    main()
