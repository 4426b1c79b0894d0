"""SMTP intake with the standard library's smtplib as the client: 250 only once the raw
message is committed, 550 for strangers, 552 over the size limit; processing threads,
guards loops, acknowledges once per thread a day, and survives a kill after the 250."""

from __future__ import annotations

import asyncio
import email.policy
import os
import signal
import smtplib
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import ListSink, demo_cfg

from callcenter.email.config import EmailCfg
from callcenter.email.outbound import Outbound
from callcenter.email.process import EmailProcessor
from callcenter.email.smtp import SmtpListener
from callcenter.email.store import EmailStore
from crm_bridge.store import CrmStore
from tests.support import ROOT, eventually, free_port


def mail(
    frm: str,
    subject: str,
    body: str,
    *,
    msgid: str,
    in_reply_to: str = "",
    references: str = "",
    to: str = "support@callcenter.local",
    **headers: str,
) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Message-ID"] = frm, to, subject, f"<{msgid}>"
    if in_reply_to:
        m["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        m["References"] = references
    for k, v in headers.items():
        m[k.replace("_", "-")] = v
    m.set_content(body)
    return m.as_bytes(policy=email.policy.SMTP)


def smtp_send(
    port: int, raw: bytes, rcpt: list[str], mail_from: str = "ada@example.com"
) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        return client.sendmail(mail_from, rcpt, raw)


async def send(
    port: int, raw: bytes, rcpt: list[str] | None = None, mail_from: str = "ada@example.com"
) -> None:
    await asyncio.to_thread(smtp_send, port, raw, rcpt or ["support@callcenter.local"], mail_from)


@pytest.fixture
async def listener(email_store: EmailStore) -> SmtpListener:
    committed: list[str] = []
    lst = SmtpListener(demo_cfg(), email_store, committed.extend)
    await lst.start()
    yield lst
    await lst.stop()


async def test_250_only_after_commit_and_550_for_strangers(
    listener: SmtpListener, email_store: EmailStore
) -> None:
    raw = mail("Ada <ada@example.com>", "Printer on fire", "help", msgid="m1@example.com")
    refused = await asyncio.to_thread(
        smtp_send, listener.port, raw, ["support@callcenter.local", "nobody@callcenter.local"]
    )
    assert refused == {"nobody@callcenter.local": (550, b"5.1.1 No such mailbox here")}
    rows = await email_store.pending()  # sendmail returned: the 250 came, so the row is there
    assert [(r["mailbox"], r["raw"], r["envelope_from"]) for r in rows] == [
        ("support@callcenter.local", raw, "ada@example.com")
    ]
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await asyncio.to_thread(smtp_send, listener.port, raw, ["sales@elsewhere.example"])


async def test_one_row_per_mailbox(listener: SmtpListener, email_store: EmailStore) -> None:
    raw = mail("ada@example.com", "both", "x", msgid="m2@example.com")
    await send(listener.port, raw, ["support@callcenter.local", "Sales@CallCenter.local"])
    assert sorted(r["mailbox"] for r in await email_store.pending()) == [
        "sales@callcenter.local",
        "support@callcenter.local",
    ]


async def test_552_over_the_size_limit(listener: SmtpListener, email_store: EmailStore) -> None:
    raw = mail("ada@example.com", "big", "x" * 300_000, msgid="big@example.com")
    with pytest.raises(smtplib.SMTPException) as err:
        await send(listener.port, raw)
    assert "552" in str(err.value)
    assert await email_store.pending() == []


async def test_three_message_thread_loop_guard_and_acknowledgement(
    listener: SmtpListener, email_store: EmailStore, sink: ListSink, tmp_path: Path
) -> None:
    cfg = demo_cfg()
    outbound = Outbound(email_store, cfg.outbound, cfg.mailboxes)
    proc = EmailProcessor(cfg, email_store, tmp_path / "files", sink, outbound)
    await send(listener.port, mail("Ada <ada@example.com>", "Invoice wrong", "first", msgid="t1@example.com"))
    await proc.run_once()
    first = sink.delivered[-1]
    assert not first.joins and first.thread_id == first.contact_id and first.routed
    thread = await email_store.thread(first.thread_id)
    assert [(m["direction"], m["outcome"]) for m in thread] == [("in", "routed"), ("out", "ack")]
    ack_id = thread[1]["message_id"]

    # 2: a reply to our acknowledgement joins the open contact; no second ack the same day
    await send(
        listener.port,
        mail(
            "ada@example.com",
            "Re: We received your message",
            "second",
            msgid="t2@example.com",
            in_reply_to=ack_id,
            references=f"<t1@example.com> <{ack_id}>",
        ),
    )
    await proc.run_once()
    second = sink.delivered[-1]
    assert second.joins and second.contact_id == first.contact_id

    # 3: the contact was closed meanwhile; a reply naming only an older message (References)
    # opens a new contact in the same thread
    sink.open.discard(first.contact_id)
    await send(
        listener.port,
        mail(
            "ada@example.com",
            "Re: Invoice wrong",
            "third",
            msgid="t3@example.com",
            references="<t1@example.com> <t2@example.com>",
        ),
    )
    await proc.run_once()
    third = sink.delivered[-1]
    assert not third.joins and third.thread_id == first.thread_id and third.contact_id != first.contact_id
    thread = await email_store.thread(first.thread_id)
    assert [(m["direction"], m["outcome"]) for m in thread] == [
        ("in", "routed"),
        ("out", "ack"),
        ("in", "joined"),
        ("in", "routed"),
    ]
    assert [m["summary"]["text"].strip() for m in thread if m["direction"] == "in"] == [
        "first",
        "second",
        "third",
    ]

    # an out-of-office answer to our ack: recorded, not routed, not answered
    await send(
        listener.port,
        mail(
            "ada@example.com",
            "Auto: away",
            "away",
            msgid="ooo@example.com",
            in_reply_to=ack_id,
            Auto_Submitted="auto-replied",
        ),
    )
    # a bounce: null sender
    await send(
        listener.port,
        mail("mailer-daemon@example.com", "Undeliverable", "bounce", msgid="dsn@example.com"),
        mail_from="<>",
    )
    await proc.run_once()
    assert sorted(m.parsed.junk for m in sink.delivered[-2:]) == ["auto_submitted", "null_sender"]
    acks = [m for m in await email_store.thread(first.thread_id) if m["outcome"] == "ack"]
    assert len(acks) == 1  # one per thread a day, and none for robots
    assert (await email_store.outbound_state([first.thread_id]))[ack_id]["state"] == "no_relay"


async def test_subject_token_only_with_the_same_sender(
    listener: SmtpListener, email_store: EmailStore, sink: ListSink, tmp_path: Path
) -> None:
    proc = EmailProcessor(demo_cfg(), email_store, tmp_path / "files", sink)
    await send(listener.port, mail("ada@example.com", "Order", "one", msgid="s1@example.com"))
    await proc.run_once()
    case = sink.delivered[-1].thread_id
    sink.open.clear()
    await send(
        listener.port,
        mail("mallory@example.com", f"Re: Order [#{case}]", "x", msgid="s2@example.com"),
        mail_from="mallory@example.com",
    )
    await send(listener.port, mail("ADA@example.com", f"Re: Order [#{case}]", "y", msgid="s3@example.com"))
    await proc.run_once()
    by_sender = {m.parsed.from_addr: m for m in sink.delivered[-2:]}  # two senders: either order
    mallory, ada = by_sender["mallory@example.com"], by_sender["ada@example.com"]
    assert mallory.thread_id != case  # a stranger cannot attach to someone else's case
    assert ada.thread_id == case


async def test_attachments_stored_with_size_and_sha256(
    listener: SmtpListener, email_store: EmailStore, sink: ListSink, tmp_path: Path
) -> None:
    import hashlib

    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Message-ID"] = (
        "ada@example.com",
        "support@callcenter.local",
        "pdf",
        "<a1@x>",
    )
    m.set_content("see attached")
    blob = os.urandom(50_000)
    m.add_attachment(blob, maintype="application", subtype="pdf", filename="invoice.pdf")
    await send(listener.port, m.as_bytes(policy=email.policy.SMTP))
    proc = EmailProcessor(demo_cfg(), email_store, tmp_path / "files", sink)
    await proc.run_once()
    (att,) = sink.delivered[-1].attachments
    assert (att["name"], att["size"], att["sha256"]) == (
        "invoice.pdf",
        50_000,
        hashlib.sha256(blob).hexdigest(),
    )
    assert (tmp_path / "files" / att["path"]).read_bytes() == blob


