#!/usr/bin/env python3
"""make_hf_fixtures.py: tiny checkpoints written by Hugging Face transformers itself.

Builds tiny random-weight models with the real transformers classes and saves them with
save_pretrained (safetensors), so the C loader is tested against files the library really
writes, not against files we wrote ourselves. For each fixture folder it also writes
expected.json, computed on the Python side from the saved files: every tensor's name, dtype,
shape, shard, and a few value checks, the parameter count, and the config values that matter.

Fixtures (under tests/fixtures/hf/ by default):
  qwen2_5_vl_bf16      Qwen2_5_VLForConditionalGeneration, BF16, one model.safetensors
  qwen2_5_vl_f32       the same weights saved as F32 (every value exactly a BF16 value, so
                       a loader's F32 -> BF16 conversion must reproduce qwen2_5_vl_bf16 bit
                       for bit)
  qwen2_5_vl_sharded   the same BF16 weights, small max_shard_size: 3 shards + index
  qwen2_5_vl_newnames  the same BF16 weights under the in-memory (new) names
                       model.language_model.* / model.visual.*, written with
                       safetensors.torch.save_file from state_dict(), since save_pretrained
                       of this transformers release writes the legacy names
  qwen2_vl_bf16        Qwen2VLForConditionalGeneration (LayerNorm vision tower, embed_dim,
                       mlp_ratio, quick_gelu), BF16
  qwen2_tied_bf16      Qwen2ForCausalLM with tie_word_embeddings (no lm_head stored), BF16

Run by hand (CI never runs it; needs torch, transformers, safetensors, numpy):
  python3 tools/make_hf_fixtures.py [--out tests/fixtures/hf]
The output is deterministic for a given torch/transformers version (fixed seeds); the
versions used are recorded in the generated README.md.
"""

import argparse
import json
import os
import shutil

import numpy as np
import safetensors
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import save_file

SEED = 20260101

# Tiny vocabulary: 256 byte tokens, then the 22 Qwen2 special tokens in their real order
# (<|endoftext|> = 151643 in the real vocabulary becomes 256 here), padded to 320 rows the way
# the real models pad 151665 tokens to 151936 / 152064 embedding rows.
VOCAB = 320
SPECIAL_BASE = 256
BOS = SPECIAL_BASE + 0  # <|endoftext|>
EOS = SPECIAL_BASE + 2  # <|im_end|>
PAD = SPECIAL_BASE + 0  # <|endoftext|>, as in the real generation_config.json
VISION_START = SPECIAL_BASE + 9  # <|vision_start|>  (151652)
VISION_END = SPECIAL_BASE + 10  # <|vision_end|>    (151653)
VISION_PAD = SPECIAL_BASE + 11  # <|vision_pad|>    (151654)
IMAGE_PAD = SPECIAL_BASE + 12  # <|image_pad|>     (151655)
VIDEO_PAD = SPECIAL_BASE + 13  # <|video_pad|>     (151656)

TEXT = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,  # head_dim 16
    num_key_value_heads=2,
    max_position_embeddings=4096,
    rms_norm_eps=1e-6,
    bos_token_id=BOS,
    eos_token_id=EOS,
    pad_token_id=PAD,
)
MROPE = [2, 3, 3]  # sums to head_dim / 2 = 8
ROPE_THETA = 1000000.0
MROPE_PARAMS = {"rope_type": "default", "mrope_section": MROPE, "rope_theta": ROPE_THETA}
IDS = dict(
    image_token_id=IMAGE_PAD,
    video_token_id=VIDEO_PAD,
    vision_start_token_id=VISION_START,
    vision_end_token_id=VISION_END,
    vision_token_id=VISION_PAD,
)


def build_qwen2_5_vl():
    cfg = transformers.Qwen2_5_VLConfig(
        text_config=dict(
            TEXT,
            rope_parameters=dict(MROPE_PARAMS),
        ),
        vision_config=dict(
            depth=2,
            hidden_size=32,
            num_heads=2,
            intermediate_size=64,
            out_hidden_size=64,
            fullatt_block_indexes=[1],
            window_size=112,
            tokens_per_second=2,
        ),
        tie_word_embeddings=False,
        **IDS,
    )
    return transformers.Qwen2_5_VLForConditionalGeneration(cfg)


