#!/usr/bin/env python3
"""greedy_check: do vela and llama.cpp compute the same model? Both engines get the same
prompt ids and decode greedily (no repetition penalty, eos ignored); the script compares the
prompt tokenization (llama.cpp's tokenizer from the GGUF against `vela tokenize`) and the
generated text (llama.cpp's tokens, detokenized, against `vela generate`'s stdout).

Identical BF16 weights give the same argmax wherever the top two logits are not within
rounding of each other; the two engines round activations differently (vela rounds matmul
inputs to BF16 on the AVX-512 path, llama.cpp converts them to the weight type as well), so
a late divergence on a near-tie is possible and is reported with its position.

Usage: python3 bench/llama/greedy_check.py --vela BIN --model DIR --gguf FILE
                                            [--prompt TEXT] [--n N] [--threads N]
"""
import argparse
import json
import subprocess

import llama_cpp


def vela_ids(args):
    out = subprocess.run([args.vela, "tokenize", "--model", args.model, args.prompt],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def vela_text(args):
    cmd = [args.vela, "generate", "--model", args.model, "--prompt", args.prompt,
           "--max-tokens", str(args.n), "--temperature", "0", "--repetition-penalty", "1.0",
           "--ignore-eos", "--threads", str(args.threads)]
    out = subprocess.run(cmd, check=True, capture_output=True).stdout
    return out[:-1] if out.endswith(b"\n") else out  # vela ends the stream with a newline


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vela", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--prompt", default="The capital of France is")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    llm = llama_cpp.Llama(model_path=args.gguf, n_ctx=256, n_threads=args.threads,
                          n_gpu_layers=0, verbose=False)
    ids = llm.tokenize(args.prompt.encode(), add_bos=False, special=True)
    vids = vela_ids(args)
    print(f"prompt ids llama.cpp {ids}\n           vela      {vids}\n"
          f"tokenizers agree: {ids == vids}")

    out = []
    for tok in llm.generate(vids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0):
        out.append(tok)
        if len(out) == args.n:
            break
    ltext = llm.detokenize(out)
    vtext = vela_text(args)
    same = 0
    while same < min(len(ltext), len(vtext)) and ltext[same] == vtext[same]:
        same += 1
    print(f"llama.cpp tokens {out}")
    print(f"llama.cpp text {ltext!r}\nvela text      {vtext!r}")
    print(f"generated text agrees: {ltext == vtext} (first {same} of {len(ltext)} / "
          f"{len(vtext)} bytes equal)")


if __name__ == "__main__":
    main()
