#!/usr/bin/env python3
"""Reference outputs of the Qwen2.5-VL vision tower (ViT + merger), from transformers (FP32).

Runs Qwen2_5_VisionTransformerPretrainedModel of the `tiny` preset made by
`vela make-model --preset tiny --seed 0` (deterministic weights, so the test re-creates the
same folder instead of committing it) in float32 on several grids per call:
  0: one image (1, 4, 6)            56x84 px, one partial window
  1: one image (1, 8, 8)            4x4 merge units: the padding quirk adds empty windows
  2: one image (1, 10, 14)          5x7 units: windows do not divide evenly
  3: two images (1, 4, 6) + (1, 10, 12) in one call (the spec's worked example is the second)
  4: a 2-frame-pair video (2, 4, 4) full attention per temporal group
  5: one image (1, 16, 20)          several whole windows
Inputs are not stored: pixel_values[r][j] = ((r*7919 + j*104729 + case*31337) % 65521 - 32760)
/ 16384, exact in float32 on both sides (the test recomputes them; `input_sum_<i>` guards it).

Output: tests/fixtures/vision/tiny.safetensors with, for each case i,
  grid_<i>          I32 [n, 3]   grid_thw
  window_index_<i>  I32 [U]      get_vision_window_index
  cu_window_<i>     I32 [W + 1]  window boundaries (patches)
  cu_full_<i>       I32 [G + 1]  full-attention boundaries
  out_<i>           F32 [U, O]   merged output (raster order)
  block0_<i>        F32 [S, C]   hidden states after block 0 (window order), for debugging
  input_sum_<i>     F64 [1]      sum of the generated pixel_values
and tiny.json with library versions.

End to end, for shared test images decoded by Pillow (`convert("RGB")`) and preprocessed by
transformers' Qwen2VLImageProcessorPil (default budget 3136..12845056), the same file holds
  e2e_grid_<name> I32 [1, 3] and e2e_out_<name> F32 [U, O]
for name in chelsea (308x448 -> grid (1, 22, 32)) and chessboard (196x196 -> (1, 14, 14)).

The transformers-written fixtures tests/fixtures/hf/qwen2_5_vl_bf16 and qwen2_vl_bf16 (BF16
weights run in float32; the second is the Qwen2-VL tower: LayerNorm, quick_gelu MLP, no
windows) give hf_<name>.safetensors with grid_<i> and out_<i> for cases 0, 2, 3 and 4.

Also get_rope_index (spec §5.4) of the same model on prompts with images and videos:
tests/fixtures/vision/rope_index.safetensors with, for each prompt i,
  ids_<i> I32 [n], pos_<i> I32 [3, n], delta_<i> I32 [1], image_grid_<i> / video_grid_<i>
  I32 [k, 3] (when present), second_per_grid_<i> F32 [k] (videos).
Prompts 0-4 are ones where transformers 5.24 follows the spec. Prompt 5 is a video whose
temporal positions run past its spatial ones: 5.24 continues the text after the run at
start + max(h, w) / merge (ignoring the temporal extent) while the spec (and the original
Qwen code, vLLM) continue at 1 + the run's largest position; the test checks the pad run
against 5.24 and the text after it against the spec.

Run by hand:  python3 tools/vision_reference.py --vela build/release/vela
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

CASES = [
    [(1, 4, 6)],
    [(1, 8, 8)],
    [(1, 10, 14)],
    [(1, 4, 6), (1, 10, 12)],
    [(2, 4, 4)],
    [(1, 16, 20)],
]
PATCH_DIM = 3 * 2 * 14 * 14


def pixel_values(n_rows, case):
    r = torch.arange(n_rows, dtype=torch.int64)[:, None]
    j = torch.arange(PATCH_DIM, dtype=torch.int64)[None, :]
    x = (r * 7919 + j * 104729 + case * 31337) % 65521
    return (x - 32760).to(torch.float32) / 16384.0


VS, VE, IMG, VID = 151652, 151653, 151655, 151656


def prompt(parts):
    """parts: ints (text ids), ('img', t, h, w) or ('vid', t, h, w): pad runs with their start."""
    ids, images, videos = [], [], []
    for p in parts:
        if isinstance(p, int):
            ids.append(p)
            continue
        kind, t, h, w = p
        ids += [VS] + [IMG if kind == "img" else VID] * (t * h * w // 4) + [VE]
        (images if kind == "img" else videos).append((t, h, w))
    return ids, images, videos


ROPE_PROMPTS = [
    ([10, 11, ("img", 1, 4, 6), 12], None),                               # spec example 1
    ([5, ("img", 1, 4, 6), 6, 7, ("img", 1, 10, 12), 8, 9], None),      # two images
    ([1, 2, 3, ("vid", 2, 8, 8), 4], [1.0]),                              # step 2 <= h/2 - 1
    ([1, ("img", 1, 6, 4), ("vid", 4, 8, 12), 2, 3], [0.5]),              # fractional spg
    ([7, ("vid", 2, 4, 16), 8, ("img", 1, 16, 4), 9], [1.5]),             # step 3, wide grid
    ([1, ("vid", 4, 4, 4), 2], [1.0]),                                    # spec example 2
]


def rope_index_fixture(model, out_dir):
    tensors = {}
    for i, (parts, spg) in enumerate(ROPE_PROMPTS):
        ids, images, videos = prompt(parts)
        x = torch.tensor([ids], dtype=torch.int64)
        types = torch.zeros_like(x, dtype=torch.int32)
        types[x == IMG] = 1
        types[x == VID] = 2
        pos, delta = model.model.get_rope_index(
            x, types,
            image_grid_thw=torch.tensor(images) if images else None,
            video_grid_thw=torch.tensor(videos) if videos else None,
            second_per_grid_ts=torch.tensor(spg) if spg else None)
        tensors[f"ids_{i}"] = torch.tensor(ids, dtype=torch.int32)
        tensors[f"pos_{i}"] = pos[:, 0, :].to(torch.int32).contiguous()
        tensors[f"delta_{i}"] = delta.reshape(1).to(torch.int32)
        if images:
            tensors[f"image_grid_{i}"] = torch.tensor(images, dtype=torch.int32)
        if videos:
            tensors[f"video_grid_{i}"] = torch.tensor(videos, dtype=torch.int32)
            tensors[f"second_per_grid_{i}"] = torch.tensor(spg, dtype=torch.float32)
        print(f"rope prompt {i}: {len(ids)} tokens, delta {int(delta)}")
    save_file(tensors, os.path.join(out_dir, "rope_index.safetensors"),
              metadata={"transformers": transformers.__version__})


E2E = [("chelsea", "chelsea.png"), ("chessboard", "chessboard_GRAY.png")]


def e2e_fixture(visual, shared, tensors):
    from PIL import Image
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil)

    proc = Qwen2VLImageProcessorPil(min_pixels=3136, max_pixels=12845056)
    for name, file in E2E:
        im = Image.open(os.path.join(shared, "testdata/images", file)).convert("RGB")
        enc = proc(images=[im], return_tensors="pt")
        px, g = enc["pixel_values"].float(), enc["image_grid_thw"]
        with torch.no_grad():
            res = visual(px, grid_thw=g)
        out = res.pooler_output if hasattr(res, "pooler_output") else res
        tensors[f"e2e_grid_{name}"] = g.to(torch.int32).contiguous()
        tensors[f"e2e_out_{name}"] = out.float().contiguous()
        print(f"e2e {name}: grid {g.tolist()} -> out {tuple(out.shape)}")


HF_CASES = [0, 2, 3, 4]


def hf_fixture(name, out_dir):
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLForConditionalGeneration

    cls = Qwen2VLForConditionalGeneration if name == "qwen2_vl_bf16" else \
        Qwen2_5_VLForConditionalGeneration
    model = cls.from_pretrained(f"tests/fixtures/hf/{name}", dtype=torch.float32)
    model.eval()
    tensors = {}
    for ci in HF_CASES:
        g = torch.tensor(CASES[ci], dtype=torch.int64)
        px = pixel_values(int((g[:, 0] * g[:, 1] * g[:, 2]).sum()), ci)
        with torch.no_grad():
            res = model.model.visual(px, grid_thw=g)
        out = res.pooler_output if hasattr(res, "pooler_output") else res
        tensors[f"grid_{ci}"] = g.to(torch.int32).contiguous()
        tensors[f"out_{ci}"] = out.float().contiguous()
    save_file(tensors, os.path.join(out_dir, f"hf_{name}.safetensors"),
              metadata={"transformers": transformers.__version__})
    print(f"hf {name}: cases {HF_CASES}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vela", default="build/release/vela")
    ap.add_argument("--out", default="tests/fixtures/vision")
    ap.add_argument("--shared", default="../shared")
    a = ap.parse_args()
    from transformers import Qwen2_5_VLForConditionalGeneration
    from transformers.vision_utils import get_vision_cu_seqlens, get_vision_window_index

    os.makedirs(a.out, exist_ok=True)
    tensors = {}
    with tempfile.TemporaryDirectory() as tmp:
        tiny = os.path.join(tmp, "tiny")
        subprocess.run([a.vela, "make-model", "--preset", "tiny", "--seed", "0", "--out", tiny],
                       check=True)
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny, dtype=torch.float32)
    model.eval()
    visual = model.model.visual
    vc = visual.config
    captured = {}
    visual.blocks[0].register_forward_hook(lambda m, i, o: captured.__setitem__("b0", o))
    rope_index_fixture(model, a.out)
    for ci, grids in enumerate(CASES):
        g = torch.tensor(grids, dtype=torch.int64)
        n_rows = int((g[:, 0] * g[:, 1] * g[:, 2]).sum())
        px = pixel_values(n_rows, ci)
        with torch.no_grad():
            res = visual(px, grid_thw=g)
        out = res.pooler_output if hasattr(res, "pooler_output") else res
        widx, cu_win = get_vision_window_index(g, vc.spatial_merge_size, vc.window_size,
                                               vc.patch_size)
        cu_full = get_vision_cu_seqlens(g)
        b0 = captured["b0"]
        b0 = b0[0] if isinstance(b0, tuple) else b0
        tensors[f"grid_{ci}"] = g.to(torch.int32).contiguous()
        tensors[f"window_index_{ci}"] = widx.to(torch.int32).contiguous()
        tensors[f"cu_window_{ci}"] = cu_win.to(torch.int32).contiguous()
        tensors[f"cu_full_{ci}"] = cu_full.to(torch.int32).contiguous()
        tensors[f"out_{ci}"] = out.float().contiguous()
        tensors[f"block0_{ci}"] = b0.float().contiguous()
        tensors[f"input_sum_{ci}"] = torch.tensor([px.double().sum().item()], dtype=torch.float64)
        print(f"case {ci}: grids {grids}, {n_rows} patches -> out {tuple(out.shape)}")
    e2e_fixture(visual, a.shared, tensors)
    for name in ("qwen2_5_vl_bf16", "qwen2_vl_bf16"):
        hf_fixture(name, a.out)
    meta = {"transformers": transformers.__version__, "torch": torch.__version__,
            "model": "tiny", "cases": CASES,
            "attn_implementation": visual.config._attn_implementation}
    save_file(tensors, os.path.join(a.out, "tiny.safetensors"),
              metadata={"transformers": transformers.__version__})
    with open(os.path.join(a.out, "tiny.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
