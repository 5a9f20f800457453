#!/usr/bin/env python3
"""to_gguf: a Qwen2ForCausalLM model folder (config.json, tokenizer.json, BF16 safetensors) to
one GGUF file that llama.cpp loads, for the side-by-side benchmark (docs/BENCHMARKS.md).

The weights keep their BF16 bits: every matrix is written as GGUF BF16 unchanged, and the
one-dimensional tensors (RMSNorm weights, q/k/v biases) are widened to F32, which is exact
(llama.cpp's own converter keeps 1-D tensors in F32 as well, since its CPU element-wise ops
want F32 operands). So both engines compute with the same numbers.

Tensor names and metadata keys come from the gguf package (gguf.constants: MODEL_TENSORS,
TENSOR_NAMES, Keys) through GGUFWriter's typed add_* calls. A tied lm_head is not written:
llama.cpp's qwen2 graph falls back to token_embd when "output" is absent.

The safetensors files are read with numpy only (header + memmap), so no torch is needed.

Usage: python3 bench/llama/to_gguf.py MODEL_DIR OUT.gguf
"""
import json
import os
import struct
import sys

import numpy as np

import gguf
from gguf.constants import MODEL_ARCH, MODEL_TENSOR, MODEL_TENSORS, TENSOR_NAMES

ARCH = MODEL_ARCH.QWEN2

# Hugging Face Qwen2 parameter suffix (after "model.layers.N.") -> llama.cpp tensor kind.
LAYER_MAP = {
    "input_layernorm": MODEL_TENSOR.ATTN_NORM,
    "self_attn.q_proj": MODEL_TENSOR.ATTN_Q,
    "self_attn.k_proj": MODEL_TENSOR.ATTN_K,
    "self_attn.v_proj": MODEL_TENSOR.ATTN_V,
    "self_attn.o_proj": MODEL_TENSOR.ATTN_OUT,
    "post_attention_layernorm": MODEL_TENSOR.FFN_NORM,
    "mlp.gate_proj": MODEL_TENSOR.FFN_GATE,
    "mlp.up_proj": MODEL_TENSOR.FFN_UP,
    "mlp.down_proj": MODEL_TENSOR.FFN_DOWN,
}
GLOBAL_MAP = {
    "model.embed_tokens": MODEL_TENSOR.TOKEN_EMBD,
    "model.norm": MODEL_TENSOR.OUTPUT_NORM,
    "lm_head": MODEL_TENSOR.OUTPUT,
}


def gguf_name(hf_name):
    """model.layers.3.mlp.up_proj.weight -> blk.3.ffn_up.weight (None: not a qwen2 tensor)."""
    base, _, suffix = hf_name.rpartition(".")
    if suffix not in ("weight", "bias"):
        return None
    kind, bid = GLOBAL_MAP.get(base), None
    if kind is None and base.startswith("model.layers."):
        rest = base[len("model.layers."):]
        n, _, key = rest.partition(".")
        kind, bid = LAYER_MAP.get(key), int(n)
    if kind is None or kind not in MODEL_TENSORS[ARCH]:
        return None
    return TENSOR_NAMES[kind].format(bid=bid) + "." + suffix


def read_safetensors(path):
    """Yields (name, dtype string, shape, raw numpy view) for each tensor of one file."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        yield name, info["dtype"], info["shape"], data[a:b]


def checkpoint_files(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        return [os.path.join(model_dir, x) for x in files]
    return [os.path.join(model_dir, "model.safetensors")]


def add_hparams(w, cfg):
    w.add_name(os.path.basename(os.path.normpath(sys.argv[1])))
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_rope_freq_base(float(cfg["rope_theta"]))
    w.add_layer_norm_rms_eps(float(cfg["rms_norm_eps"]))
    w.add_file_type(gguf.LlamaFileType.MOSTLY_BF16)


def add_tokenizer(w, model_dir, cfg, gen):
    with open(os.path.join(model_dir, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    n_vocab = cfg["vocab_size"]  # embedding rows; ids past the tokenizer are padding
    tokens = [f"[PAD{i}]" for i in range(n_vocab)]
    types = [gguf.TokenType.UNUSED] * n_vocab
    for tok, i in tj["model"]["vocab"].items():
        tokens[i], types[i] = tok, gguf.TokenType.NORMAL
    for t in tj["added_tokens"]:
        special = t.get("special", False)
        tokens[t["id"]] = t["content"]
        types[t["id"]] = gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    eos = cfg.get("eos_token_id", gen.get("eos_token_id"))
    if isinstance(eos, list):
        eos = eos[0]
    bos = cfg.get("bos_token_id", gen.get("bos_token_id", eos))
    w.add_bos_token_id(bos)
    w.add_eos_token_id(eos)
    w.add_pad_token_id(gen.get("pad_token_id", bos))
    w.add_add_bos_token(False)


def add_tensors(w, model_dir, cfg):
    n = 0
    for path in checkpoint_files(model_dir):
        for name, dt, shape, raw in read_safetensors(path):
            out = gguf_name(name)
            if out is None:
                if name.startswith("model.visual") or name.startswith("visual"):
                    continue
                raise SystemExit(f"{name}: no llama.cpp qwen2 tensor for it")
            if out.startswith("output.") and cfg.get("tie_word_embeddings"):
                continue
            if dt != "BF16":
                raise SystemExit(f"{name}: dtype {dt}, expected BF16")
            bits = raw.view(np.uint16).reshape(shape)
            if len(shape) == 1:  # exact widening: BF16 is the top half of an F32
                w.add_tensor(out, (bits.astype(np.uint32) << 16).view(np.float32))
            else:
                w.add_tensor(out, bits, raw_dtype=gguf.GGMLQuantizationType.BF16)
            n += 1
    return n


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: to_gguf.py MODEL_DIR OUT.gguf")
    model_dir, out = sys.argv[1], sys.argv[2]
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    if cfg.get("architectures", [""])[0] != "Qwen2ForCausalLM":
        raise SystemExit(f"{model_dir}: expected a Qwen2ForCausalLM folder")
    gen = {}
    gpath = os.path.join(model_dir, "generation_config.json")
    if os.path.exists(gpath):
        with open(gpath) as f:
            gen = json.load(f)
    w = gguf.GGUFWriter(out, gguf.MODEL_ARCH_NAMES[ARCH])
    add_hparams(w, cfg)
    add_tokenizer(w, model_dir, cfg, gen)
    n = add_tensors(w, model_dir, cfg)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {out}: {n} tensors")


if __name__ == "__main__":
    main()
