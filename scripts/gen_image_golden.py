#!/usr/bin/python3
"""gen_image_golden.py: makes the image test fixtures under tests/data/image/ with PIL + numpy.

Run with Debian's Python (PIL 9.4, numpy):  /usr/bin/python3 scripts/gen_image_golden.py

Writes small source images (PNG RGB / L / P / RGBA / 16-bit, JPEG baseline / gray / progressive),
then the reference results tests/test_image.c compares against, listed in manifest.txt:

  decode  SRC  GOLD        PIL's Image.open(SRC).convert("RGB") pixels
  resize  SRC  FILTER W H GOLD   PIL's img.resize((W, H), FILTER) on the RGB image
  clip    SRC  N GOLD      CLIP's preprocessing (torchvision Resize(N, BICUBIC), CenterCrop(N),
                           ToTensor, Normalize) re-implemented here with PIL + numpy, float32 CHW

GOLD files: *.rgb = raw uint8 HWC, *.png = uint8 RGB stored losslessly as PNG (the larger ones,
to keep the folder small), *.f32 = raw little-endian float32.  The first manifest lines record
the versions used.
"""
import os
import struct
import sys
import zlib

import numpy as np
import PIL
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "data", "image")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def content(w, h, seed, noise=4.0, stripes=True, fmax=0.3):
    """Random-ish but compressible RGB content: gradients, discs, stripes, mild noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):
        fx, fy, ph = rng.uniform(0.02, fmax), rng.uniform(0.02, fmax), rng.uniform(0, 6.28)
        img[..., c] = 128 + 100 * np.sin(fx * x + fy * y + ph)
    for _ in range(4):  # hard-edged discs: ringing and clipping for bicubic
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(3, max(4, min(w, h) / 3))
        col = rng.integers(0, 256, 3)
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = col
    if stripes:
        img[:, ::7] = 255  # thin white columns: high frequency content
    img += rng.normal(0, noise, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def png16(path, arr16):
    """Writes a 16-bit RGB PNG by hand (PIL cannot write one)."""
    h, w, _ = arr16.shape
    raw = b"".join(b"\x00" + arr16[r].astype(">u2").tobytes() for r in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


def clip_preprocess(img, n):
    """OpenAI CLIP's _transform(n) on an RGB PIL image, as torchvision does it."""
    w, h = img.size
    if w <= h:
        ow, oh = n, int(n * h / w)
    else:
        ow, oh = int(n * w / h), n
    if (ow, oh) != (w, h):
        img = img.resize((ow, oh), Image.BICUBIC)
    top = int(round((oh - n) / 2.0))
    left = int(round((ow - n) / 2.0))
    img = img.crop((left, top, left + n, top + n))
    x = np.asarray(img, dtype=np.uint8).astype(np.float32) / np.float32(255)  # ToTensor
    x = x.transpose(2, 0, 1)
    mean = np.array(CLIP_MEAN, dtype=np.float32)[:, None, None]
    std = np.array(CLIP_STD, dtype=np.float32)[:, None, None]
    return ((x - mean) / std).astype(np.float32)  # Normalize: sub_(mean).div_(std)


def save_gold_u8(name, arr):
    path = os.path.join(OUT, name)
    if name.endswith(".png"):
        Image.fromarray(arr, "RGB").save(path, optimize=True)
    else:
        arr.astype(np.uint8).tofile(path)


