"""The email channel's rows in the CRM database: raw messages in and out, the outbound
queue, the IMAP pollers' positions.

Written through the CRM store's engine and write discipline (``CrmStore._write``: one
writer at a time on SQLite, transactions on PostgreSQL; ``_retrying``: wait out a
database restart), so email shares the store's no-loss rules instead of a second set.
The hot writes (intake, a processed row's decision with its acknowledgement) go through
``GroupCommit``: concurrent writers share a transaction, each still returns only after
its own rows are committed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.sql import Executable

from callcenter.email.group_commit import GroupCommit
from crm_bridge.db import is_postgres, upsert
from crm_bridge.email_schema import email_imap_state, email_messages, email_outbound
from crm_bridge.store import CrmStore

_CONTACT_NS = uuid.UUID("5b1d8f1e-4c1a-4a8e-9d1e-c2b0cafe0e01")
DAY_S = 86_400.0


def new_message_row_id() -> str:
    return "m-" + uuid.uuid4().hex


def contact_id_for(message_row_id: str) -> str:
    """The contact an inbound message opens: derived from the row, so processing the same
    row again after a crash gives the same contact (and the CRM dedups its events)."""
    return uuid.uuid5(_CONTACT_NS, message_row_id).hex


Write = tuple[Executable, list[dict[str, Any]]]  # a statement and its rows, for GroupCommit


def intake_row(
    row_id: str, raw: bytes, *, mailbox: str, source: str, source_key: str | None, envelope_from: str,
    envelope_to: Sequence[str], received_at: float,
) -> dict[str, Any]:  # fmt: skip
    """A newly received message's row as the intake commits it: raw, not yet processed."""
    return {
        "id": row_id,
        "direction": "in",
        "mailbox": mailbox,
        "source": source,
        "source_key": source_key,
        "envelope_from": envelope_from,
        "envelope_to": list(envelope_to),
        "raw": raw,
        "size": len(raw),
        "received_at": received_at,
        "state": "new",
        "message_id": "",
        "contact_id": None,
        "thread_id": None,
        "sender": "",
        "outcome": "",
        "summary": {},
        "processed_at": None,
    }


