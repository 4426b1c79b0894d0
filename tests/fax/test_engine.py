"""The SpanDSP terminals through ctypes, without a network: T.30 over G.711 audio both
ways, CNG detection through a µ-law encode/decode, and the received documents stored as
TIFF, PDF and PNG with size and SHA-256."""

from __future__ import annotations

import hashlib
import math
import struct
from pathlib import Path

import pytest
from PIL import Image

from callcenter.fax.document import store_received
from callcenter.fax.terminal import AudioFax, CngDetector, FaxJob
from callcenter.media import g711
from tests.fax.documents import differing_pages, make_document


def _line(pcm: bytes, codec: str) -> bytes:
    return g711.decode(codec, g711.encode(codec, pcm))


def _fax_over_audio(doc: Path, out: Path, codec: str, ecm: bool) -> tuple[AudioFax, AudioFax]:
    tx = AudioFax(FaxJob("send", str(doc), ident="+44 20 7946 0000", ecm=ecm))
    rx = AudioFax(FaxJob("receive", str(out), ident="CALLCENTER", ecm=ecm))
    for _ in range(50 * 180):
        if tx.done and rx.done:
            break
        a, b = tx.tx(), rx.tx()
        rx.rx(_line(a, codec))
        tx.rx(_line(b, codec))
    return tx, rx


@pytest.mark.parametrize(("codec", "ecm", "dpi"), [("PCMU", True, (204, 196)), ("PCMA", False, (204, 98))])
def test_t30_over_g711_delivers_every_page_unchanged(tmp_path: Path, codec: str, ecm: bool,
                                                     dpi: tuple[int, int]) -> None:
    doc = make_document(tmp_path / "sent.tif", pages=2, dpi=dpi)
    tx, rx = _fax_over_audio(doc, tmp_path / "received.tif", codec, ecm)
    assert tx.result is not None and rx.result is not None
    assert tx.result.ok and rx.result.ok, (tx.result, rx.result)
    assert rx.result.pages == 2 and rx.result.ecm is ecm and rx.result.bit_rate == 14400
    assert (rx.result.x_dpi, rx.result.y_dpi) == dpi
    assert rx.result.remote_ident == "+44 20 7946 0000" and tx.result.remote_ident == "CALLCENTER"
    assert differing_pages(doc, tmp_path / "received.tif") == []
    tx.close()
    rx.close()


def test_cng_from_a_calling_fax_is_heard_through_mulaw_and_speech_tones_are_not() -> None:
    caller = AudioFax(FaxJob("send", "/nonexistent.tif"))  # its first seconds are CNG
    det = CngDetector()
    frames = 0
    while not det.push(_line(caller.tx(), "PCMU")) and frames < 50 * 5:
        frames += 1
    assert det.detected and frames < 50 * 4  # CNG is 0.5 s on, 3 s off
    caller.close()
    det.close()
    quiet = CngDetector()
    tone = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / 8000)))
                    for n in range(8000 * 5))
    for i in range(0, len(tone), 320):
        quiet.push(_line(tone[i:i + 320], "PCMU"))
    assert not quiet.detected
    quiet.close()


def test_a_received_fax_is_stored_as_tiff_pdf_and_png_with_hashes(tmp_path: Path) -> None:
    doc = make_document(tmp_path / "sent.tif", pages=2, dpi=(204, 98))
    files = tmp_path / "files"
    stored = store_received(doc, files)
    assert stored.pages == 2 and stored.problem == ""
    assert stored.tiff is not None and stored.pdf is not None and stored.png is not None
    for f in (stored.tiff, stored.pdf, stored.png):
        data = (files / f.path).read_bytes()
        assert len(data) == f.size and hashlib.sha256(data).hexdigest() == f.sha256
    assert (files / stored.tiff.path).read_bytes() == doc.read_bytes()
    assert (files / stored.pdf.path).read_bytes().startswith(b"%PDF")
    with Image.open(files / stored.png.path) as png:
        # square pixels: a 98 dpi page is shown at its real proportions (A4-ish, not squashed)
        assert png.width == 864 and 1.1 < png.height / png.width < 1.5
    names = [a["name"] for a in stored.attachments("fax-1")]
    assert names == ["fax-1.tif", "fax-1.pdf", "fax-1.png"]


def test_nothing_received_and_an_unreadable_tiff_are_named_not_raised(tmp_path: Path) -> None:
    assert store_received(tmp_path / "none.tif", tmp_path / "files").problem == "no page arrived"
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00garbage")
    stored = store_received(bad, tmp_path / "files")
    assert stored.tiff is not None and stored.pdf is None and stored.problem.startswith("TIFF unreadable")