WORKER = """
import asyncio, sys
from callcenter.email.config import EmailCfg
from callcenter.email.smtp import SmtpListener
from callcenter.email.store import EmailStore
from crm_bridge.store import CrmStore

async def main():
    crm = CrmStore(sys.argv[1], sys.argv[2])
    await crm.start()
    cfg = EmailCfg.model_validate({"enabled": True, "smtp": {"port": int(sys.argv[3])}, "mailboxes": [
        {"address": "support@callcenter.local", "service": "support-email", "queue": "support"}]})
    await SmtpListener(cfg, EmailStore(crm), lambda ids: None).start()
    print("ready", flush=True)
    await asyncio.Event().wait()  # no processing here: killed between the 250 and routing

asyncio.run(main())
"""


async def test_killed_after_250_routes_once_after_restart(sqlite_url: str, tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, sqlite_url, str(tmp_path / "files"), str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert (await asyncio.to_thread(proc.stdout.readline)).strip() == "ready"  # type: ignore[union-attr]
        await send(port, mail("ada@example.com", "Before the crash", "x", msgid="k1@example.com"))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    crm = CrmStore(sqlite_url, tmp_path / "files")
    await crm.start()
    try:
        store = EmailStore(crm)
        sink = ListSink()
        processor = EmailProcessor(demo_cfg(), store, tmp_path / "files", sink)
        assert await processor.run_once() == 1
        assert await processor.run_once() == 0  # done: a second start does not route it again
        assert [m.parsed.message_id for m in sink.delivered] == ["k1@example.com"]
    finally:
        await crm.close()


async def test_config_refuses_auth_in_clear_off_loopback() -> None:
    with pytest.raises(ValueError, match="needs tls"):
        EmailCfg.model_validate({"smtp": {"host": "0.0.0.0", "auth": {"users": {"mta": "$argon2id$x"}}}})
    with pytest.raises(ValueError, match="not one of mailboxes"):
        demo_cfg(
            imap=[{"name": "x", "url": "imap://u@h/INBOX", "password": "p", "mailbox": "other@x.example"}]
        )
    await eventually(lambda: True)
