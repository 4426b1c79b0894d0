"""A received fax as documents: the TIFF-F as it arrived, a PDF for people, a PNG of
page 1 for the desk; each stored content-addressed (``crm_bridge.files``: size, SHA-256).

PDF and PNG are made with Pillow (already our TIFF reader, through libtiff): its PDF
writer embeds each bilevel page CCITT G4-compressed, so the PDF is lossless and about
the size of the TIFF, and it takes the fax's two resolutions (e.g. 204×98 dpi) as the
page's dpi, so a standard-resolution page is not printed squashed. img2pdf would embed
the TIFF's own G4 data without re-encoding, but it brings pikepdf and lxml; for 1-bit
fax pages Pillow's output is the same image, so one library does all three jobs.

A fax that ended badly but brought pages is kept whole (``partial``): the pages that
arrived complete are in the TIFF (SpanDSP writes a page when it ends).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageSequence, UnidentifiedImageError

from crm_bridge.files import StoredFile, store_bytes, store_path

log = logging.getLogger(__name__)
PNG_WIDTH = 864  # half a fax line: readable on the desk, a fifth of the pixels


@dataclass(slots=True)
class FaxDocument:
    pages: int
    tiff: StoredFile | None
    pdf: StoredFile | None
    png: StoredFile | None
    problem: str = ""  # why a file is missing (no page arrived, unreadable TIFF)

    def attachments(self, stem: str) -> list[dict[str, Any]]:
        """ContactMessage attachments: name, size, sha256, path, content_type."""
        out = []
        for stored, suffix, ctype in (
            (self.tiff, "tif", "image/tiff"),
            (self.pdf, "pdf", "application/pdf"),
            (self.png, "png", "image/png"),
        ):
            if stored is not None:
                out.append({"name": f"{stem}.{suffix}", "size": stored.size,
                            "sha256": stored.sha256, "path": stored.path, "content_type": ctype})
        return out


def read_pages(path: Path) -> list[Image.Image]:
    """Every page of a fax TIFF, loaded (bilevel)."""
    with Image.open(path) as im:
        return [page.convert("1") for page in ImageSequence.Iterator(im)]


def _page_dpi(page: Image.Image, fallback: tuple[int, int]) -> tuple[float, float]:
    dpi = page.info.get("dpi")
    if dpi and dpi[0] and dpi[1]:
        return float(dpi[0]), float(dpi[1])
    return float(fallback[0]), float(fallback[1])


def render_png(page: Image.Image, dpi: tuple[float, float]) -> bytes:
    """Page 1 for a screen: square pixels (a 98 dpi page is stretched to the 204 dpi
    width's scale), scaled to ``PNG_WIDTH``, greyscale so the downscale stays legible."""
    x_dpi, y_dpi = dpi
    height = round(page.height * (x_dpi / y_dpi) * PNG_WIDTH / page.width)
    small = page.convert("L").resize((PNG_WIDTH, max(height, 1)), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    small.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def render_pdf(pages: list[Image.Image], dpi: tuple[float, float]) -> bytes:
    buf = io.BytesIO()
    pages[0].save(buf, "PDF", save_all=True, append_images=pages[1:], dpi=dpi)
    return buf.getvalue()


def store_received(tiff_path: Path, files_dir: Path,
                   fallback_dpi: tuple[int, int] = (204, 196)) -> FaxDocument:
    """Store what a reception left in ``tiff_path``. Never raises for a bad file: a
    TIFF Pillow cannot read is still stored as it is, and the problem named."""
    if not tiff_path.exists() or tiff_path.stat().st_size == 0:
        return FaxDocument(0, None, None, None, "no page arrived")
    tiff = store_path(files_dir, tiff_path)
    try:
        pages = read_pages(tiff_path)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        log.warning("fax TIFF %s unreadable: %s", tiff_path, exc)
        return FaxDocument(0, tiff, None, None, f"TIFF unreadable: {exc}")
    if not pages:
        return FaxDocument(0, tiff, None, None, "no page arrived")
    dpi = _page_dpi(pages[0], fallback_dpi)
    pdf = store_bytes(files_dir, render_pdf(pages, dpi))
    png = store_bytes(files_dir, render_png(pages[0], dpi))
    return FaxDocument(len(pages), tiff, pdf, png)
