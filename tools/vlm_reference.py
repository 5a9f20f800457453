#!/usr/bin/env python3
"""Reference prompts with images and videos, from transformers (FP32), for tests/model/
test_mm_prompt.c, tests/engine/test_runner_images.c and tests/cli/test_generate_image.c.

Model: the `tiny` preset made by `vela make-model --preset tiny --seed 0` (deterministic weights,
so the tests re-create the same folder instead of committing it), run as
Qwen2_5_VLForConditionalGeneration in float32.

Processor: built by hand from its parts, since Qwen2_5_VLProcessor (and AutoProcessor) need
torchvision for the video processor: the folder's tokenizer and chat template, and
Qwen2VLImageProcessorPil (the PIL backend, which vela's preprocessing matches bit for bit). The budget is small (min_pixels
3136, max_pixels 28*28*16) so that every image takes 4..16 tokens. The two-frame video is
handed over as a list of frames: the frames go through the same image processor and are
stacked in temporal pairs (the processor's video path without torchvision), fps 2 so
second_per_grid_t = 1.0, and its <|video_pad|> is expanded here the way the processor does.

Prompts (the chat template renders them; image parts come before the text, as in the Qwen
README; the two-turn prompt puts its image in the second user turn):
  0 one image (chelsea.png)
  1 two images of different sizes (rocket.jpg, then a generated 40x90 gradient)
  2 an image between two text turns
  3 a two-frame video (chelsea.png, then a generated frame of the same size, frame2.png)

Output: tests/fixtures/vlm/tiny.safetensors with, for prompt i:
  ids_<i>     I32 [n]      input ids after placeholder expansion
  pos_<i>     I32 [3, n]   M-RoPE positions (model.model.get_rope_index)
  delta_<i>   I32 [1]      rope_deltas
  grid_<i>    I32 [k, 3]   grid_thw of its images (or video)
  pvsum_<i>   F64 [k, 2]   per image: sum and sum of squares of its pixel_values rows
  logits_<i>  F32 [V]      logits of the last prompt position
  greedy_<i>  I32 [32]     greedy continuation (argmax, no penalties, no eos stop)
and tests/fixtures/vlm/tiny.json: versions, each prompt's rendered text and its media files.
The generated images are written to tests/fixtures/vlm/{gradient,frame2}.png (committed; the
tests read them; the others come from the shared test images).

Run by hand:  python3 tools/vlm_reference.py --vela build/release/vela
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import transformers
from PIL import Image
from safetensors.torch import save_file

N_GREEDY = 32
MIN_PIXELS = 3136
MAX_PIXELS = 28 * 28 * 16


def make_gradient(path, w=90, h=40):
    a = np.zeros((h, w, 3), dtype=np.uint8)
    for y in range(h):
        for x in range(w):
            a[y, x] = ((x * 255) // (w - 1), (y * 255) // (h - 1), ((x + y) * 7) % 256)
    Image.fromarray(a, "RGB").save(path)


def build_processor(folder):
    """The processor's parts: Qwen2_5_VLProcessor itself cannot be built without torchvision
    (its constructor looks up the video processor class), so expand() below does its text
    part: each <|image_pad|> in order becomes t*h*w/4 copies (processing_qwen2_5_vl.py)."""
    from transformers import AutoTokenizer
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil)
    tok = AutoTokenizer.from_pretrained(folder)
    with open(os.path.join(folder, "chat_template.json")) as f:
        tok.chat_template = json.load(f)["chat_template"]
    ip = Qwen2VLImageProcessorPil(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    return ip, tok


def expand(text, pad, grids):
    parts = text.split(pad)
    assert len(parts) == len(grids) + 1, "placeholders and images differ"
    out = parts[0]
    for g, rest in zip(grids, parts[1:]):
        out += pad * (int(g[0]) * int(g[1]) * int(g[2]) // 4) + rest
    return out


def video_pixels(ip, frames):
    """Frames -> (pixel_values_videos, grid): every frame through the image processor, then
    consecutive frames paired along the temporal axis (processor order, spec §3.6)."""
    if len(frames) % 2:
        frames = frames + [frames[-1]]
    assert all(f.size == frames[0].size for f in frames), "frames of one size"
    per = [ip(images=[f], return_tensors="pt") for f in frames]
    grid = per[0]["image_grid_thw"][0].tolist()
    P, T = 14, 2
    rows = []
    for t in range(0, len(frames), 2):
        a = per[t]["pixel_values"].reshape(-1, 3, T, P, P)[:, :, 0]
        b = per[t + 1]["pixel_values"].reshape(-1, 3, T, P, P)[:, :, 0]
        rows.append(torch.stack([a, b], dim=2).reshape(a.shape[0], -1))
    return torch.cat(rows, 0), [len(frames) // 2, grid[1], grid[2]]


def prompts(images_dir, grad, frame):
    img = lambda: {"type": "image"}
    txt = lambda s: {"type": "text", "text": s}
    return [
        {"messages": [{"role": "user", "content": [img(), txt("Describe this image.")]}],
         "images": [os.path.join(images_dir, "chelsea.png")]},
        {"messages": [{"role": "user", "content": [img(), img(), txt("Compare them.")]}],
         "images": [os.path.join(images_dir, "rocket.jpg"), grad]},
        {"messages": [{"role": "user", "content": [txt("Hello there.")]},
                      {"role": "assistant", "content": [txt("Hi! How can I help?")]},
                      {"role": "user", "content": [img(), txt("What is this?")]}],
         "images": [os.path.join(images_dir, "chelsea.png")]},
        {"messages": [{"role": "user", "content": [{"type": "video"}, txt("What happens?")]}],
         "video": [os.path.join(images_dir, "chelsea.png"),
                   frame]},
    ]


def run(folder, images_dir, out_dir):
    from transformers import Qwen2_5_VLForConditionalGeneration
    ip, tok = build_processor(folder)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(folder, dtype=torch.float32)
    model.eval()
    cfg = model.config
    grad = os.path.join(out_dir, "gradient.png")
    make_gradient(grad)
    frame = os.path.join(out_dir, "frame2.png")  # chelsea.png's size: no cross-frame resize
    make_gradient(frame, 451, 300)
    tensors, meta = {}, {"transformers": transformers.__version__, "torch": torch.__version__,
                         "min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS, "prompts": []}
    for i, p in enumerate(prompts(images_dir, grad, frame)):
        text = tok.apply_chat_template(p["messages"], add_generation_prompt=True,
                                        tokenize=False)
        kw = {}
        if "images" in p:
            ims = [Image.open(f).convert("RGB") for f in p["images"]]
            enc = ip(images=ims, return_tensors="pt")
            ids = tok(expand(text, "<|image_pad|>", enc["image_grid_thw"].tolist()),
                      return_tensors="pt").input_ids
            kw = {"pixel_values": enc["pixel_values"], "image_grid_thw": enc["image_grid_thw"]}
            grids = enc["image_grid_thw"].tolist()
            pv_rows = [int(t * h * w) for t, h, w in grids]
            pv = enc["pixel_values"]
            mm_type = (ids == cfg.image_token_id).int()
        else:
            frames = [Image.open(f).convert("RGB") for f in p["video"]]
            pv, grid = video_pixels(ip, frames)
            ids = tok(expand(text, "<|video_pad|>", [grid]), return_tensors="pt").input_ids
            grids, pv_rows = [grid], [pv.shape[0]]
            kw = {"pixel_values_videos": pv, "video_grid_thw": torch.tensor([grid]),
                  "second_per_grid_ts": torch.tensor([1.0])}
            mm_type = (ids == cfg.video_token_id).int() * 2
        pos, delta = model.model.get_rope_index(
            ids, mm_type, kw.get("image_grid_thw"), kw.get("video_grid_thw"),
            kw.get("second_per_grid_ts"))
        with torch.no_grad():
            logits = model(input_ids=ids, mm_token_type_ids=mm_type, **kw).logits[0].float()
            seq, greedy = ids.clone(), []
            for _ in range(N_GREEDY):
                mt = torch.cat([mm_type, torch.zeros(1, seq.shape[1] - ids.shape[1],
                                                     dtype=mm_type.dtype)], dim=1)
                nxt = int(model(input_ids=seq, mm_token_type_ids=mt, **kw).logits[0, -1].argmax())
                greedy.append(nxt)
                seq = torch.cat([seq, torch.tensor([[nxt]])], dim=1)
        sums, r0 = [], 0
        for n in pv_rows:
            blk = pv[r0:r0 + n].double()
            sums.append([float(blk.sum()), float((blk * blk).sum())])
            r0 += n
        tensors[f"ids_{i}"] = ids[0].to(torch.int32).contiguous()
        tensors[f"pos_{i}"] = pos[:, 0, :].to(torch.int32).contiguous()
        tensors[f"delta_{i}"] = delta.reshape(1).to(torch.int32).contiguous()
        tensors[f"grid_{i}"] = torch.tensor(grids, dtype=torch.int32)
        tensors[f"pvsum_{i}"] = torch.tensor(sums, dtype=torch.float64)
        tensors[f"logits_{i}"] = logits[-1].contiguous()
        tensors[f"greedy_{i}"] = torch.tensor(greedy, dtype=torch.int32)
        rel = lambda f: os.path.basename(f)
        meta["prompts"].append({"text": text, "n_tokens": int(ids.shape[1]),
                                "images": [rel(f) for f in p.get("images", [])],
                                "video": [rel(f) for f in p.get("video", [])]})
        print(f"prompt {i}: {ids.shape[1]} tokens, grids {grids}, delta {int(delta.reshape(-1)[0])}")
    save_file(tensors, os.path.join(out_dir, "tiny.safetensors"),
              metadata={"transformers": transformers.__version__})
    with open(os.path.join(out_dir, "tiny.json"), "w") as f:
        json.dump(meta, f, indent=1, ensure_ascii=False)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vela", required=True, help="path of the vela binary")
    ap.add_argument("--images", default=os.environ.get("VELA_SHARED_DIR", "shared") +
                    "/testdata/images")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests",
                                                  "fixtures", "vlm"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "tiny")
        subprocess.run([a.vela, "make-model", "--preset", "tiny", "--seed", "0", "--out", folder],
                       check=True)
        run(folder, a.images, a.out)


if __name__ == "__main__":
    sys.exit(main())