def main():
    os.makedirs(OUT, exist_ok=True)
    lines = ["# made by scripts/gen_image_golden.py with PIL %s, numpy %s, python %s"
             % (PIL.__version__, np.__version__, sys.version.split()[0])]

    # --- sources -------------------------------------------------------------------------
    Image.fromarray(content(37, 23, 1), "RGB").save(os.path.join(OUT, "rgb_37x23.png"))
    Image.fromarray(content(64, 48, 2)[..., 1], "L").save(os.path.join(OUT, "gray_64x48.png"))
    pal = Image.fromarray(content(40, 30, 3), "RGB").quantize(colors=16)
    pal.info["transparency"] = 3  # tRNS entry: must be ignored by convert("RGB")
    pal.save(os.path.join(OUT, "palette_40x30.png"), transparency=3)
    rgba = np.dstack([content(33, 21, 4), content(33, 21, 5)[..., 0]])
    Image.fromarray(rgba, "RGBA").save(os.path.join(OUT, "rgba_33x21.png"))
    rng = np.random.default_rng(6)
    png16(os.path.join(OUT, "rgb16_7x5.png"), rng.integers(0, 65536, (5, 7, 3)))
    Image.fromarray(content(300, 200, 7, noise=0.0, stripes=False, fmax=0.06), "RGB").save(os.path.join(OUT, "photo_300x200.jpg"), quality=85)
    Image.fromarray(content(64, 48, 8)[..., 2], "L").save(os.path.join(OUT, "gray_64x48.jpg"), quality=90)
    Image.fromarray(content(64, 48, 9), "RGB").save(os.path.join(OUT, "prog_64x48.jpg"), quality=80,
                                                    progressive=True)
    # CMYK JPEG: refused by the decoder (AQA_EUNSUPPORTED); not part of the decode list
    Image.new("CMYK", (8, 8), (10, 20, 30, 40)).save(os.path.join(OUT, "cmyk_8x8.jpg"))
    sources = ["rgb_37x23.png", "gray_64x48.png", "palette_40x30.png", "rgba_33x21.png",
               "rgb16_7x5.png", "photo_300x200.jpg", "gray_64x48.jpg", "prog_64x48.jpg"]
    rgb = {}
    for s in sources:
        im = Image.open(os.path.join(OUT, s))
        im.load()
        rgb[s] = im.convert("RGB")
        a = np.asarray(rgb[s])
        gold = s.replace(".", "_") + ("_dec.png" if a.size > 20000 else "_dec.rgb")
        save_gold_u8(gold, a)
        lines.append("decode %s %s" % (s, gold))

    # --- resizes ---------------------------------------------------------------------------
    cases = [
        ("rgb_37x23.png", "bicubic", 80, 50),   # up both
        ("rgb_37x23.png", "bicubic", 15, 9),    # down both
        ("rgb_37x23.png", "bilinear", 61, 40),
        ("rgb_37x23.png", "bilinear", 20, 12),
        ("rgb_37x23.png", "bicubic", 50, 11),   # up one axis, down the other
        ("rgb_37x23.png", "bicubic", 37, 60),   # vertical pass only
        ("rgb_37x23.png", "bilinear", 19, 23),  # horizontal pass only
        ("gray_64x48.png", "bicubic", 7, 5),    # strong antialiasing
        ("palette_40x30.png", "bilinear", 41, 29),
        ("photo_300x200.jpg", "bicubic", 96, 64),
        ("photo_300x200.jpg", "bilinear", 120, 80),
        ("photo_300x200.jpg", "bicubic", 113, 77),
        ("prog_64x48.jpg", "bicubic", 112, 84),
    ]
    filt = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}
    for s, f, w, h in cases:
        a = np.asarray(rgb[s].resize((w, h), filt[f]))
        gold = "%s_%s_%dx%d%s" % (s.replace(".", "_"), f, w, h, ".png" if a.size > 20000 else ".rgb")
        save_gold_u8(gold, a)
        lines.append("resize %s %s %d %d %s" % (s, f, w, h, gold))

    # --- CLIP preprocessing ------------------------------------------------------------------
    for s, n in [("rgb_37x23.png", 32), ("gray_64x48.png", 20), ("rgba_33x21.png", 21), ("photo_300x200.jpg", 40),
                 ("palette_40x30.png", 24), ("prog_64x48.jpg", 40)]:
        x = clip_preprocess(rgb[s], n)
        gold = "%s_clip%d.f32" % (s.replace(".", "_"), n)
        x.astype("<f4").tofile(os.path.join(OUT, gold))
        lines.append("clip %s %d %s" % (s, n, gold))

    # --- a wider sweep stored as CRC-32 of PIL's bytes (exactness over many sizes, tiny files) ---
    rng = np.random.default_rng(10)
    for s in ["rgb_37x23.png", "photo_300x200.jpg", "gray_64x48.jpg"]:
        w0, h0 = rgb[s].size
        for f in ["bicubic", "bilinear"]:
            for _ in range(12):
                w = int(rng.integers(1, 3 * w0))
                h = int(rng.integers(1, 3 * h0))
                a = np.ascontiguousarray(np.asarray(rgb[s].resize((w, h), filt[f])))
                lines.append("resize_crc %s %s %d %d %08x" % (s, f, w, h, zlib.crc32(a.tobytes())))
            for w, h in [(1, 1), (w0 // 7 or 1, h0 // 7 or 1), (w0 * 4, h0 * 4)]:  # extremes
                a = np.ascontiguousarray(np.asarray(rgb[s].resize((w, h), filt[f])))
                lines.append("resize_crc %s %s %d %d %08x" % (s, f, w, h, zlib.crc32(a.tobytes())))
    for s, n in [("photo_300x200.jpg", 224), ("rgb_37x23.png", 224), ("prog_64x48.jpg", 77)]:
        x = clip_preprocess(rgb[s], n).astype("<f4")
        lines.append("clip_crc %s %d %08x" % (s, n, zlib.crc32(x.tobytes())))

    with open(os.path.join(OUT, "manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    total = sum(os.path.getsize(os.path.join(OUT, p)) for p in os.listdir(OUT))
    print("wrote %d entries, %d bytes in %s" % (len(lines) - 1, total, OUT))


if __name__ == "__main__":
    main()
