#!/usr/bin/env python3
"""Reference outputs for vela's image decoding and preprocessing (src/vision/).

Runs Pillow (decode + RGB conversion as qwen-vl-utils `to_rgb` does: RGBA pasted onto white,
everything else `convert("RGB")`) and transformers' Qwen2VLImageProcessorPil (the PIL backend of
the Qwen2-VL/2.5-VL image processor) on every shared test image and on generated edge cases, and
writes tests/fixtures/images/reference.json:

  smart_resize: [{h, w, min_pixels, max_pixels, rh, rw} | {..., error}]
  cases: [{file, min_pixels, max_pixels, width, height, rgb_crc32, resized_h, resized_w,
           resized_crc32, grid_thw, n_tokens, pv_crc32, pv_sum, pv_sumsq, rows: {idx: [1176 floats]} (default budget only)}
          | {file, ..., error}]

The generated edge-case images are written next to it (tests/fixtures/images/gen_*), once;
pass --regen-images to rewrite them. Run by hand (needs Pillow, numpy, transformers); the C
tests read only the committed outputs.

usage: python3 tools/image_reference.py [--shared DIR] [--out DIR] [--regen-images]
"""
import argparse
import io
import json
import math
import os
import struct
import sys
import zlib

import numpy as np
import PIL
from PIL import Image
import transformers
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
    Qwen2VLImageProcessorPil,
    smart_resize,
)
from transformers.image_transforms import convert_to_rgb as hf_convert_to_rgb

DEFAULT = (3136, 12845056)
SMALL = (3136, 200704)
SHARED = [
    "astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg",
    "hubble_deep_field.jpg", "text.png", "chessboard_GRAY.png", "palette_color.png",
    "foo3x5x4indexed.png", "wood-d.webp", "truncated.jpg",
]


# ---- a minimal PNG writer for what Pillow cannot write (16-bit RGB, Adam7 interlacing) ----
def _chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def write_png(path, arr, bit_depth, color_type, interlace=False):
    """arr: (h, w[, c]) uint8/uint16 array already in the PNG's sample layout."""
    h, w = arr.shape[:2]
    dt = ">u2" if bit_depth == 16 else "u1"
    a = arr.astype(dt)

    def scan(sub):
        return b"".join(b"\x00" + sub[y].tobytes() for y in range(sub.shape[0]))

    if interlace:
        raw = b""
        for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                               (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]:
            sub = a[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += scan(sub)
    else:
        raw = scan(a)
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw))
                + _chunk(b"IEND", b""))


def pattern(h, w, seed):
    """Smooth gradients plus noise, so resampling has something to do."""
    rs = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / max(w - 1, 1), y * 255 / max(h - 1, 1),
                     (x + y) * 127 / max(h + w - 2, 1)], -1)
    return np.clip(base + rs.randint(-40, 41, (h, w, 3)), 0, 255).astype(np.uint8)


def generate(out):
    """Writes the edge-case files; returns their names."""
    names = []

    def save(name, fn):
        names.append(name)
        fn(os.path.join(out, name))

    for h, w in [(1, 1), (28, 28), (29, 29), (3, 5), (2, 400), (2, 401), (3, 601), (400, 2),
                 (1, 201)]:
        save(f"gen_{w}x{h}.png", lambda p, h=h, w=w: Image.fromarray(pattern(h, w, h * 1000 + w))
             .save(p))
    save("gen_odd_61x47.jpg", lambda p: Image.fromarray(pattern(47, 61, 1)).save(p, quality=90))
    save("gen_progressive.jpg",
         lambda p: Image.fromarray(pattern(90, 130, 2)).save(p, quality=85, progressive=True))
    save("gen_gray.jpg", lambda p: Image.fromarray(pattern(50, 70, 3)[:, :, 0]).save(p))
    save("gen_cmyk.jpg", lambda p: Image.fromarray(
        np.concatenate([pattern(40, 56, 4), pattern(40, 56, 5)[:, :, :1]], -1), "CMYK")
        .save(p, quality=92))

    def rgba(p):
        a = np.concatenate([pattern(30, 40, 6), np.tile(np.linspace(0, 255, 40), (30, 1))[..., None]
                            .astype(np.uint8)], -1)
        a[0:5, :, 3] = 0
        Image.fromarray(a, "RGBA").save(p)
    save("gen_rgba.png", rgba)
    save("gen_la.png", lambda p: Image.fromarray(
        np.stack([pattern(20, 33, 7)[:, :, 0], pattern(20, 33, 8)[:, :, 1]], -1), "LA").save(p))
    save("gen_gray16.png", lambda p: write_png(
        p, (pattern(24, 31, 9)[:, :, 0].astype(np.uint16) * 3), 16, 0))
    save("gen_rgb16.png", lambda p: write_png(
        p, pattern(26, 35, 10).astype(np.uint16) * 257 + 3, 16, 2))
    save("gen_rgba16.png", lambda p: write_png(
        p, np.concatenate([pattern(21, 30, 11), pattern(21, 30, 12)[:, :, :1]], -1)
        .astype(np.uint16) * 251, 16, 6))
    save("gen_interlaced.png", lambda p: write_png(p, pattern(45, 37, 13), 8, 2, interlace=True))
    save("gen_pal4.png", lambda p: Image.fromarray(pattern(9, 17, 14)).quantize(16)
         .save(p, bits=4))
    save("gen_1bit.png", lambda p: Image.fromarray(pattern(19, 23, 15)[:, :, 0] > 128).save(p))
    save("gen_lossy.webp", lambda p: Image.fromarray(pattern(60, 90, 16)).save(p, quality=80))
    save("gen_alpha.webp", lambda p: Image.fromarray(np.concatenate(
        [pattern(33, 47, 17), pattern(33, 47, 18)[:, :, :1]], -1), "RGBA").save(p, lossless=True))
    return names


