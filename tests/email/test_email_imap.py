"""IMAP intake against a real IMAP server (pymap, started by the test): messages are
committed, then flagged or moved; the position survives a restart of the poller; a
changed UIDVALIDITY is noticed; IDLE wakes the poller for new mail."""

from __future__ import annotations

import asyncio
import email.policy
from email.message import EmailMessage

from conftest import ImapServer, demo_cfg

from callcenter.email.imap import ImapPoller
from callcenter.email.store import EmailStore
from tests.support import eventually


def raw_mail(n: int) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "ada@example.com", "support@callcenter.local", f"imap {n}"
    m["Message-ID"] = f"<imap{n}@example.com>"
    m.set_content(f"body {n}")
    return m.as_bytes(policy=email.policy.SMTP)


def imap_cfg(server: ImapServer, **over: object):  # -> ImapCfg
    url = f"imap://{server.user}@{server.host}:{server.port}/INBOX"
    entry = {"name": "support-inbox", "url": url, "password": server.password,
             "mailbox": "support@callcenter.local", "poll_s": 30, **over}  # fmt: skip
    return demo_cfg(imap=[entry]).imap[0]


def folder_uids(server: ImapServer, folder: str, criteria: str) -> list[int]:
    c = server.client()
    try:
        c.select(folder)
        _typ, data = c.uid("SEARCH", None, criteria)
        return [int(x) for x in data[0].split()]
    finally:
        c.logout()


async def run_poller(poller: ImapPoller) -> asyncio.Task[None]:
    return asyncio.create_task(poller.run())


async def stop(poller: ImapPoller, task: asyncio.Task[None]) -> None:
    poller.stop()
    await asyncio.wait_for(task, 15)


async def test_commit_then_flag_and_idle_wakes_for_new_mail(
    imap_server: ImapServer, email_store: EmailStore
) -> None:
    for n in (1, 2):
        imap_server.deliver(raw_mail(n))
    committed: list[str] = []
    poller = ImapPoller(imap_cfg(imap_server), email_store, committed.extend)
    task = await run_poller(poller)
    try:
        await eventually(lambda: len(committed) == 2 and poller.idling, 15, what="two committed, then IDLE")
        assert folder_uids(imap_server, "INBOX", "SEEN") == folder_uids(imap_server, "INBOX", "ALL")
        imap_server.deliver(raw_mail(3))  # poll_s is 30: only IDLE brings this in quickly
        await eventually(lambda: len(committed) == 3, 10, what="IDLE push")
    finally:
        await stop(poller, task)
    rows = await email_store.pending()
    assert [r["raw"] for r in rows] == [raw_mail(1), raw_mail(2), raw_mail(3)]
    assert {r["source"] for r in rows} == {"imap:support-inbox"}

    # a restarted poller starts after the last committed UID: nothing twice
    again: list[str] = []
    poller = ImapPoller(imap_cfg(imap_server), email_store, again.extend)
    task = await run_poller(poller)
    try:
        await eventually(lambda: poller.rounds >= 1, 10)
    finally:
        await stop(poller, task)
    assert again == [] and len(await email_store.pending()) == 3


async def test_move_after_commit(imap_server: ImapServer, email_store: EmailStore) -> None:
    c = imap_server.client()
    c.create("Processed")
    c.logout()
    imap_server.deliver(raw_mail(1))
    committed: list[str] = []
    poller = ImapPoller(imap_cfg(imap_server, move_to="Processed"), email_store, committed.extend)
    task = await run_poller(poller)
    try:
        await eventually(lambda: len(committed) == 1 and poller.idling, 15)
    finally:
        await stop(poller, task)
    assert folder_uids(imap_server, "INBOX", "ALL") == []
    assert len(folder_uids(imap_server, "Processed", "ALL")) == 1


async def test_uidvalidity_change_takes_unseen_and_dedups(
    imap_server: ImapServer, email_store: EmailStore
) -> None:
    imap_server.deliver(raw_mail(1))
    # a position from another UIDVALIDITY (the folder was renumbered since)
    await email_store.set_imap_position("support-inbox", 1, 99_999)
    committed: list[str] = []
    poller = ImapPoller(imap_cfg(imap_server), email_store, committed.extend)
    task = await run_poller(poller)
    try:
        await eventually(lambda: len(committed) == 1 and poller.idling, 15)
    finally:
        await stop(poller, task)
    pos = await email_store.imap_position("support-inbox")
    assert pos is not None and pos[0] != 1 and pos[1] == folder_uids(imap_server, "INBOX", "ALL")[-1]


async def test_bad_password_is_retried_not_fatal(imap_server: ImapServer, email_store: EmailStore) -> None:
    poller = ImapPoller(imap_cfg(imap_server, password="wrong"), email_store, lambda ids: None)
    task = await run_poller(poller)
    try:
        await eventually(lambda: poller.last_error, 10, what="a failed login")
        assert "login" in poller.last_error and not task.done()  # waiting to retry, not crashed
    finally:
        await stop(poller, task)
