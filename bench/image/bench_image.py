#!/usr/bin/env python3
"""Side-by-side image decode + preprocess benchmark: vela (bench_image, C) against the Python
reference on the same files, interleaved round by round, medians per file.

Reference sides (single thread; torch.set_num_threads(1)):
  pil    Pillow decode + to_rgb + transformers Qwen2VLImageProcessorPil (what vela matches)
  tv     Pillow decode + to_rgb + transformers Qwen2VLImageProcessor (torchvision backend,
         the transformers 5.24 default for Qwen2.5-VL); skipped when torchvision is missing
Every side starts from the encoded bytes in memory and ends with pixel_values + grid_thw.

usage: python3 bench/image/bench_image.py --bin BUILD/bench_image [--rounds R] [--iters K]
                                          [--max-pixels N] FILE...
Prints a markdown table: median wall ms and median CPU ms per side, and the ratios.
"""
import argparse
import io
import json
import os
import statistics
import subprocess
import time

import torch
from PIL import Image
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

try:  # the torchvision backend needs torchvision, which is optional
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
except ImportError:
    Qwen2VLImageProcessor = None


def to_rgb(im):
    if im.mode == "RGBA":
        bg = Image.new("RGB", im.size, (255, 255, 255))
        bg.paste(im, mask=im.split()[3])
        return bg
    return im.convert("RGB")


def py_once(data, proc):
    c0, t0 = time.process_time(), time.perf_counter()
    im = Image.open(io.BytesIO(data))
    im.load()
    out = proc(images=[to_rgb(im)], return_tensors="np")
    _ = out["pixel_values"].shape
    return (time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--max-pixels", type=int, default=12845056)
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(1)
    procs = {"pil": Qwen2VLImageProcessorPil(min_pixels=3136, max_pixels=a.max_pixels)}
    if Qwen2VLImageProcessor is not None:
        procs["tv"] = Qwen2VLImageProcessor(min_pixels=3136, max_pixels=a.max_pixels)
    data = {f: open(f, "rb").read() for f in a.files}
    wall = {f: {"c": [], "pil": [], "tv": []} for f in a.files}
    cpu = {f: {"c": [], "pil": [], "tv": []} for f in a.files}
    grid = {}
    for _ in range(a.rounds):
        out = subprocess.run([a.bin, "--iters", str(a.iters), "--max-pixels", str(a.max_pixels)]
                             + a.files, check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            r = json.loads(line)
            wall[r["file"]]["c"] += r["total_ms"]
            cpu[r["file"]]["c"] += r["cpu_ms"]
            grid[r["file"]] = r["grid"]
        for side, proc in procs.items():
            for f in a.files:
                for _ in range(a.iters):
                    w, c = py_once(data[f], proc)
                    wall[f][side].append(w)
                    cpu[f][side].append(c)
    med = statistics.median
    sides = list(procs)
    print("| image | grid_thw | vela ms | " + " | ".join(f"{s} ms | {s} / vela" for s in sides)
          + " | vela CPU ms | " + " | ".join(f"{s} CPU ms" for s in sides) + " |")
    print("|---" * (4 + 3 * len(sides)) + "|")
    for f in a.files:
        w, c = wall[f], cpu[f]
        cols = [os.path.basename(f), "(" + ", ".join(map(str, grid[f])) + ")", f"{med(w['c']):.1f}"]
        for s in sides:
            cols += [f"{med(w[s]):.1f}", f"{med(w[s]) / med(w['c']):.1f}x"]
        cols.append(f"{med(c['c']):.1f}")
        cols += [f"{med(c[s]):.1f}" for s in sides]
        print("| " + " | ".join(cols) + " |")


if __name__ == "__main__":
    main()
