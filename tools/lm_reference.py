#!/usr/bin/env python3
"""Reference logits and greedy continuations of the language model, from transformers (FP32).

Runs Qwen2_5_VLForConditionalGeneration (text-only prompts) in float32 on:
  - the `tiny` preset made by `vela make-model --preset tiny --seed 0` (deterministic weights,
    so the test re-creates the same folder instead of committing it), and
  - the transformers-written fixture tests/fixtures/hf/qwen2_5_vl_bf16.
For each prompt it writes the prompt ids, the logits of every prompt position and a 32-token
greedy continuation (plain argmax, no penalties, no eos stop: exactly what the test replays).

Output: tests/fixtures/lm/<model>.safetensors with tensors
  prompt_<i>  I32 [n]        prompt token ids
  logits_<i>  F32 [n, V]     logits for every prompt position
  greedy_<i>  I32 [32]       greedy continuation
and a small JSON with the library versions and the prompts' text.

Run by hand:  python3 tools/lm_reference.py --vela build/release/vela
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch
import transformers
from safetensors.torch import save_file

N_GREEDY = 32
PROMPTS = [
    "Hello world, this is a test.",
    "<|im_start|>user\nWhat is in the picture? Describe it in detail.<|im_end|>\n<|im_start|>assistant\n",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "a",
    "The quick brown fox jumps over the lazy dog. " * 6,
]


def run_model(folder, name, out_dir):
    from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(folder, dtype=torch.float32)
    model.eval()
    tok = None
    if os.path.exists(os.path.join(folder, "tokenizer.json")):
        tok = AutoTokenizer.from_pretrained(folder)
    vocab = model.config.text_config.vocab_size
    tensors = {}
    meta = {"transformers": transformers.__version__, "torch": torch.__version__,
            "model": name, "prompts": []}
    for i, text in enumerate(PROMPTS):
        if tok is not None:
            ids = tok(text, return_tensors="pt").input_ids
        else:  # the hf fixture has no tokenizer: deterministic ids inside its vocab
            g = torch.Generator().manual_seed(1000 + i)
            ids = torch.randint(0, 256, (1, max(1, len(text) // 3)), generator=g)
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0].float()
            seq = ids.clone()
            greedy = []
            for _ in range(N_GREEDY):
                nxt = int(model(input_ids=seq).logits[0, -1].argmax())
                greedy.append(nxt)
                seq = torch.cat([seq, torch.tensor([[nxt]])], dim=1)
        tensors[f"prompt_{i}"] = ids[0].to(torch.int32).contiguous()
        tensors[f"logits_{i}"] = logits.contiguous()
        tensors[f"greedy_{i}"] = torch.tensor(greedy, dtype=torch.int32)
        meta["prompts"].append({"text": text if tok is not None else None,
                                "n_tokens": int(ids.shape[1])})
    meta["vocab_size"] = vocab
    save_file(tensors, os.path.join(out_dir, f"{name}.safetensors"),
              metadata={"transformers": transformers.__version__})
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(meta, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {name}: {len(PROMPTS)} prompts, vocab {vocab}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vela", default="build/release/vela")
    ap.add_argument("--out", default="tests/fixtures/lm")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tiny = os.path.join(tmp, "tiny")
        subprocess.run([a.vela, "make-model", "--preset", "tiny", "--seed", "0", "--out", tiny],
                       check=True)
        run_model(tiny, "tiny", a.out)
    run_model("tests/fixtures/hf/qwen2_5_vl_bf16", "hf_qwen2_5_vl_bf16", a.out)


if __name__ == "__main__":
    sys.exit(main())
