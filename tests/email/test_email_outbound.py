"""Outbound mail to a real SMTP server (aiosmtpd, inspected by the test): headers that
thread, retry with backoff on a temporary refusal, dead letter on a permanent one,
replay through the CLI, and "not sent: no relay" without a relay."""

from __future__ import annotations

import asyncio
import email
import email.policy

from conftest import SmtpSink, demo_cfg

from callcenter import cli
from callcenter.email.admin import outbox_list
from callcenter.email.outbound import Outbound, OutboundDispatcher, quote, reply_subject
from callcenter.email.store import EmailStore
from tests.support import eventually


def relay_cfg(port: int, **over: object):  # -> EmailCfg
    outbound = {"relay": {"host": "127.0.0.1", "port": port, "starttls": False, "timeout_s": 5},
                "backoff_s": 0.01, "backoff_max_s": 0.02, "max_attempts": 3, **over}  # fmt: skip
    return demo_cfg(outbound=outbound)


async def test_reply_is_delivered_with_threading_headers(
    smtp_sink: SmtpSink, email_store: EmailStore
) -> None:
    cfg = relay_cfg(smtp_sink.port)
    out = Outbound(email_store, cfg.outbound, cfg.mailboxes)
    queued = await out.send(
        to=["ada@example.com"], subject=reply_subject("Invoice wrong", "c0ffee42"),
        text="Fixed.\n\n" + quote("first\nsecond", "ada@example.com", "Mon"), contact_id="c0ffee42",
        in_reply_to="t2@example.com", references=["t1@example.com", "t2@example.com"], author="1001",
    )  # fmt: skip
    assert queued["state"] == "pending"
    dispatcher = OutboundDispatcher(email_store, cfg.outbound)
    assert await dispatcher.run_once() == 1
    (env,) = smtp_sink.received
    assert env.mail_from == "support@callcenter.local" and env.rcpt_tos == ["ada@example.com"]
    msg = email.message_from_bytes(env.original_content, policy=email.policy.default)
    assert msg["Message-ID"] == f"<{queued['message_id']}>"
    assert msg["In-Reply-To"] == "<t2@example.com>"
    assert msg["References"] == "<t1@example.com> <t2@example.com>"
    assert msg["Subject"] == "Re: Invoice wrong [#c0ffee42]"
    assert "> first\r\n> second" in msg.get_content()
    assert (await email_store.outbound_state(["c0ffee42"]))[queued["message_id"]]["state"] == "sent"


async def test_temporary_refusal_is_retried_then_dead_then_replayed(
    smtp_sink: SmtpSink, email_store: EmailStore, db_url: str
) -> None:
    cfg = relay_cfg(smtp_sink.port)
    out = Outbound(email_store, cfg.outbound, cfg.mailboxes)
    queued = await out.send(to=["ada@example.com"], subject="x", text="y", contact_id="c1")
    dispatcher = OutboundDispatcher(email_store, cfg.outbound)
    smtp_sink.refuse = "451 4.3.0 try later"

    async def state() -> dict:
        return (await email_store.outbound_state(["c1"]))[queued["message_id"]]

    for attempt in (1, 2):  # backed off, then retried
        await eventually(dispatcher.run_once, 5, what=f"attempt {attempt} due")
        assert (await state())["attempts"] == attempt and (await state())["state"] == "pending"
    await eventually(dispatcher.run_once, 5)
    assert (await state())["state"] == "dead" and "451" in (await state())["last_error"]
    assert [r["id"] for r in await outbox_list(db_url, dead_only=True)] == [queued["id"]]

    smtp_sink.refuse = None
    assert (
        await asyncio.to_thread(cli.main, ["email", "outbox", "replay", "o-not-there", "--url", db_url]) == 0
    )
    assert (await state())["state"] == "dead"  # only the ids named
    assert (
        await asyncio.to_thread(cli.main, ["email", "outbox", "replay", queued["id"], "--url", db_url]) == 0
    )
    await eventually(dispatcher.run_once, 5)
    assert (await state())["state"] == "sent" and len(smtp_sink.received) == 1


async def test_permanent_refusal_is_dead_at_once(smtp_sink: SmtpSink, email_store: EmailStore) -> None:
    cfg = relay_cfg(smtp_sink.port)
    out = Outbound(email_store, cfg.outbound, cfg.mailboxes)
    queued = await out.send(to=["nobody@example.com"], subject="x", text="y", contact_id="c2")
    smtp_sink.refuse = "550 5.1.1 no such user"
    await OutboundDispatcher(email_store, cfg.outbound).run_once()
    st = (await email_store.outbound_state(["c2"]))[queued["message_id"]]
    assert (st["state"], st["attempts"]) == ("dead", 1) and "550" in st["last_error"]


async def test_without_relay_the_reply_is_kept_not_sent(email_store: EmailStore, db_url: str) -> None:
    cfg = demo_cfg()
    out = Outbound(email_store, cfg.outbound, cfg.mailboxes)
    queued = await out.send(to=["ada@example.com"], subject="x", text="y", contact_id="c3")
    assert queued["state"] == "no_relay"
    (row,) = await outbox_list(db_url)
    assert (row["state"], row["last_error"]) == ("no_relay", "not sent: no relay configured")
