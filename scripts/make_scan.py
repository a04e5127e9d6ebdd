#!/usr/bin/env python3
"""Write a generated "scan" of known text: pages of pixels only, no text layer.

For the OCR tests and `hort bench ocr`: the text is drawn with DejaVu (`make
ocr` fetches it into data/tools/fonts; German umlauts and ß) at 300 dpi on A4, as a
scanner would give it, optionally with a slight skew and speckle noise
(`--dirty`), and saved as a PDF of images (`.pdf`) or an image (`.png`,
`.jpg`, `.tif`). Pages are separated by form feeds in the input; lines wrap
at about 70 characters.

Usage: make_scan.py INPUT.txt OUTPUT.{pdf,png,jpg,tif} [--dirty] [--size PT] [--serif]
(needs Pillow: PYTHONPATH=data/py after `make pydeps`)
"""
import os
import random
import sys
import textwrap

from PIL import Image, ImageDraw, ImageFont

DPI = 300
A4 = (2480, 3508)
FONTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "tools", "fonts",
                     "usr", "share", "fonts", "truetype", "dejavu")


def page_image(text, size_pt, dirty, seed, serif):
    img = Image.new("L", A4, 255)
    draw = ImageDraw.Draw(img)
    px = round(size_pt * DPI / 72)
    name = "DejaVuSerif.ttf" if serif else "DejaVuSans.ttf"
    font = ImageFont.truetype(os.path.join(FONTS, name), px)
    y = 250
    for para in text.split("\n"):
        lines = textwrap.wrap(para, 70) if para.strip() else [""]
        for line in lines:
            draw.text((220, y), line, fill=0, font=font)
            y += round(px * 1.5)
        if y > A4[1] - 300:
            break
    if dirty:
        rnd = random.Random(seed)
        img = img.rotate(rnd.uniform(-0.8, 0.8), fillcolor=255, resample=Image.BICUBIC)
        pixels = img.load()
        for _ in range(A4[0] * A4[1] // 2000):
            x, yy = rnd.randrange(A4[0]), rnd.randrange(A4[1])
            pixels[x, yy] = rnd.choice((0, 90, 180))
    return img


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        sys.exit(__doc__)
    dirty = "--dirty" in sys.argv
    size = 11.0
    if "--size" in sys.argv:
        size = float(sys.argv[sys.argv.index("--size") + 1])
        args = [a for a in args if a != sys.argv[sys.argv.index("--size") + 1]]
    src, out = args
    with open(src, encoding="utf-8") as f:
        pages = f.read().split("\f")
    serif = "--serif" in sys.argv
    imgs = [page_image(p, size, dirty, i, serif) for i, p in enumerate(pages)]
    if out.endswith(".pdf"):
        imgs[0].save(out, "PDF", resolution=DPI, save_all=True, append_images=imgs[1:])
    elif out.endswith((".tif", ".tiff")):
        imgs[0].save(out, dpi=(DPI, DPI), save_all=True, append_images=imgs[1:], compression="tiff_deflate")
    else:
        imgs[0].save(out, dpi=(DPI, DPI))


if __name__ == "__main__":
    main()
