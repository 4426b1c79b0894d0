"""From a committed raw message to a routed (or recorded) contact.

``EmailProcessor`` takes the inbound rows still ``new`` — oldest first, also the ones a
killed server left behind, one lane per envelope sender — and for each: parses it, stores
its attachments (crm_bridge/files.py: content-addressed, size + SHA-256), finds its
thread, hands it to the channel (``EmailSink``), then commits the acknowledgement (if
any), the decision and ``done`` in one transaction (grouped with other lanes' rows:
``GroupCommit``). A crash before that processes the row again, acknowledgement included:
its contact id is derived from the row, so the contact is the same and the CRM keeps its
events once.

Threading: a reply joins the thread of any message named in In-Reply-To or References
(ours or the customer's); the ``[#<id>]`` subject token only when nothing there is
known and the sender wrote to that thread before. A thread's contact still open in the
center takes the message; a closed one gets a new contact in the same thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from callcenter.email.config import EmailCfg, MailboxCfg
from callcenter.email.parse import ParsedEmail, case_token, parse
from callcenter.email.store import DAY_S, EmailStore, Write, contact_id_for
from crm_bridge.files import store_bytes

log = logging.getLogger(__name__)

# A message larger than this is parsed (and its attachments hashed and written) in a worker
# thread: a 1 MB message takes the stdlib parser tens of milliseconds, which would hold up
# every SMTP session and routing decision in the loop; small ones are parsed in place
# (a thread hop costs more than they do).
OFF_LOOP_BYTES = 64 * 1024


@dataclass(slots=True)
class InboundEmail:
    row_id: str
    mailbox: MailboxCfg
    parsed: ParsedEmail
    contact_id: str
    thread_id: str
    joins: bool  # True: the message goes to a contact still open
    attachments: list[dict[str, Any]] = field(default_factory=list)
    received_at: float = 0.0

    @property
    def routed(self) -> bool:
        return not self.parsed.junk


class EmailSink(Protocol):
    """The channel side (callcenter/channels/email.py)."""

    def is_open(self, contact_id: str) -> bool:
        """The contact is still in the center (queued, offered, with an agent)."""
        ...

    async def deliver(self, mail: InboundEmail) -> None:
        """A new contact (routed, or only recorded when ``mail.parsed.junk``), or a message
        for an open one (``mail.joins``)."""
        ...

    def acknowledged(self, mail: InboundEmail, queued: dict[str, Any], text: str) -> None:
        """The auto-acknowledgement of ``mail`` was queued (``Outbound.send``'s answer)."""
        ...


def _store_attachments(files_dir: Path, parsed: ParsedEmail) -> list[dict[str, Any]]:
    out = []
    for att in parsed.attachments:
        stored = store_bytes(files_dir, att.data)
        out.append(
            {
                "name": att.name,
                "content_type": att.content_type,
                "size": stored.size,
                "sha256": stored.sha256,
                "path": stored.path,
                "inline": att.inline,
            }
        )
    return out


class EmailProcessor:
    def __init__(
        self,
        cfg: EmailCfg,
        store: EmailStore,
        files_dir: Path,
        sink: EmailSink,
        outbound: Any | None = None,
        *,
        # Lanes at a time. Each holds a database connection while it reads (threading, the
        # customer): more lanes than the CRM pool keeps (5) open and close connections all the
        # time — bench/email_intake.py counted 166 new connections for 300 messages with 16
        # lanes, 26 with 4, at more messages/s; the final writes are grouped anyway.
        concurrency: int = 4,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.files_dir = files_dir
        self.sink = sink
        self.outbound = outbound  # callcenter.email.outbound.Outbound, for acknowledgements
        self.ours = frozenset(m.address for m in cfg.mailboxes)
        self.concurrency = concurrency
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self.processed = 0

    def wake(self, _ids: Sequence[str] = ()) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                n = await self.run_once()
            except Exception:
                log.exception("email processing pass failed; retrying")
                n = 0
                await asyncio.sleep(1.0)
            if n == 0 and not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 5.0)  # a missed wake costs 5 s, not a message

    async def run_once(self, limit: int = 200) -> int:
        """Process what is pending: one lane per envelope sender, in arrival order within a
        lane (a customer's messages thread in the order they came), ``concurrency`` lanes
        at a time (parsing, files and database round trips of different senders overlap)."""
        rows = await self.store.pending(limit)
        lanes: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            lanes.setdefault((row["envelope_from"] or "").lower() or row["id"], []).append(row)
        gate = asyncio.Semaphore(self.concurrency)

        async def lane(items: list[dict[str, Any]]) -> None:
            for row in items:
                async with gate:
                    await self.process(row)

        results = await asyncio.gather(*(lane(items) for items in lanes.values()), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        for exc in failed:
            log.error("email processing failed; the message stays pending", exc_info=exc)
        if failed:
            raise failed[0]
        return len(rows)

    async def _thread(self, parsed: ParsedEmail) -> tuple[str, str] | None:
        """(contact_id, thread_id) of the thread this message answers, if known."""
        chain = [*reversed(parsed.in_reply_to), *reversed(parsed.references)]
        if chain:
            known = await self.store.by_message_ids(chain)
            for mid in chain:  # the nearest ancestor first
                if mid in known:
                    return known[mid]
        token = case_token(parsed.subject)
        if token:
            return await self.store.thread_of_token(token, parsed.from_addr)
        return None

    async def read(self, row: dict[str, Any]) -> tuple[MailboxCfg, ParsedEmail, list[dict[str, Any]]]:
        """Parse a stored row and store its attachments (content-addressed: again is free)."""
        mailbox = self.cfg.mailbox(row["mailbox"]) or self.cfg.mailboxes[0]
        # Only SMTP has an envelope; IMAP's sender is in the Return-Path header (parse reads it)
        sender = row["envelope_from"] if row["source"] == "smtp" else None
        raw = row["raw"]

        def work() -> tuple[ParsedEmail, list[dict[str, Any]]]:
            parsed = parse(raw, envelope_from=sender, ours=self.ours)
            return parsed, _store_attachments(self.files_dir, parsed)

        if len(raw) > OFF_LOOP_BYTES:
            parsed, attachments = await asyncio.to_thread(work)
        else:
            parsed = parse(raw, envelope_from=sender, ours=self.ours)
            attachments = (
                await asyncio.to_thread(_store_attachments, self.files_dir, parsed)
                if parsed.attachments
                else []
            )
        if row["mailbox"] != mailbox.address:
            parsed.flags.append("mailbox_not_configured")
        return mailbox, parsed, attachments

    async def process(self, row: dict[str, Any]) -> InboundEmail:
        mailbox, parsed, attachments = await self.read(row)
        joins = False
        found = await self._thread(parsed)
        contact_id = contact_id_for(row["id"])  # processed again after a crash: the same contact
        thread_id = contact_id
        if found is not None:
            thread_id = found[1]
            latest = await self.store.latest_contact(thread_id) or found[0]
            if self.sink.is_open(latest):
                contact_id, joins = latest, True
        mail = InboundEmail(
            row["id"], mailbox, parsed, contact_id, thread_id, joins, attachments, row["received_at"]
        )
        await self.sink.deliver(mail)
        outcome = "not_routed" if parsed.junk else ("joined" if joins else "routed")
        ack = None if parsed.junk else await self._acknowledgement(mail, new_thread=found is None)
        summary = parsed.summary() | {"attachments": attachments, "joins": joins}
        done = self.store.done_write(
            row["id"],
            outcome,
            contact_id=contact_id,
            thread_id=thread_id,
            sender=parsed.from_addr,
            message_id=parsed.message_id[:512],
            summary=summary,
        )
        # one transaction: the acknowledgement queued, the decision and "done" (a crash
        # before it processes the row again, acknowledgement included, and nothing twice)
        await self.store.commit([*(ack[2] if ack else ()), done])
        if ack is not None:
            self.sink.acknowledged(mail, ack[0], ack[1])
        self.processed += 1
        return mail

    async def restore(self, contact_ids: Sequence[str]) -> list[str]:
        """After a restart: the email contacts whose records are still open (queued, offered
        or with an agent when the server stopped) are delivered again — same contact id,
        same event ids (kept once by the CRM) — so they go back in their queue instead of
        being closed as interrupted. Returns the ids restored."""
        restored = []
        for contact_id in contact_ids:
            rows = await self.store.contact_rows(contact_id)
            if not rows:
                continue
            for n, row in enumerate(rows):
                mailbox, parsed, attachments = await self.read(row)
                mail = InboundEmail(
                    row["id"],
                    mailbox,
                    parsed,
                    contact_id,
                    row["thread_id"] or contact_id,
                    joins=n > 0,
                    attachments=attachments,
                    received_at=row["received_at"],
                )
                await self.sink.deliver(mail)
            restored.append(contact_id)
        return restored

    async def _acknowledgement(
        self, mail: InboundEmail, *, new_thread: bool
    ) -> tuple[dict[str, Any], str, list[Write]] | None:
        """ "We received your message, case #…": real senders only, once per thread a day.
        Returns (queued, text, writes) to commit with the row's decision, or None. A thread
        this message opens has no acknowledgement yet (one would have been committed with
        this row's "done"): no query for it."""
        ack = self.cfg.auto_ack
        if self.outbound is None or not ack.enabled or not mail.mailbox.auto_ack or not mail.parsed.from_addr:
            return None
        if not new_thread and await self.store.acked_since(mail.thread_id, self.store.clock() - DAY_S):
            return None
        p = mail.parsed
        text = ack.text.format(case=mail.thread_id)
        queued, writes = self.outbound.prepare(
            to=[p.from_addr],
            subject=ack.subject.format(case=mail.thread_id),
            text=text,
            contact_id=mail.contact_id,
            thread_id=mail.thread_id,
            mailbox=mail.mailbox.address,
            kind="ack",
            in_reply_to=p.message_id,
            references=[*p.references, p.message_id],
            author="auto",
        )
        return queued, text, writes