class EmailStore:
    def __init__(self, crm: CrmStore, clock: Any = time.time) -> None:
        self.crm = crm
        self.clock = clock
        self.group = GroupCommit(crm)

    # one object per statement, so GroupCommit merges the same statement's rows (built on
    # first use: the engine, which picks the dialect's upsert, exists once the store started)
    @cached_property
    def _insert_in(self) -> Executable:
        # no conflict target: a repeated source_key (or, never, id) adds nothing
        return upsert(self.crm.engine, email_messages).on_conflict_do_nothing().returning(email_messages.c.id)

    @cached_property
    def _set_done(self) -> Executable:
        return update(email_messages).where(email_messages.c.id == bindparam("b_row_id"))

    @cached_property
    def _insert_outbound(self) -> Executable:
        return email_outbound.insert()

    @cached_property
    def _insert_out_message(self) -> Executable:
        return email_messages.insert()

    # -- intake -------------------------------------------------------------------

    async def commit_inbound(
        self,
        raw: bytes,
        *,
        mailboxes: Sequence[str],
        source: str,
        envelope_from: str,
        envelope_to: Sequence[str],
        source_key: str | None = None,
    ) -> list[str]:
        """Keep ``raw`` once per mailbox it is for; returns the row ids. Returns only when
        the rows are committed (the SMTP 250 waits for this). A ``source_key`` seen
        before (the same IMAP message fetched again) adds nothing and returns []."""
        now = self.clock()
        rows = [
            intake_row(new_message_row_id(), raw, mailbox=mb, source=source,
                       source_key=f"{source_key}:{mb}" if source_key and len(mailboxes) > 1 else source_key,
                       envelope_from=envelope_from, envelope_to=envelope_to, received_at=now)
            for mb in mailboxes
        ]

        ours = {r["id"] for r in rows}
        committed = await self.group.write([(self._insert_in, rows)])
        return [r.id for r in committed.get(id(self._insert_in), []) if r.id in ours]

    async def pending(self, limit: int = 100) -> list[dict[str, Any]]:
        """Inbound rows committed but not processed yet, oldest first."""
        m = email_messages
        async with self.crm.engine.connect() as conn:
            res = await conn.execute(
                select(m).where(m.c.state == "new").order_by(m.c.received_at, m.c.id).limit(limit)
            )
            return [dict(r._mapping) for r in res]

    def done_write(
        self,
        row_id: str,
        outcome: str,
        *,
        contact_id: str,
        thread_id: str,
        sender: str,
        message_id: str,
        summary: dict[str, Any],
    ) -> Write:
        """Processing is over: what it decided (contact, thread, parsed summary) and the
        outcome, for ``commit`` (every row the same columns: one executemany for a batch)."""
        values = {
            "b_row_id": row_id,
            "state": "done",
            "outcome": outcome,
            "processed_at": self.clock(),
            "contact_id": contact_id,
            "thread_id": thread_id,
            "sender": sender,
            "message_id": message_id,
            "summary": summary,
        }
        return (self._set_done, [values])

    async def commit(self, writes: Sequence[Write]) -> None:
        """``writes`` in one transaction (shared with concurrent writers); returns once committed."""
        await self.group.write(writes)
        if any(stmt is self._insert_outbound for stmt, _rows in writes):
            self.crm.outbox_signal.set()

    # -- threading ----------------------------------------------------------------

    async def by_message_ids(self, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """message id → (contact_id, thread_id) of the known messages (either direction)."""
        ids = [i for i in dict.fromkeys(ids) if i][:200]
        if not ids:
            return {}
        m = email_messages
        async with self.crm.engine.connect() as conn:
            res = await conn.execute(
                select(m.c.message_id, m.c.contact_id, m.c.thread_id, m.c.received_at)
                .where(m.c.message_id.in_(ids), m.c.contact_id.is_not(None))
                .order_by(m.c.received_at)
            )
            return {r.message_id: (r.contact_id, r.thread_id or r.contact_id) for r in res}

    async def thread_of_token(self, token: str, sender: str) -> tuple[str, str] | None:
        """The interaction a ``[#id]`` subject token names, if ``sender`` wrote to it before."""
        if not sender:
            return None
        m = email_messages
        async with self.crm.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(m.c.contact_id, m.c.thread_id)
                    .where(
                        or_(m.c.contact_id == token, m.c.thread_id == token),
                        m.c.direction == "in",
                        m.c.sender == sender,
                    )
                    .order_by(m.c.received_at.desc())
                    .limit(1)
                )
            ).first()
        return (row.contact_id, row.thread_id or row.contact_id) if row else None

    async def latest_contact(self, thread_id: str) -> str | None:
        m = email_messages
        async with self.crm.engine.connect() as conn:
            return (
                await conn.execute(
                    select(m.c.contact_id)
                    .where(m.c.thread_id == thread_id, m.c.contact_id.is_not(None))
                    .order_by(m.c.received_at.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()

    async def thread(self, thread_id: str) -> list[dict[str, Any]]:
        """Every message of a thread, oldest first, as the desk shows it (no raw bytes)."""
        m = email_messages
        cols = [
            m.c.id,
            m.c.direction,
            m.c.mailbox,
            m.c.message_id,
            m.c.contact_id,
            m.c.sender,
            m.c.received_at,
            m.c.outcome,
            m.c.summary,
        ]
        async with self.crm.engine.connect() as conn:
            res = await conn.execute(
                select(*cols).where(m.c.thread_id == thread_id).order_by(m.c.received_at, m.c.id)
            )
            return [dict(r._mapping) for r in res]

    async def contact_rows(self, contact_id: str) -> list[dict[str, Any]]:
        """The inbound messages a contact was routed with or joined by, oldest first."""
        m = email_messages
        async with self.crm.engine.connect() as conn:
            res = await conn.execute(
                select(m)
                .where(
                    m.c.contact_id == contact_id,
                    m.c.direction == "in",
                    m.c.state == "done",
                    m.c.outcome.in_(["routed", "joined"]),
                )
                .order_by(m.c.received_at, m.c.id)
            )
            return [dict(r._mapping) for r in res]

    async def open_email_contacts(self) -> list[str]:
        """Email interactions whose record is still open: the server stopped while they waited."""
        from crm_bridge.schema import interactions

        async with self.crm.engine.connect() as conn:
            res = await conn.execute(
                select(interactions.c.id).where(
                    interactions.c.channel == "email", interactions.c.status == "open"
                )
            )
            return [r.id for r in res]

    async def message(self, row_id: str) -> dict[str, Any] | None:
        async with self.crm.engine.connect() as conn:
            row = (await conn.execute(select(email_messages).where(email_messages.c.id == row_id))).first()
        return dict(row._mapping) if row else None

    # -- outbound -----------------------------------------------------------------

    def outbound_writes(
        self,
        *,
        raw: bytes,
        kind: str,
        message_id: str,
        mail_from: str,
        rcpt_to: Sequence[str],
        contact_id: str,
        thread_id: str,
        mailbox: str,
        summary: dict[str, Any],
        relay: bool,
    ) -> tuple[str, list[Write]]:
        """A message to send (state ``pending``; ``no_relay`` when none is configured) and
        its entry in the thread: its id and the writes, to commit together."""
        now = self.clock()
        out_id = "o-" + uuid.uuid4().hex
        queued = {
            "id": out_id,
            "contact_id": contact_id,
            "thread_id": thread_id,
            "kind": kind,
            "message_id": message_id,
            "mail_from": mail_from,
            "rcpt_to": list(rcpt_to),
            "raw": raw,
            "state": "pending" if relay else "no_relay",
            "attempts": 0,
            "next_attempt_at": now,
            "lease_until": None,
            "last_error": "" if relay else "not sent: no relay configured",
            "sent_at": None,
            "created_at": now,
            "updated_at": now,
        }
        entry = {
            "id": out_id,
            "direction": "out",
            "mailbox": mailbox,
            "source": kind,
            "source_key": None,
            "envelope_from": mail_from,
            "envelope_to": list(rcpt_to),
            "raw": b"",
            "size": len(raw),
            "received_at": now,
            "state": "done",
            "message_id": message_id,
            "contact_id": contact_id,
            "thread_id": thread_id,
            "sender": mailbox,
            "outcome": kind,
            "summary": summary,
            "processed_at": now,
        }
        return out_id, [(self._insert_outbound, [queued]), (self._insert_out_message, [entry])]

    async def enqueue_outbound(self, **message: Any) -> str:
        """Queue a message to send and register its Message-ID with the thread, in one
        transaction (``outbound_writes``' arguments)."""
        out_id, writes = self.outbound_writes(**message)
        await self.commit(writes)
        return out_id

    async def acked_since(self, thread_id: str, since: float) -> bool:
        o = email_outbound
        async with self.crm.engine.connect() as conn:
            hit = await conn.execute(
                select(o.c.id)
                .where(o.c.thread_id == thread_id, o.c.kind == "ack", o.c.created_at >= since)
                .limit(1)
            )
            return hit.first() is not None

    async def claim_due(self, lease_s: float, limit: int = 20) -> list[dict[str, Any]]:
        """Lease the pending messages that are due (another dispatcher skips them)."""
        o = email_outbound
        now = self.clock()
        due = (
            select(o.c.id)
            .where(
                o.c.state == "pending",
                o.c.next_attempt_at <= now,
                or_(o.c.lease_until.is_(None), o.c.lease_until < now),
            )
            .order_by(o.c.next_attempt_at, o.c.id)
            .limit(limit)
        )
        if is_postgres(self.crm.engine):
            due = due.with_for_update(skip_locked=True)
        async with self.crm._write() as conn:
            ids = [
                r.id
                for r in await conn.execute(
                    update(o)
                    .where(
                        o.c.id.in_(due.scalar_subquery()),
                        or_(o.c.lease_until.is_(None), o.c.lease_until < now),
                    )
                    .values(lease_until=now + lease_s)
                    .returning(o.c.id)
                )
            ]
            if not ids:
                return []
            res = await conn.execute(select(o).where(o.c.id.in_(ids)).order_by(o.c.created_at))
            return [dict(r._mapping) for r in res]

    async def settle(self, out_id: str, **values: Any) -> None:
        """Record an attempt's result, only while the row is still ours (pending)."""
        o = email_outbound
        values.setdefault("lease_until", None)
        values["updated_at"] = self.clock()
        async with self.crm._write() as conn:
            await conn.execute(
                update(o).where(and_(o.c.id == out_id, o.c.state == "pending")).values(**values)
            )

    async def next_due_in(self, default: float) -> float:
        o = email_outbound
        from sqlalchemy import func

        async with self.crm.engine.connect() as conn:
            due = (
                await conn.execute(select(func.min(o.c.next_attempt_at)).where(o.c.state == "pending"))
            ).scalar()
        return default if due is None else max(0.0, min(default, due - self.clock()))

    async def outbound_state(self, contact_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """message id → {state, attempts, last_error} of our messages in these contacts."""
        o = email_outbound
        async with self.crm.engine.connect() as conn:
            res = await conn.execute(
                select(o.c.message_id, o.c.state, o.c.attempts, o.c.last_error, o.c.sent_at).where(
                    o.c.thread_id.in_(list(contact_ids))
                )
            )
            return {r.message_id: dict(r._mapping) for r in res}

    # -- IMAP positions -----------------------------------------------------------

    async def imap_position(self, name: str) -> tuple[int, int] | None:
        s = email_imap_state
        async with self.crm.engine.connect() as conn:
            row = (await conn.execute(select(s.c.uidvalidity, s.c.last_uid).where(s.c.name == name))).first()
        return (int(row.uidvalidity), int(row.last_uid)) if row else None

    async def set_imap_position(self, name: str, uidvalidity: int, last_uid: int) -> None:
        s = email_imap_state
        values = {"uidvalidity": uidvalidity, "last_uid": last_uid, "updated_at": self.clock()}
        async with self.crm._write() as conn:
            await conn.execute(
                upsert(self.crm.engine, s).on_conflict_do_update(index_elements=["name"], set_=values),
                [{"name": name, **values}],
            )
