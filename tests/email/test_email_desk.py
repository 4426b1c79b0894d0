"""The email channel through the whole server (``Center`` in the test's loop): mail sent
with smtplib to the SMTP listener is routed to an agent, who accepts, replies (the reply
reaches a real SMTP sink with the thread's headers) and closes with a disposition in the
desk page in headless chromium; the record shows the thread. Also: VIP priority, robots
recorded not routed, "not sent: no relay", and a restart putting a waiting email back in
its queue."""

from __future__ import annotations

import email
import email.policy
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import ImapServer, SmtpSink
from test_email_intake import mail, send

from callcenter.center import Center
from callcenter.config import load_config
from tests.support import eventually, unavailable
from tests.support.peers import ROOT, make_config_dir
from tests.support.rig import Rig

T = 30_000  # ms: the bound of every wait on a page
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
MARKUP = '<img src=x onerror="window.__pwned=1"> see <b>bold</b>'


def short_queues(queues: dict[str, Any]) -> None:
    for q in queues["queues"].values():
        q["reservation_timeout_s"] = 60
        q["wrap_up_s"] = 600
        q.pop("escalation", None)
        q["preferred_agent_timeout_s"] = 0


@pytest.fixture
async def email_rig(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await email_rig(relay_port=None)``: a started server with the demo email config."""
    rigs: list[Rig] = []

    async def make(
        relay_port: int | None = None, name: str = "rig", imap: dict[str, Any] | None = None
    ) -> Rig:
        def edit(server: dict[str, Any]) -> None:
            if imap is not None:
                server["email"]["imap"] = [imap]
            if relay_port is not None:
                server["email"]["outbound"] = {
                    "relay": {"host": "127.0.0.1", "port": relay_port, "starttls": False, "timeout_s": 5}
                }

        d = make_config_dir(tmp_path / name, short_queues, server_edit=edit)
        center = Center(load_config(d), flows_dir=ROOT / "ivr_flows")
        await center.start()
        rig = Rig(tmp_path / name, center)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        await rig.close()
        await rig.center.stop()


def smtp_port(rig: Rig) -> int:
    assert rig.center.email is not None and rig.center.email.smtp is not None
    return rig.center.email.smtp.port


async def record_of(rig: Rig, contact_id: str) -> Any:
    await rig.center.bus.drain()
    await rig.center.crm_events.flush()
    return await rig.center.crm.interaction(contact_id)


@pytest.fixture
async def page() -> AsyncIterator[Any]:
    try:
        import playwright.async_api as api
    except ImportError:
        unavailable("the playwright Python package", "pip install playwright")
    if not Path(CHROMIUM).is_file():
        unavailable("chromium", "apt-get install chromium")
    async with api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            ctx = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            p = await ctx.new_page()
            p.errors = []
            p.on("pageerror", lambda exc: p.errors.append(str(exc)))
            yield p
        finally:
            await browser.close()


async def test_accept_reply_close_in_the_desk(email_rig: Any, page: Any, smtp_sink: SmtpSink) -> None:
    from playwright.async_api import expect

    rig = await email_rig(relay_port=smtp_sink.port)
    await page.goto(f"{rig.http}/desk")
    await page.fill("#login-username", "1002")
    await page.fill("#login-password", "demo-1002")
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#link")).to_have_text("live", timeout=T)
    await page.click("#btn-available")
    await expect(page.locator("#state")).to_have_text("Available", timeout=T)

    m = email.message.EmailMessage()
    m["From"], m["To"] = "Ada Lovelace <ada@example.com>", "support@callcenter.local"
    m["Subject"] = "Engine notes"
    m["Message-ID"] = "<desk1@example.com>"
    m.set_content(f"My notes are missing. {MARKUP}")
    m.add_attachment(b"%PDF-1.4 notes", maintype="application", subtype="pdf", filename="notes.pdf")
    await send(smtp_port(rig), m.as_bytes(policy=email.policy.SMTP))

    item = page.locator('.work-item[data-channel="email"]')
    await expect(item).to_have_attribute("data-phase", "offered", timeout=T)
    cid = await item.get_attribute("data-contact-id")
    await item.locator(".work-select").click()
    panel = page.locator(".email-view")
    await expect(panel.locator(".email-in .email-text")).to_contain_text("My notes are missing.", timeout=T)
    await expect(panel.locator(".email-in .email-text")).to_contain_text(MARKUP)  # as text, not markup
    assert await panel.locator(".email-text img, .email-text b").count() == 0
    await expect(panel.locator(".email-attachment")).to_have_text("notes.pdf")
    await expect(panel.locator(".email-out .email-from")).to_have_text("Automatic acknowledgement")
    await item.locator(".work-accept").click()
    await expect(item).to_have_attribute("data-phase", "connected", timeout=T)

    async with page.expect_download() as download:
        await panel.locator(".email-attachment").click()
    assert Path(await (await download.value).path()).read_bytes() == b"%PDF-1.4 notes"

    await page.fill(".email-reply-text", "Found them: they were in the drawer.")
    await page.click(".email-send")
    await eventually(
        lambda: any(
            e.rcpt_tos == ["ada@example.com"] and b"drawer" in e.original_content for e in smtp_sink.received
        ),
        20,
        what="the reply at the relay",
    )
    reply = next(e for e in smtp_sink.received if b"drawer" in e.original_content)
    sent = email.message_from_bytes(reply.original_content, policy=email.policy.default)
    assert sent["In-Reply-To"] == "<desk1@example.com>"
    assert "<desk1@example.com>" in sent["References"]
    assert f"[#{cid}]" in sent["Subject"]
    assert "> My notes are missing." in sent.get_content()
    await expect(panel.locator(".email-out .email-text").last).to_contain_text("in the drawer", timeout=T)

    await panel.locator(".email-close").click()
    await expect(page.locator("#task-wrapup-form")).to_be_visible(timeout=T)
    await page.select_option("#task-wrapup-disposition", "resolved")
    await page.click("#task-wrapup-submit")

    async def closed() -> Any:
        rec = await record_of(rig, cid)
        return rec if rec is not None and rec["disposition"] == "resolved" else None

    record = await eventually(closed, 15)
    assert record["channel"] == "email" and record["agent_id"] == "1002"
    assert record["customer_id"] == "c-demo-ada-lovelace"
    assert [(x["direction"], x["author"]) for x in record["messages"]] == [
        ("in", "ada@example.com"),
        ("out", "auto"),
        ("out", "1002"),
    ]  # the acknowledgement, the reply
    assert any(a.get("name") == "notes.pdf" for a in record["attachments"])
    assert page.errors == []


async def test_vip_priority_robots_and_no_relay(email_rig: Any) -> None:
    rig = await email_rig()
    port = smtp_port(rig)
    # Grace Hopper is a VIP (demo CRM): her email gets the mailbox's vip_priority
    await send(
        port,
        mail("grace@example.com", "Urgent", "please", msgid="vip@example.com"),
        mail_from="grace@example.com",
    )
    await send(
        port,
        mail(
            "bot@example.com", "Out of office", "away", msgid="ooo@example.com", Auto_Submitted="auto-replied"
        ),
        mail_from="bot@example.com",
    )
    core = rig.center.core

    def email_contacts() -> list[Any]:
        return [c for c in core.contacts.values() if c.channel == "email" and str(c.phase) == "queued"]

    (vip,) = await eventually(email_contacts, 15)
    assert vip.priority == 10 and vip.queue == "support" and vip.customer["id"] == "c-demo-grace-hopper"
    store = rig.center.email.store
    rows = await eventually(lambda: _done(store, 2), 15)
    robot = next(r for r in rows if r["message_id"] == "ooo@example.com")
    assert robot["outcome"] == "not_routed"
    rec = await record_of(rig, robot["contact_id"])
    assert rec["status"] == "ended" and rec["end_reason"].startswith("not_routed")
    # supervisors see the email figures per queue; agents may not
    sup = await rig.desktop("supervisor")
    figures = {q["queue"]: q for q in (await sup.get("/api/email/queues")).json()}
    assert (figures["support"]["waiting"], figures["support"]["overdue"]) == (1, 0)
    assert figures["sales"]["waiting"] == 0  # every mailbox's queue is listed, also when quiet
    agent = await rig.desktop("1001", ready=False)
    assert (await agent.get("/api/email/queues")).status_code == 403
    # the acknowledgement went to Grace only, and is kept: no relay
    acks = await rig.center.email.store.outbound_state([vip.contact_id])
    assert [a["state"] for a in acks.values()] == ["no_relay"]


async def _done(store: Any, n: int) -> list[dict[str, Any]] | None:
    from sqlalchemy import select

    from crm_bridge.email_schema import email_messages as m

    async with store.crm.engine.connect() as conn:
        rows = [
            dict(r._mapping)
            for r in await conn.execute(select(m).where(m.c.direction == "in", m.c.state == "done"))
        ]
    return rows if len(rows) >= n else None


async def test_restart_puts_a_waiting_email_back_in_its_queue(email_rig: Any) -> None:
    rig = await email_rig()
    await send(smtp_port(rig), mail("ada@example.com", "Waiting", "nobody here", msgid="w1@example.com"))
    core = rig.center.core
    (contact,) = await eventually(
        lambda: [c for c in core.contacts.values() if c.channel == "email" and str(c.phase) == "queued"], 15
    )
    cid = contact.contact_id
    await rig.center.stop()  # nobody took it: the record stays open
    rig.center = Center(rig.center.cfg, flows_dir=ROOT / "ivr_flows")
    await rig.center.start()
    again = rig.center.core.contacts.get(cid)
    assert again is not None and str(again.phase) == "queued" and again.queue == "support"
    rec = await record_of(rig, cid)
    # the same message (and its acknowledgement), each kept once
    assert rec["status"] == "open" and [m["direction"] for m in rec["messages"]] == ["in", "out"]
    assert "duplicate_arrival" not in rec["flags"]


async def test_imap_mailbox_through_the_server(email_rig: Any, imap_server: ImapServer) -> None:
    url = f"imap://{imap_server.user}@{imap_server.host}:{imap_server.port}/INBOX"
    rig = await email_rig(
        imap={
            "name": "inbox",
            "url": url,
            "password": imap_server.password,
            "mailbox": "sales@callcenter.local",
            "poll_s": 30,
        }
    )
    imap_server.deliver(
        mail(
            "ada@example.com",
            "Upgrade?",
            "price list please",
            msgid="imapq@example.com",
            to="sales@callcenter.local",
        )
    )
    core = rig.center.core
    (contact,) = await eventually(
        lambda: [c for c in core.contacts.values() if c.channel == "email" and str(c.phase) == "queued"], 20
    )
    assert contact.queue == "sales" and contact.service == "sales-email"
    c = imap_server.client()
    try:
        c.select("INBOX")
        assert c.uid("SEARCH", None, "UNSEEN")[1] == [b""]  # flagged once committed
    finally:
        c.logout()