def build_qwen2_vl():
    cfg = transformers.Qwen2VLConfig(
        text_config=dict(
            TEXT,
            rope_parameters=dict(MROPE_PARAMS),
        ),
        vision_config=dict(depth=2, embed_dim=32, num_heads=2, mlp_ratio=2, hidden_size=64),
        tie_word_embeddings=False,
        **IDS,
    )
    return transformers.Qwen2VLForConditionalGeneration(cfg)


def build_qwen2_tied():
    cfg = transformers.Qwen2Config(
        **TEXT, rope_parameters={"rope_type": "default", "rope_theta": ROPE_THETA},
        tie_word_embeddings=True,
    )
    return transformers.Qwen2ForCausalLM(cfg)


def reinit(model, seed):
    """Fills every parameter from our own seeded generator, independent of the library's
    init scheme: gains 1 + N(0, 0.1), everything else N(0, 0.05), then rounded to BF16 so the
    F32 copy holds exactly the BF16 values. Biases and gains get random values too (the
    library's init leaves them at 0 and 1, which would hide a loader reading the wrong bytes)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            v = torch.randn(p.shape, generator=g, dtype=torch.float32)
            is_norm = "norm" in name or "ln_q" in name
            is_gain = p.dim() == 1 and is_norm and name.endswith("weight")
            v = 1.0 + 0.1 * v if is_gain else 0.05 * v
            p.copy_(v.to(torch.bfloat16).to(p.dtype))
    model.tie_weights()


def saved_files(folder):
    idx = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            wm = json.load(f)["weight_map"]
        return sorted(set(wm.values())), True
    return ["model.safetensors"], False


def describe_tensors(folder):
    """Reads back what was saved: names, dtypes, shapes, shard and value checks (float64 sum,
    sum of absolute values, first four values) from the files themselves."""
    files, indexed = saved_files(folder)
    out = []
    for shard, fn in enumerate(files):
        with safe_open(os.path.join(folder, fn), "pt") as f:
            for name in f.keys():
                sl = f.get_slice(name)
                t = f.get_tensor(name).to(torch.float64).flatten()
                out.append(
                    dict(
                        name=name,
                        dtype=sl.get_dtype(),
                        shape=list(sl.get_shape()),
                        shard=shard,
                        sum=float(t.sum()),
                        sum_abs=float(t.abs().sum()),
                        head=[float(x) for x in t[:4]],
                    )
                )
    out.sort(key=lambda d: d["name"])
    return out, files, indexed


def naming_of(names):
    new = any(n.startswith("model.language_model.") or n.startswith("model.visual.") for n in names)
    legacy = any(n.startswith("model.layers.") or n.startswith("visual.") for n in names)
    return "new" if new and not legacy else "legacy" if legacy and not new else "mixed"


def config_values(model):
    """The config values the loader must read, from the Python config objects."""
    c = model.config
    tc = c.get_text_config()
    rp = tc.rope_parameters or {}
    eos = tc.eos_token_id
    head_dim = getattr(tc, "head_dim", None) or tc.hidden_size // tc.num_attention_heads
    d = dict(
        architecture=type(model).__name__,
        model_type=c.model_type,
        dtype=str(model.dtype).replace("torch.", ""),
        vocab_size=tc.vocab_size,
        hidden_size=tc.hidden_size,
        intermediate_size=tc.intermediate_size,
        num_hidden_layers=tc.num_hidden_layers,
        num_attention_heads=tc.num_attention_heads,
        num_key_value_heads=tc.num_key_value_heads,
        head_dim=head_dim,
        max_position_embeddings=tc.max_position_embeddings,
        rope_theta=float(rp.get("rope_theta")),
        rms_norm_eps=float(tc.rms_norm_eps),
        tie_word_embeddings=bool(c.tie_word_embeddings),
        mrope_section=list(rp["mrope_section"]) if "mrope_section" in rp else None,
        bos_token_id=tc.bos_token_id,
        eos_token_ids=list(eos) if isinstance(eos, (list, tuple)) else [eos],
        pad_token_id=tc.pad_token_id,
        vision=None,
    )
    for k in IDS:
        d[k] = getattr(c, k, None)
    vc = getattr(c, "vision_config", None)
    if vc is not None:
        qwen2vl = hasattr(vc, "embed_dim")
        width = vc.embed_dim if qwen2vl else vc.hidden_size
        d["vision"] = dict(
            depth=vc.depth,
            hidden_size=width,
            num_heads=vc.num_heads,
            intermediate_size=int(width * vc.mlp_ratio) if qwen2vl else vc.intermediate_size,
            out_hidden_size=vc.hidden_size if qwen2vl else vc.out_hidden_size,
            in_chans=vc.in_channels,
            patch_size=vc.patch_size,
            spatial_merge_size=vc.spatial_merge_size,
            temporal_patch_size=vc.temporal_patch_size,
            window_size=0 if qwen2vl else vc.window_size,
            fullatt_block_indexes=[] if qwen2vl else list(vc.fullatt_block_indexes),
            tokens_per_second=None if qwen2vl else vc.tokens_per_second,
            hidden_act=vc.hidden_act,
        )
    return d


def check_reload(folder, model):
    """The folder must load back through from_pretrained with exactly the model's values
    (for the new-name folder this proves transformers accepts that layout too)."""
    back = type(model).from_pretrained(folder, dtype=torch.float32)
    want = {k: v.float() for k, v in model.state_dict().items()}
    got = back.state_dict()
    bad = [k for k in want if k not in got or not torch.equal(got[k], want[k])]
    if bad or len(got) != len(want):
        raise SystemExit(f"{folder}: reload differs: {bad[:5]}")


def write_expected(folder, model, note):
    check_reload(folder, model)
    tensors, files, indexed = describe_tensors(folder)
    n_params = sum(int(np.prod(t["shape"])) for t in tensors)
    model_params = sum(p.numel() for p in model.parameters())  # tied weights counted once
    if n_params != model_params:
        raise SystemExit(f"{folder}: saved {n_params} params, model has {model_params}")
    exp = dict(
        fixture=os.path.basename(folder),
        note=note,
        transformers_version=transformers.__version__,
        torch_version=torch.__version__,
        naming=naming_of([t["name"] for t in tensors]),
        files=files,
        indexed=indexed,
        n_tensors=len(tensors),
        total_params=n_params,
        config=config_values(model),
        tensors=tensors,
    )
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1)
        f.write("\n")
    return exp


def save_model(model, folder, dtype, **kw):
    shutil.rmtree(folder, ignore_errors=True)
    model.to(dtype).save_pretrained(folder, **kw)


def save_new_names(model, folder):
    """state_dict() holds the new names in this release; save them as one file with the
    config and generation config save_pretrained writes."""
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    model.config.save_pretrained(folder)
    model.generation_config.save_pretrained(folder)
    sd = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"
          or not model.config.tie_word_embeddings}
    save_file(sd, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})


def config_layout(folder):
    with open(os.path.join(folder, "config.json")) as f:
        c = json.load(f)
    return sorted(c.keys()), sorted(c.get("vision_config", {}).keys())


def write_readme(out, results):
    lines = [
        "# Checkpoints written by Hugging Face transformers",
        "",
        "Generated by `tools/make_hf_fixtures.py` (do not edit by hand; rerun the script).",
        "",
        f"- transformers {transformers.__version__}, torch {torch.__version__}, "
        f"safetensors {safetensors.__version__}, seed {SEED}",
        "- Tiny random weights: text hidden 64, 2 layers, 4 heads (head_dim 16), 2 kv heads,",
        "  intermediate 128, vocab 320 (special ids 256.. in the real order: <|endoftext|> 256,",
        "  <|im_end|> 258, vision_start 265, vision_end 266, vision_pad 267, image_pad 268,",
        "  video_pad 269), mrope_section [2,3,3]; vision depth 2, width 32, 2 heads.",
        "- Each folder has `expected.json`: the tensors as saved (name, dtype, shape, shard,",
        "  float64 sum, sum of |x|, first four values), the parameter count, and the config",
        "  values read on the Python side.",
        "",
        "| folder | class | dtype | files | tensors | params | naming |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in results:
        c = e["config"]
        lines.append(
            f"| {e['fixture']} | {c['architecture']} | {c['dtype']} | {len(e['files'])}"
            f"{' + index' if e['indexed'] else ''} | {e['n_tensors']} | {e['total_params']} "
            f"| {e['naming']} |"
        )
    top, vis = config_layout(os.path.join(out, "qwen2_5_vl_bf16"))
    lines += [
        "",
        "## What this transformers release writes (matters to the loader)",
        "",
        "- Tensor names: `save_pretrained` writes the **legacy** names (`model.embed_tokens.*`,",
        "  `model.layers.{i}.*`, `model.norm.*`, `visual.*`, `lm_head.weight`), although the",
        "  in-memory `state_dict()` uses the new names (`model.language_model.*`,",
        "  `model.visual.*`); `qwen2_5_vl_newnames` holds those, written from `state_dict()`.",
        "  The script reloads every folder with `from_pretrained` and requires identical values,",
        "  so this release accepts both namings on load.",
        "- Tied embeddings: no `lm_head.weight` is stored (`qwen2_tied_bf16`).",
        "- config.json of the VL models: text fields live **only** in a nested `text_config`",
        "  (no copies at the top level): hidden/intermediate/layers/heads/kv heads/vocab/eps/",
        "  max_position_embeddings, and also `bos_token_id`, `eos_token_id`, `pad_token_id`.",
        "  The top level holds `architectures`, `dtype`, `model_type`, `tie_word_embeddings`,",
        "  the image/video/vision token ids, `text_config`, `vision_config`.",
        f"  Top-level keys: {', '.join(top)}.",
        "- RoPE: `text_config.rope_parameters = {\"mrope_section\": [...], \"rope_theta\": ...,",
        "  \"rope_type\": \"default\"}`; no `rope_scaling`, no top-level `rope_theta`.",
        "- The dtype key is `dtype` (not `torch_dtype`).",
        "- `vision_config` is written in full (not as a diff), with `in_channels` (not",
        "  `in_chans`), no `spatial_patch_size`, `model_type` `qwen2_5_vl_vision` /",
        "  `qwen2_vl_vision`, and its own `rope_parameters` (`rope_type` `axial`, theta 10000).",
        f"  Qwen2.5-VL vision keys: {', '.join(vis)}.",
        "- Qwen2-VL `vision_config`: `embed_dim` is the ViT width, `hidden_size` is the LM width",
        "  (merger output), intermediate = `embed_dim * mlp_ratio`, `hidden_act` quick_gelu, no",
        "  window attention; LayerNorm with biases (`norm1/norm2.bias`, `merger.ln_q.bias`) and",
        "  an MLP named `mlp.fc1` / `mlp.fc2`.",
        "- Qwen2ForCausalLM: flat config (no `text_config`), `rope_parameters` without",
        "  `mrope_section`.",
        "- Each safetensors header carries metadata `{\"format\": \"pt\"}`; the index has",
        "  `metadata.total_size` (bytes), `metadata.total_parameters` and `weight_map`.",
        "- `vision_token_id` is no field of the v5 config classes: it survives a save only as",
        "  an extra attribute (real hub files have it; a re-save from a class default lacks it).",
        "- Other text_config keys a loader can ignore: `layer_types` (all `full_attention`),",
        "  `sliding_window` (null), `use_sliding_window` (false), `max_window_layers`.",
        "",
    ]
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "hf"))
    args = ap.parse_args()
    out = os.path.normpath(args.out)
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(SEED)
    results = []

    m = build_qwen2_5_vl()
    reinit(m, SEED)
    d = os.path.join(out, "qwen2_5_vl_bf16")
    save_model(m, d, torch.bfloat16)
    results.append(write_expected(d, m, "Qwen2.5-VL, BF16, one file"))
    d = os.path.join(out, "qwen2_5_vl_sharded")
    save_model(m, d, torch.bfloat16, max_shard_size="150KB")
    results.append(write_expected(d, m, "Qwen2.5-VL, BF16, sharded with an index"))
    d = os.path.join(out, "qwen2_5_vl_newnames")
    save_new_names(m, d)
    results.append(write_expected(d, m, "Qwen2.5-VL, BF16, state_dict() names (new layout)"))
    d = os.path.join(out, "qwen2_5_vl_f32")
    save_model(m, d, torch.float32)
    results.append(write_expected(d, m, "Qwen2.5-VL, F32 (values exactly BF16-representable)"))

    m = build_qwen2_vl()
    reinit(m, SEED + 1)
    d = os.path.join(out, "qwen2_vl_bf16")
    save_model(m, d, torch.bfloat16)
    results.append(write_expected(d, m, "Qwen2-VL, BF16, one file"))

    m = build_qwen2_tied()
    reinit(m, SEED + 2)
    d = os.path.join(out, "qwen2_tied_bf16")
    save_model(m, d, torch.bfloat16)
    results.append(write_expected(d, m, "Qwen2 text-only, tied embeddings, BF16"))

    write_readme(out, results)
    for e in results:
        print(f"{e['fixture']}: {e['n_tensors']} tensors, {e['total_params']} params, "
              f"{len(e['files'])} file(s), {e['naming']} names")


if __name__ == "__main__":
    main()
