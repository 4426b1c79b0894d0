"""Sending a fax: a document (PDF, TIFF, or an image) made into TIFF-F and sent with T.30
over G.711 through the callback trunk (``callbacks.dial_uri``), retried as callbacks are.

Pages are rendered at fine resolution (204×196 dpi) on the A4 fax line of 1728 pixels,
bilevel, G4-compressed — what every fax machine accepts. A PDF is rasterised by
poppler's ``pdftoppm`` (Debian ``poppler-utils``; its absence is named, never a crash),
anything else by Pillow.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageSequence, UnidentifiedImageError

from callcenter.fax.media_port import forget, start_fax, stop_fax
from callcenter.fax.terminal import FaxJob, FaxResult
from callcenter.sip.calls import Call, CallError, CallFailed

log = logging.getLogger(__name__)
LINE = 1728  # pixels on an A4 fax line at 204 dpi
DPI = (204, 196)
MAX_PAGES = 50
PDF_TIMEOUT_S = 60.0


class DocumentError(ValueError):
    """A document that cannot be faxed, with the reason in words."""


def _fax_page(page: Image.Image) -> Image.Image:
    """A page at 204×196 dpi on the fax line: scaled to 1728 wide, bilevel (dithered)."""
    src_dpi = page.info.get("dpi") or (DPI[0], DPI[0])
    sx, sy = float(src_dpi[0] or DPI[0]), float(src_dpi[1] or src_dpi[0] or DPI[0])
    width = LINE
    height = max(1, round(page.height * (LINE / page.width) * (DPI[1] / DPI[0]) * (sx / sy)))
    gray = page.convert("L").resize((width, height), Image.Resampling.LANCZOS)
    return gray.convert("1")


def _pdf_pages(data: bytes) -> list[Image.Image]:
    tool = shutil.which("pdftoppm")
    if tool is None:
        raise DocumentError("PDF cannot be faxed: pdftoppm (Debian package poppler-utils) is not installed")
    with tempfile.TemporaryDirectory(prefix="fax-pdf-") as tmp:
        src = Path(tmp) / "in.pdf"
        src.write_bytes(data)
        try:
            subprocess.run([tool, "-r", str(DPI[0]), "-gray", "-l", str(MAX_PAGES), str(src),
                            str(Path(tmp) / "p")], check=True, capture_output=True,
                           timeout=PDF_TIMEOUT_S)  # fmt: skip
        except subprocess.CalledProcessError as exc:
            raise DocumentError(f"PDF unreadable: {exc.stderr.decode(errors='replace')[:200]}") from None
        except subprocess.TimeoutExpired:
            raise DocumentError("PDF took too long to render") from None
        pages = []
        for png in sorted(Path(tmp).glob("p*.pgm")) + sorted(Path(tmp).glob("p*.png")):
            with Image.open(png) as im:
                im.load()
                im.info["dpi"] = (DPI[0], DPI[0])
                pages.append(im.copy())
        return pages


def prepare(data: bytes, out: Path) -> int:
    """Write ``data`` (PDF, TIFF or an image) to ``out`` as a fax TIFF; the page count."""
    if data[:5] == b"%PDF-":
        pages = _pdf_pages(data)
    else:
        try:
            with Image.open(io.BytesIO(data)) as im:
                pages = []
                for page in ImageSequence.Iterator(im):
                    copy = page.copy()
                    copy.info["dpi"] = page.info.get("dpi") or (DPI[0], DPI[0])
                    pages.append(copy)
                    if len(pages) >= MAX_PAGES:
                        break
        except (UnidentifiedImageError, OSError) as exc:
            raise DocumentError(f"not a PDF, TIFF or image: {exc}") from None
    if not pages:
        raise DocumentError("the document has no page")
    fax_pages = [_fax_page(p) for p in pages]
    fax_pages[0].save(out, compression="group4", dpi=DPI, save_all=True, append_images=fax_pages[1:])
    return len(fax_pages)


@dataclass(slots=True)
class Attempt:
    number: int
    result: FaxResult | None  # None: the call did not connect
    error: str = ""  # why the call failed (SIP status), when it did


async def send_once(place_call: Callable[[], Awaitable[Call]], tiff: Path, ident: str,
                    ecm: bool, max_seconds: float) -> FaxResult:
    """One call: dial, send with T.30 over G.711, hang up. Raises CallFailed."""
    call = await place_call()
    fut = start_fax(call.media, FaxJob("send", str(tiff), ident=ident, ecm=ecm))
    ended = asyncio.ensure_future(call.ended.wait())
    try:
        await asyncio.wait({fut, ended}, timeout=max_seconds, return_when=asyncio.FIRST_COMPLETED)
        if not fut.done():
            stop_fax(call.media)
        result = await asyncio.wait_for(asyncio.shield(fut), 5.0)
    finally:
        ended.cancel()
        forget(call.media)
        if call.is_active:
            with contextlib.suppress(CallError):
                await call.hangup("fax_sent")
    return result


async def send_with_retries(place_call: Callable[[], Awaitable[Call]], tiff: Path, *, ident: str,
                            ecm: bool, max_attempts: int, retry_after_s: float, max_seconds: float,
                            on_attempt: Callable[[Attempt], None]) -> list[Attempt]:  # fmt: skip
    """Up to ``max_attempts`` calls until one sends the whole document."""
    attempts: list[Attempt] = []
    for n in range(1, max_attempts + 1):
        try:
            attempt = Attempt(n, await send_once(place_call, tiff, ident, ecm, max_seconds))
        except CallFailed as exc:
            attempt = Attempt(n, None, str(exc) or "call failed")
        attempts.append(attempt)
        on_attempt(attempt)
        if attempt.result is not None and attempt.result.ok:
            break
        if n < max_attempts:
            await asyncio.sleep(retry_after_s)
    return attempts
