"""Answer and decline a ringing call from the desk (issue 19).

Answer: SIPp plays a desk phone with auto-answer by header (tests/web/sipp/): the first
INVITE only rings; the desk's Answer re-offers the leg with ``Call-Info: …;answer-after=0``,
which the phone answers, and the call connects. (Debian's baresip 1.0.0 honours no
auto-answer header — its ``sip_autoanswer`` came later — so SIPp is the phone here.)
Decline: baresip rings without answering; the agent declines in Chromium from the work list;
the phone stops ringing and routing never offers the call to that agent again."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from browser_rig import playwright_api, watch
from test_desk_page import GRACE, T, carol_available

from callcenter import events as ev
from callcenter.contacts.contact import Phase
from callcenter.web.pages import mount_pages
from tests.support import free_udp_port, require_tool
from tests.support.polling import eventually
from tests.support.rig import short_ring

SIPP = Path(__file__).with_name("sipp")
expect = playwright_api().expect


def long_offers(queues: dict[str, Any]) -> None:
    """The offer stands long enough for the desk to act on it (no RONA meanwhile)."""
    short_ring(queues)
    queues["queues"]["sales"]["reservation_timeout_s"] = 60


@contextlib.asynccontextmanager
async def sipp_phone(rig: Any, agent: str, workdir: Path) -> Any:
    """SIPp registered as ``agent``'s desk phone; yields its message log file."""
    sipp = require_tool("sipp", "sip-tester")
    registered = asyncio.Event()
    rig.center.registrar.on_change(lambda user, up: registered.set() if user == agent and up else None)
    workdir.mkdir(parents=True, exist_ok=True)
    host, port = rig.sip
    proc = await asyncio.create_subprocess_exec(
        sipp, "-sf", str(SIPP / "phone_register.xml"), "-oocsf", str(SIPP / "phone_autoanswer.xml"),
        f"{host}:{port}", "-i", "127.0.0.1", "-p", str(free_udp_port()), "-mp", str(free_udp_port()),
        "-s", agent, "-au", agent, "-ap", f"demo-{agent}", "-m", "1", "-nostdin", "-trace_logs",
        "-log_file", str(workdir / "phone.log"), "-trace_msg", "-message_file", str(workdir / "messages.log"),
        cwd=workdir, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)  # fmt: skip
    try:
        await asyncio.wait_for(registered.wait(), 20)
        yield workdir / "phone.log"
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


def invites(log: Path) -> list[str]:
    """What the phone saw of each INVITE: "auto=answer-after=0", or "auto=" without the header."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return [line.strip() for line in text.splitlines() if line.strip().startswith("INVITE auto=")]


async def test_answer_from_the_desk_auto_answers_the_phone(rig_factory: Any, tmp_path: Path) -> None:
    rig = await rig_factory(long_offers)
    log = watch(rig)
    async with sipp_phone(rig, "1003", tmp_path / "phone") as phone_log:
        carol = await rig.desktop("1003")
        caller = await rig.caller()
        call = await caller.call("5000", rig.sip, ani=GRACE)
        call.media.send_dtmf("3")
        offered = await log.wait(ev.AgentOffered, agent_id="1003")
        cid = offered.contact_id
        await eventually(lambda: invites(phone_log) == ["INVITE auto="], 20, what="the phone rings")
        items = {i["contact_id"]: i for i in (await carol.get("/api/agent/contacts")).json()["contacts"]}
        assert items[cid]["phase"] == "offered" and items[cid]["desk_accept"] is True
        assert log.of(ev.ContactConnected, contact_id=cid) == []  # ringing, not answered by itself

        r = await carol.post(f"/api/contacts/{cid}/accept")
        assert r.status_code == 200, r.text
        await log.wait(ev.ContactConnected, contact_id=cid, agent_id="1003")
        assert invites(phone_log) == ["INVITE auto=", "INVITE auto=answer-after=0"]
        assert log.of(ev.OfferRejected, contact_id=cid) == []  # the same offer, answered
        assert (await carol.post(f"/api/contacts/{cid}/accept")).status_code == 409  # not ringing now

        await call.hangup()
        await log.wait(ev.WrapUpStarted, contact_id=cid, agent_id="1003")


async def test_decline_from_the_desk_stops_the_ringing(rig_factory: Any, new_page: Any) -> None:
    rig = await rig_factory(long_offers)
    mount_pages(rig.center.app)
    log = watch(rig)
    phone = await rig.phone("1003", answer="manual")  # rings until someone answers
    page, errors = await carol_available(rig, new_page, log, phone=False)
    caller = await rig.caller()
    call = await caller.call("5000", rig.sip, ani=GRACE)
    call.media.send_dtmf("3")
    cid = (await log.wait(ev.AgentOffered, agent_id="1003")).contact_id
    await phone.wait_event(lambda e: e.get("type") == "CALL_INCOMING")

    item = page.locator(f'.work-item[data-contact-id="{cid}"]')
    await expect(item).to_have_attribute("data-channel", "voice", timeout=T)
    await expect(item.locator(".work-accept")).to_have_text("Answer")
    await item.locator(".work-decline").click()
    assert (await log.wait(ev.OfferRejected, contact_id=cid)).reason == "declined"
    await phone.wait_event(lambda e: e.get("type") == "CALL_CLOSED")  # CANCELled: it stops ringing
    await expect(item).to_have_count(0, timeout=T)
    contact = rig.center.core.contacts[cid]
    assert contact.phase is Phase.QUEUED and "1003" in rig.center.router.tasks[cid].rejected_by
    assert call.is_active  # the caller still waits for another agent
    assert errors.items == []