def to_rgb(im):
    """qwen-vl-utils to_rgb: RGBA pasted onto white with its alpha, else convert("RGB")."""
    if im.mode == "RGBA":
        bg = Image.new("RGB", im.size, (255, 255, 255))
        bg.paste(im, mask=im.split()[3])
        return bg
    return im.convert("RGB")


def crc(b):
    return zlib.crc32(b) & 0xFFFFFFFF


def f32_list(row):
    return [float(str(np.float32(v))) for v in row]


def run_case(path, name, budget, with_rows):
    mn, mx = budget
    rec = {"file": name, "min_pixels": mn, "max_pixels": mx}
    try:
        im = Image.open(path)
        im.load()
    except Exception as ex:  # noqa: BLE001 - we record what the reference says
        rec["error"] = f"{type(ex).__name__}: {ex}"
        return rec
    direct = hf_convert_to_rgb(im, return_numpy=True)
    rgb_im = to_rgb(im)
    rgb = np.asarray(rgb_im)
    rec.update(width=rgb_im.width, height=rgb_im.height, mode=im.mode,
               rgb_crc32=crc(rgb.tobytes()),
               transformers_direct_differs=bool(not np.array_equal(direct, rgb)))
    try:
        rh, rw = smart_resize(rgb_im.height, rgb_im.width, 28, mn, mx)
    except ValueError as ex:
        rec["error"] = str(ex)
        return rec
    resized = rgb_im if (rw, rh) == rgb_im.size else rgb_im.resize((rw, rh), Image.BICUBIC)
    rec.update(resized_h=rh, resized_w=rw, resized_crc32=crc(np.asarray(resized).tobytes()))
    proc = Qwen2VLImageProcessorPil(min_pixels=mn, max_pixels=mx)
    out = proc(images=[rgb_im], return_tensors="np")
    pv = np.ascontiguousarray(out["pixel_values"], dtype=np.float32)
    grid = [int(v) for v in out["image_grid_thw"][0]]
    n = pv.shape[0]
    rec.update(grid_thw=grid, n_tokens=n // 4, pv_rows=n, pv_cols=int(pv.shape[1]),
               pv_crc32=crc(pv.tobytes()), pv_sum=float(pv.astype(np.float64).sum()),
               pv_sumsq=float((pv.astype(np.float64) ** 2).sum()))
    if with_rows:
        rec["rows"] = {str(n // 2): f32_list(pv[n // 2])}
    return rec


def smart_table():
    sizes = [(1080, 1920, *DEFAULT), (1080, 1920, 3136, 1003520), (480, 640, *DEFAULT),
             (224, 224, *DEFAULT), (42, 70, *DEFAULT), (3, 5, *DEFAULT), (10, 10, *DEFAULT),
             (700, 500, 200704, 1003520), (4096, 4096, *DEFAULT), (4096, 4096, 3136, 1003520),
             (1, 200, *DEFAULT), (1, 201, *DEFAULT), (2, 401, *DEFAULT), (3, 601, *DEFAULT),
             (601, 3, *DEFAULT), (100, 20001, *DEFAULT), (7, 1400, 3136, 3136), (1, 199, 3136, 3136)]
    rs = np.random.RandomState(42)
    for _ in range(300):
        h, w = (int(v) for v in rs.randint(1, 9000, 2))
        mn = int(rs.choice([3136, 200704, 56 * 56 * 4]))
        mx = int(rs.choice([200704, 1003520, 12845056, 802816]))
        sizes.append((h, w, mn, max(mn, mx)))
    out = []
    for h, w, mn, mx in sizes:
        rec = {"h": h, "w": w, "min_pixels": mn, "max_pixels": mx}
        try:
            rec["rh"], rec["rw"] = smart_resize(h, w, 28, mn, mx)
        except ValueError as ex:
            rec["error"] = str(ex)
        out.append(rec)
    return out


def main():
    ap = argparse.ArgumentParser()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--shared", default=os.path.join(root, "..", "shared", "testdata", "images"))
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "images"))
    ap.add_argument("--regen-images", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    gen = sorted(f for f in os.listdir(a.out) if f.startswith("gen_"))
    if a.regen_images or not gen:
        gen = generate(a.out)
    cases = []
    for name in SHARED + gen:
        src = "shared" if name in SHARED else "fixture"
        path = os.path.join(a.shared if src == "shared" else a.out, name)
        for budget in (DEFAULT, SMALL):
            rec = run_case(path, name, budget, with_rows=budget == DEFAULT)
            rec["source"] = src
            cases.append(rec)
            print(name, budget, rec.get("grid_thw"), rec.get("error", ""), file=sys.stderr)
    doc = {
        "generator": "tools/image_reference.py",
        "reference": "Pillow decode + qwen-vl-utils to_rgb; transformers Qwen2VLImageProcessorPil",
        "versions": {"Pillow": PIL.__version__, "transformers": transformers.__version__,
                     "numpy": np.__version__},
        "smart_resize": smart_table(),
        "cases": cases,
    }
    with open(os.path.join(a.out, "reference.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
