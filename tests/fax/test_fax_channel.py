"""The fax as a contact, through the whole server (Center, media in worker processes):
a SpanDSP fax machine calls DNIS 7000, the fax is routed to an agent with the fax skill,
the desk API shows its pages and closes it, and the interaction record keeps the
document (TIFF, PDF, PNG with SHA-256) with outcome fax_received; a fax that brings no
page ends as fax_failed with T.30's reason; a fax machine calling a voice number is heard
(CNG) during the IVR and received as a fax."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from callcenter import events as ev
from tests.fax.documents import make_document
from tests.fax.sender import FaxSender
from tests.support.peers import watch
from tests.support.polling import eventually
from tests.support.rig import short_ring

FAX_FROM = "+441632960005"


async def _record(rig: Any, cid: str) -> dict[str, Any]:
    await rig.center.bus.drain()
    await rig.center.crm_events.flush()
    record = await rig.center.crm.interaction(cid)
    assert record is not None
    return dict(record)


async def _fax_items(desk: Any) -> list[dict[str, Any]]:
    r = await desk.get("/api/agent/contacts")
    assert r.status_code == 200, r.text
    return [c for c in r.json()["contacts"] if c["channel"] == "fax"]


async def test_a_fax_to_7000_reaches_an_agent_with_its_pages_and_is_recorded(
    rig_factory: Any, tmp_path: Path
) -> None:
    rig = await rig_factory(short_ring, media_workers=2)
    log = watch(rig)
    alice = await rig.desktop("1001")  # fax skill
    doc = make_document(tmp_path / "order.tif", pages=2)
    sender = FaxSender(str(doc), ani=FAX_FROM.lstrip("+"), ident="+44 1632 960005")
    sent = await sender.send(rig.sip, "7000")
    assert sent.ok, sent
    cid = (await log.wait(ev.ContactArrived, dnis="7000")).contact_id

    async def offered() -> dict[str, Any] | None:
        items = await _fax_items(alice)
        return items[0] if items and items[0]["phase"] == "offered" else None

    item = await eventually(offered, timeout=20, interval=0.1)
    assert item["contact_id"] == cid and item["queue"] == "backoffice"
    view = item["view"]
    assert view["pages"] == 2 and view["ok"] and view["tsi"] == "+44 1632 960005"
    assert view["resolution"] == "204x196" and view["ecm"] and view["bit_rate"] == 14400
    assert (await alice.post(f"/api/contacts/{cid}/accept")).status_code == 200
    png = await alice.get(view["page1"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    pdf = await alice.get(view["pdf"])
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    bob = await rig.desktop("1002")
    assert (await bob.get(view["page1"])).status_code == 404  # not his contact
    assert (await alice.post(f"/api/contacts/{cid}/end")).status_code == 200
    r = await alice.post(f"/api/contacts/{cid}/wrapup", {"disposition": "processed"})
    assert r.status_code == 200, r.text

    record = await _record(rig, cid)
    assert record["channel"] == "fax" and record["outcome"] == "fax_received"
    (message,) = record["messages"]
    assert message["meta"]["t30_ok"] is True and message["meta"]["fax"]["pages"] == 2
    names = sorted(a["name"] for a in message["attachments"])
    assert names == [f"fax-{cid}.pdf", f"fax-{cid}.png", f"fax-{cid}.tif"]
    files = tmp_path / "files"
    for a in message["attachments"]:
        data = (files / a["path"]).read_bytes()
        assert len(data) == a["size"] and hashlib.sha256(data).hexdigest() == a["sha256"]


async def test_a_fax_that_brings_no_page_ends_fax_failed_with_the_t30_reason(
    rig_factory: Any, tmp_path: Path
) -> None:
    rig = await rig_factory(short_ring)
    log = watch(rig)
    doc = make_document(tmp_path / "order.tif", pages=1)
    sender = FaxSender(str(doc), ani=FAX_FROM.lstrip("+"), hangup_after_pages=0)
    await sender.send(rig.sip, "7000")
    cid = (await log.wait(ev.ContactArrived, dnis="7000")).contact_id
    ended = await log.wait(ev.ContactEnded, contact_id=cid)
    assert ended.reason == "fax_failed"
    record = await _record(rig, cid)
    assert record["outcome"] == "fax_failed"
    (message,) = record["messages"]
    assert message["meta"]["t30_ok"] is False and message["meta"]["fax"]["reason"]
    assert message["attachments"] == []


async def test_a_fax_machine_calling_the_voice_line_is_heard_and_received_as_a_fax(
    rig_factory: Any, tmp_path: Path
) -> None:
    rig = await rig_factory(short_ring, server_edit=lambda s: s.update(fax={"detect_on": ["main"]}))
    log = watch(rig)
    alice = await rig.desktop("1001")
    doc = make_document(tmp_path / "claim.tif", pages=1)
    sent = await FaxSender(str(doc), ani=FAX_FROM.lstrip("+")).send(rig.sip, "5000")
    assert sent.ok, sent
    voice = await log.wait(ev.ContactArrived, dnis="5000", channel="voice")
    assert (await log.wait(ev.ContactEnded, contact_id=voice.contact_id)).reason == "fax_detected"
    fax = await log.wait(ev.ContactArrived, channel="fax")
    assert fax.service == "fax-in"

    async def offered() -> dict[str, Any] | None:
        items = await _fax_items(alice)
        return items[0] if items and items[0]["view"].get("pages") == 1 else None

    assert (await eventually(offered, timeout=20, interval=0.1))["contact_id"] == fax.contact_id
