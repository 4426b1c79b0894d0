"""Sending a fax: documents (PDF, TIFF, images) made into fax TIFF pages, and an agent's
fax sent through the callback trunk to a receiving fax machine (our reception on a
separate SIP user agent), retried after a busy answer, with the result on the record."""

from __future__ import annotations

import base64
import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from callcenter import events as ev
from callcenter.fax.outbound import DocumentError, prepare
from callcenter.fax.reception import ReceiveOptions, receive
from callcenter.fax.terminal import FaxResult
from callcenter.sip.calls import Call
from tests.fax.documents import make_document
from tests.fax.sender import FaxSender
from tests.support.peers import watch
from tests.support.polling import eventually
from tests.support.rig import short_ring


def _pdf(pages: int) -> bytes:
    images = []
    for n in range(pages):
        im = Image.new("1", (1240, 1754), 1)  # A4 at 150 dpi; bilevel: G4 in the PDF, small
        ImageDraw.Draw(im).rectangle((100, 100 + 50 * n, 900, 600), outline=0, width=8)
        images.append(im)
    buf = io.BytesIO()
    images[0].save(buf, "PDF", save_all=True, append_images=images[1:], resolution=150)
    return buf.getvalue()


def test_pdf_and_images_become_fax_pages_on_the_1728_pixel_line(tmp_path: Path) -> None:
    out = tmp_path / "out.tif"
    assert prepare(_pdf(2), out) == 2
    with Image.open(out) as tif:
        assert tif.n_frames == 2 and tif.width == 1728 and tif.mode == "1"
        assert tuple(round(d) for d in tif.info["dpi"]) == (204, 196)
        assert 2100 < tif.height < 2400  # A4 at 196 lines per inch
    png = io.BytesIO()
    Image.new("RGB", (800, 600), "white").save(png, "PNG")
    assert prepare(png.getvalue(), out) == 1
    with pytest.raises(DocumentError):
        prepare(b"this is no document", out)


async def test_an_agent_faxes_a_pdf_through_the_trunk_retried_after_busy(
    rig_factory: Any, server_factory: Callable[..., Awaitable[Any]], tmp_path: Path
) -> None:
    got: list[FaxResult] = []
    calls = 0

    async def fax_machine(call: Call) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await call.reject(486)  # busy the first time
            return
        got.append(await receive(call, str(tmp_path / "at-customer.tif"), ReceiveOptions(ident="CUSTOMER")))

    customer = await server_factory(fax_machine)

    def trunk(server: dict[str, Any]) -> None:
        server["callbacks"] = {"dial_uri": f"sip:{{digits}}@127.0.0.1:{customer.port}",
                               "retry_after_s": 0, "max_attempts": 3}  # fmt: skip

    rig = await rig_factory(short_ring, server_edit=trunk)
    log = watch(rig)
    alice = await rig.desktop("1001")
    doc = make_document(tmp_path / "in.tif", pages=1)
    assert (await FaxSender(str(doc), ani="441632960005").send(rig.sip, "7000")).ok
    cid = (await log.wait(ev.ContactArrived, channel="fax")).contact_id

    async def offered() -> bool:
        r = await alice.get("/api/agent/contacts")
        return any(c["contact_id"] == cid and c["phase"] == "offered" for c in r.json()["contacts"])

    await eventually(offered, timeout=20, interval=0.1)
    assert (await alice.post(f"/api/contacts/{cid}/accept")).status_code == 200
    body = {"number": "+441632960099", "name": "reply.pdf",
            "content_base64": base64.b64encode(_pdf(2)).decode()}  # fmt: skip
    r = await alice.post(f"/api/fax/{cid}/send", body)
    assert r.status_code == 202 and r.json()["pages"] == 2, r.text
    junk = base64.b64encode(b"nope").decode()
    bad = await alice.post(f"/api/fax/{cid}/send", {**body, "content_base64": junk})
    assert bad.status_code == 422

    sent = await log.wait(ev.ContactMessage, timeout=90, contact_id=cid, direction="out")
    assert sent.meta["sent"] is True and sent.meta["to"] == "+441632960099"
    assert [a["error"] != "" for a in sent.meta["attempts"]] == [True, False]  # busy, then sent
    assert got and got[0].ok and got[0].pages == 2 and got[0].remote_ident == ""  # no ident configured
    assert sent.attachments[0]["content_type"] == "image/tiff"
