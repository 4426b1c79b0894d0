"""Group commit (callcenter/email/group_commit.py) on SQLite and PostgreSQL: concurrent
writers share one transaction and each returns once its rows are committed; a writer whose
rows fail is the only one that sees the error; concurrent SMTP messages are each answered
250 with their row committed."""

from __future__ import annotations

import asyncio
from typing import Any

from conftest import demo_cfg
from sqlalchemy.exc import IntegrityError
from test_email_intake import mail, smtp_send

from callcenter.email.smtp import SmtpListener
from callcenter.email.store import EmailStore, intake_row, new_message_row_id
from crm_bridge.email_schema import email_messages


def row(row_id: str, **over: Any) -> dict[str, Any]:
    return intake_row(row_id, b"x", mailbox="support@callcenter.local", source="smtp", source_key=None,
                      envelope_from="ada@example.com", envelope_to=["support@callcenter.local"],
                      received_at=1.0) | over  # fmt: skip


async def test_concurrent_writers_share_one_transaction(email_store: EmailStore) -> None:
    ids = await asyncio.gather(
        *(
            email_store.commit_inbound(
                f"message {n}".encode(), mailboxes=["support@callcenter.local"], source="smtp",
                envelope_from=f"c{n}@example.com", envelope_to=["support@callcenter.local"],
            )
            for n in range(8)
        )
    )  # fmt: skip
    assert all(len(i) == 1 for i in ids) and len({i[0] for i in ids}) == 8  # each gets its own row
    assert (email_store.group.transactions, email_store.group.writers) == (1, 8)
    pending = {r["id"]: r["raw"] for r in await email_store.pending()}
    assert {i[0]: pending[i[0]] for i in ids} == {i[0]: f"message {n}".encode() for n, i in enumerate(ids)}


async def test_a_failing_writer_fails_alone(email_store: EmailStore) -> None:
    taken = new_message_row_id()
    await email_store.commit([(email_messages.insert(), [row(taken)])])
    stmt = email_messages.insert()  # the same statement: the three go as one executemany
    good = [new_message_row_id(), new_message_row_id()]
    results = await asyncio.gather(
        email_store.group.write([(stmt, [row(good[0])])]),
        email_store.group.write([(stmt, [row(taken)])]),  # the primary key exists: refused
        email_store.group.write([(stmt, [row(good[1])])]),
        return_exceptions=True,
    )
    assert isinstance(results[1], IntegrityError)
    assert not isinstance(results[0], BaseException) and not isinstance(results[2], BaseException)
    kept = {r["id"] for r in await email_store.pending()}
    assert kept == {taken, *good}


async def test_concurrent_smtp_sessions_each_committed_before_250(email_store: EmailStore) -> None:
    senders = 6
    lst = SmtpListener(demo_cfg(), email_store, lambda _ids: None)
    await lst.start()
    try:
        raws = [mail(f"c{n}@example.com", f"q{n}", "body", msgid=f"g{n}@example.com") for n in range(senders)]
        await asyncio.gather(
            *(asyncio.to_thread(smtp_send, lst.port, raw, ["support@callcenter.local"]) for raw in raws)
        )
        # every sendmail returned, so every 250 came: every message is committed
        assert sorted(r["raw"] for r in await email_store.pending()) == sorted(raws)
        assert lst.handler.accepted == senders
        assert email_store.group.writers == senders
    finally:
        await lst.stop()
