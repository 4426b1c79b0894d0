"""Fax documents made in the test (Pillow): distinct text and shapes per page, so a page
received in the wrong order or damaged shows as a pixel difference."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageChops, ImageDraw

from callcenter.fax.document import read_pages

WIDTH = 1728  # an A4 fax line at 204 dpi


def make_document(path: Path, pages: int = 2, dpi: tuple[int, int] = (204, 196)) -> Path:
    height = 2200 if dpi[1] > 150 else 1100
    images = []
    for n in range(pages):
        im = Image.new("1", (WIDTH, height), 1)
        d = ImageDraw.Draw(im)
        d.rectangle((100 + 40 * n, 100, 900 + 40 * n, height // 3), outline=0, width=6)
        d.ellipse((1000, 200 + 60 * n, 1500, 600 + 60 * n), outline=0, width=5)
        for line in range(12):
            d.text((150, height // 2 + 40 * line), f"page {n + 1} line {line}: order 4711-{n}", fill=0)
        images.append(im)
    images[0].save(path, compression="group4", dpi=dpi, save_all=True, append_images=images[1:])
    return path


def differing_pages(sent: Path, received: Path) -> list[int]:
    """Indexes of the pages that differ (a missing page counts as differing)."""
    a, b = read_pages(sent), read_pages(received)
    out = [i for i, (x, y) in enumerate(zip(a, b, strict=False))
           if x.size != y.size or ImageChops.difference(x, y).getbbox() is not None]
    return out + list(range(min(len(a), len(b)), max(len(a), len(b))))
