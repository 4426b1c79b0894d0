"""CrmStore: the CRM store callcenter talks to.

Writes: ``apply_events`` appends events to the timeline (once per event id),
rebuilds the record of every contact that got a new event, resolves the
customer, and — in the same transaction — writes an outbox row for every change
that must leave the building. Reads: the questions callcenter asks (customer by
address, recent history, screen-pop bundle, order status), each a handful of
indexed queries.

Concurrency: on PostgreSQL each batch takes a transaction-scoped advisory lock
per contact (in sorted order, so batches cannot deadlock) before reading the
timeline, so two nodes writing events of one contact never overwrite each
other's rebuild. SQLite has one writer at a time anyway; an in-process lock
keeps our own tasks from tripping over "database is locked".
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import String, func, or_, select, text, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from crm_bridge import files as filestore
from crm_bridge.addresses import KINDS, normalize
from crm_bridge.db import is_postgres, make_engine, normalize_url, upsert
from crm_bridge.identity import Match, live_ids, new_customer_id, resolve
from crm_bridge.intake import IncomingEvent, normalize_event
from crm_bridge.migrate import upgrade_engine
from crm_bridge.records import build_record, identity_keys
from crm_bridge.schema import (
    attachments,
    contact_points,
    customer_cases,
    customer_notes,
    customers,
    identity_matches,
    interaction_events,
    interactions,
    outbox,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_URL = "sqlite+aiosqlite:///var/crm.sqlite3"
_ATTACH_NS = uuid.UUID("5b1d8f1e-4c1a-4a8e-9d1e-c2b0cafe0002")
RECORD_COLUMNS = [c.name for c in interactions.columns]
# Bounded text columns of the record: longer producer values are cut and flagged,
# never allowed to fail the batch (which would block every event behind it).
_RECORD_LIMITS = {
    c.name: c.type.length
    for c in interactions.columns
    if isinstance(c.type, String) and c.type.length and c.name != "id"
}
SUMMARY_COLUMNS = (
    "id",
    "channel",
    "direction",
    "arrived_at",
    "ended_at",
    "outcome",
    "disposition",
    "queue",
    "agent_id",
    "service",
    "subject",
    "notes",
    "status",
)
CHUNK = 500


def _is_disconnect(exc: BaseException) -> bool:
    """True for "the database is not reachable right now" errors (and deadlock or
    serialization failures, which are equally safe to retry), looked up
    along the whole cause chain (SQLAlchemy wraps the driver's error)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, DBAPIError) and cur.connection_invalidated:
            return True
        if isinstance(cur, OSError | ConnectionError | OperationalError | InterfaceError):
            return True
        if type(cur).__name__ in _CONNECT_ERRORS:
            return True
        sqlstate = getattr(cur, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in ("08", "57", "53", "40"):
            return True
        nxt = getattr(cur, "orig", None)
        cur = (
            nxt
            if isinstance(nxt, BaseException) and id(nxt) not in seen
            else (cur.__cause__ or cur.__context__)
        )
    return False


_CONNECT_ERRORS = frozenset(
    {
        "CannotConnectNowError",
        "ConnectionDoesNotExistError",
        "ObjectNotInPrerequisiteStateError",  # database not accepting connections
        "AdminShutdownError",
        "TooManyConnectionsError",
        "InterfaceError",
    }
)


class CrmError(Exception):
    """Base class of the errors this package raises on purpose."""


class ContactPointConflict(CrmError):
    """The contact point already belongs to another customer."""


class NotFound(CrmError):
    pass


@dataclass(frozen=True, slots=True)
class ApplyResult:
    received: int  # events handed in
    new: int  # events not seen before (the rest were duplicates)
    records: int  # interaction records written (created or changed)
    outbox: int  # outbox rows written
    flagged: int  # events kept with a flag (bad input)


def _chunks(seq: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


class CrmStore:
    """The CRM store. ``url`` is a SQLAlchemy URL (SQLite file or PostgreSQL)."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        files_dir: str | Path = "var/crm_files",
        default_region: str = "GB",
        *,
        clock: Callable[[], float] = time.time,
        engine: AsyncEngine | None = None,
        migrate: bool = True,
        retry_for: float = 60.0,
        cache_contacts: int = 20_000,
    ) -> None:
        self.url = normalize_url(url)
        self.files_dir = Path(files_dir)
        self.default_region = default_region.upper()
        self.clock = clock
        self._engine = engine
        self._migrate = migrate
        self.retry_for = retry_for
        # contact_id -> (record version we wrote, its events): spares re-reading
        # the timeline of contacts still in progress. Validated by version.
        self._cache: collections.OrderedDict[str, tuple[int, list[dict[str, Any]]]] = (
            collections.OrderedDict()
        )
        self.cache_contacts = cache_contacts
        self.timeline_reads = 0  # contacts whose timeline had to be read (metrics)
        self.db_retries = 0  # times a write waited for the database (metrics)
        self.on_db_retry: Callable[[BaseException], None] | None = None
        self._write_lock = asyncio.Lock()
        # Set after a commit that wrote outbox rows: wakes an in-process dispatcher.
        self.outbox_signal = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("CrmStore.start() has not been awaited")
        return self._engine

    async def start(self) -> None:
        """Open the engine and run migrations to head."""
        if self._engine is None:
            self._engine = make_engine(self.url)
        if self._migrate:
            await upgrade_engine(self._engine)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def __aenter__(self) -> CrmStore:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        if is_postgres(self.engine):
            async with self.engine.begin() as conn:
                yield conn
        else:
            async with self._write_lock, self.engine.begin() as conn:
                yield conn

    # -- events → records ------------------------------------------------------

    async def apply_events(self, events: Iterable[Any]) -> ApplyResult:
        """Append events to the timeline and rebuild the affected records.

        Idempotent: duplicates (same ``event_id``) are ignored; the order of
        arrival does not matter. Unknown types are kept in the timeline.
        """
        now = self.clock()
        seen: dict[str, IncomingEvent] = {}
        received = 0
        for raw in events:
            received += 1
            ev = normalize_event(raw, now)
            seen.setdefault(ev.event_id, ev)
        incoming = list(seen.values())
        if not incoming:
            return ApplyResult(received, 0, 0, 0, 0)
        result = await self._retrying(lambda: self._apply_tx(incoming, now))
        if result[2]:
            self.outbox_signal.set()
        return ApplyResult(received, *result)

    async def _apply_tx(self, incoming: list[IncomingEvent], now: float) -> tuple[int, int, int, int]:
        staged: dict[str, tuple[int, list[dict[str, Any]]]] = {}
        async with self._write() as conn:
            result = await self._apply(conn, incoming, now, staged)
        self._remember(staged)
        return result

    def _remember(self, staged: dict[str, tuple[int, list[dict[str, Any]]]]) -> None:
        cache = self._cache
        for cid, entry in staged.items():
            cache[cid] = entry
            cache.move_to_end(cid)
        while len(cache) > self.cache_contacts:
            cache.popitem(last=False)

    async def _retrying(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run a transaction again while the database is unreachable (restart,
        failover, dropped connection), for up to ``retry_for`` seconds. Safe
        because applying events is idempotent; other errors propagate at once."""
        deadline = time.monotonic() + self.retry_for
        delay = 0.05
        while True:
            try:
                return await op()
            except Exception as exc:
                if not _is_disconnect(exc) or time.monotonic() > deadline:
                    raise
                log.warning("CRM database unavailable (%s); retrying in %.2fs", exc, delay)
                self.db_retries += 1
                if self.on_db_retry is not None:
                    self.on_db_retry(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _apply(
        self,
        conn: AsyncConnection,
        incoming: list[IncomingEvent],
        now: float,
        staged: dict[str, tuple[int, list[dict[str, Any]]]],
    ) -> tuple[int, int, int, int]:
        """The body of apply_events inside the caller's transaction. Cache
        entries for the records written go to ``staged``; the caller installs
        them only after the commit."""
        engine = self.engine
        contact_ids = sorted({e.contact_id for e in incoming if e.contact_id})
        if contact_ids and is_postgres(engine):
            await conn.execute(
                text(
                    "SELECT pg_advisory_xact_lock(hashtextextended(c, 0)) "
                    "FROM unnest(CAST(:ids AS text[])) WITH ORDINALITY AS t(c, n) ORDER BY n"
                ),
                {"ids": contact_ids},
            )
        rows = [
            {
                "event_id": e.event_id,
                "contact_id": e.contact_id,
                "type": e.type,
                "ts": e.ts,
                "received_at": now,
                "payload": e.payload,
                "flags": e.flags,
            }
            for e in incoming
        ]
        new_ids: set[str] = set()
        stmt = (
            upsert(engine, interaction_events)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(interaction_events.c.event_id)
        )
        for chunk in _chunks(rows):
            res = await conn.execute(stmt, list(chunk))
            new_ids.update(res.scalars().all())
        flagged = sum(1 for e in incoming if e.flags and e.event_id in new_ids)
        touched = sorted({e.contact_id for e in incoming if e.contact_id and e.event_id in new_ids})
        if not touched:
            return len(new_ids), 0, 0, flagged

        existing: dict[str, Any] = {}
        for chunk in _chunks(touched):
            res = await conn.execute(
                select(
                    interactions.c.id,
                    interactions.c.customer_id,
                    interactions.c.original_customer_id,
                    interactions.c.match_method,
                    interactions.c.match_detail,
                    interactions.c.content_hash,
                    interactions.c.pushed_hash,
                    interactions.c.version,
                ).where(interactions.c.id.in_(chunk))
            )
            existing.update({r.id: r for r in res})

        # A contact's full event list comes from (a) this batch alone when it has
        # no record yet (every committed batch writes the record of each contact
        # it added events to, under the per-contact lock), (b) our cache when the
        # record's version is the one we last wrote, else (c) the timeline.
        history: dict[str, list[dict[str, Any]]] = {}
        need_read: list[str] = []
        for cid in touched:
            old = existing.get(cid)
            if old is None:
                history[cid] = []
            else:
                cached = self._cache.get(cid)
                if cached is not None and cached[0] == old.version:
                    history[cid] = list(cached[1])
                else:
                    need_read.append(cid)
                    history[cid] = []
        reread = set(need_read)
        for e in incoming:
            if e.event_id in new_ids and e.contact_id and e.contact_id not in reread:
                history[e.contact_id].append(e.payload)
        for chunk in _chunks(need_read):
            res = await conn.execute(
                select(interaction_events.c.contact_id, interaction_events.c.payload).where(
                    interaction_events.c.contact_id.in_(chunk)
                )
            )
            for cid, payload in res:
                history[cid].append(payload)
        self.timeline_reads += len(need_read)

        built: dict[str, dict[str, Any]] = {}
        wanted: dict[str, tuple[str, list[tuple[str, str]]]] = {}
        for cid in touched:
            rec = build_record(cid, history[cid], self.default_region)
            old = existing.get(cid)
            if old is not None and old.customer_id:
                rec.update(
                    customer_id=old.customer_id,
                    original_customer_id=old.original_customer_id,
                    match_method=old.match_method,
                    match_detail=old.match_detail,
                )
            else:
                keys = identity_keys(rec, self.default_region)
                if rec["given_customer_id"] or keys:
                    wanted[cid] = (rec["given_customer_id"], keys)
                rec.update(
                    customer_id=None,
                    original_customer_id=None,
                    match_method="" if not rec["arrived_at"] else "none",
                    match_detail="",
                )
            built[cid] = rec
        if wanted:
            matches: dict[str, Match] = await resolve(engine, conn, wanted, now)
            for cid, m in matches.items():
                built[cid].update(
                    customer_id=m.customer_id,
                    original_customer_id=m.customer_id,
                    match_method=m.method,
                    match_detail=m.detail,
                )

        to_write: list[dict[str, Any]] = []
        pushes: list[dict[str, Any]] = []
        for cid, rec in built.items():
            old = existing.get(cid)
            if (
                old is not None
                and old.content_hash == rec["content_hash"]
                and old.customer_id == rec["customer_id"]
            ):
                continue
            rec["version"] = (old.version + 1) if old is not None else 1
            rec["updated_at"] = now
            rec["pushed_hash"] = old.pushed_hash if old is not None else ""
            if rec["status"] == "ended" and rec["content_hash"] != rec["pushed_hash"]:
                rec["pushed_hash"] = rec["content_hash"]
                pushes.append(rec)
            for col, limit in _RECORD_LIMITS.items():
                value = rec[col]
                if isinstance(value, str) and len(value) > limit:
                    rec[col] = value[:limit]
                    rec["flags"] = sorted({*rec["flags"], f"truncated_{col}"})
            to_write.append({k: rec[k] for k in RECORD_COLUMNS})
            staged[cid] = (rec["version"], history[cid])

        if to_write:
            ins = upsert(engine, interactions)
            stmt = ins.on_conflict_do_update(
                index_elements=["id"],
                set_={c: getattr(ins.excluded, c) for c in RECORD_COLUMNS if c != "id"},
            )
            for chunk in _chunks(to_write):
                await conn.execute(stmt, list(chunk))

        recordings = [
            {
                "id": uuid.uuid5(_ATTACH_NS, f"{e.contact_id}:{e.event_id}").hex,
                "contact_id": e.contact_id,
                "kind": "recording",
                "filename": Path(str(e.payload.get("path", ""))).name,
                "content_type": "audio/wav",
                "path": str(e.payload.get("path", "")),
                "size": e.payload.get("size") if isinstance(e.payload.get("size"), int) else 0,
                "sha256": str(e.payload.get("sha256", ""))[:64],
                "flags": [],
                "created_at": now,
            }
            for e in incoming
            if e.type == "VoicemailRecorded" and e.event_id in new_ids and e.contact_id
        ]
        if recordings:
            await conn.execute(
                upsert(engine, attachments).on_conflict_do_nothing(index_elements=["id"]),
                recordings,
            )

        written = await self._enqueue_records(conn, pushes, now) if pushes else 0
        return len(new_ids), len(to_write), written, flagged

    async def _enqueue_records(self, conn: AsyncConnection, records: list[dict[str, Any]], now: float) -> int:
        cust_ids = sorted({r["customer_id"] for r in records if r["customer_id"]})
        people: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(cust_ids):
            res = await conn.execute(
                select(customers.c.id, customers.c.name, customers.c.tier, customers.c.provisional).where(
                    customers.c.id.in_(chunk)
                )
            )
            people.update({r.id: dict(r._mapping) for r in res})
        rows = []
        for rec in records:
            key = f"interaction:{rec['id']}:{rec['content_hash'][:24]}"
            record = {k: rec[k] for k in RECORD_COLUMNS if k not in ("pushed_hash",)}
            rows.append(
                {
                    "key": key,
                    "topic": "interaction.record",
                    "aggregate_id": rec["id"],
                    "payload": {
                        "topic": "interaction.record",
                        "key": key,
                        "record": record,
                        "customer": people.get(rec["customer_id"] or ""),
                    },
                    "created_at": now,
                    "fanned_out": False,
                }
            )
        return await self._enqueue(conn, rows)

    async def _enqueue(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> int:
        stmt = (
            upsert(self.engine, outbox).on_conflict_do_nothing(index_elements=["key"]).returning(outbox.c.seq)
        )
        count = 0
        for chunk in _chunks(rows):
            res = await conn.execute(stmt, list(chunk))
            count += len(res.all())
        return count

    # -- attachments -----------------------------------------------------------

    async def add_attachment(
        self,
        contact_id: str,
        data: bytes | str | Path,
        kind: str = "file",
        content_type: str = "application/octet-stream",
        filename: str = "",
    ) -> dict[str, Any]:
        """Store a file (bytes or a path) for a contact and reference it from the record.

        Content-addressed and idempotent: the same bytes for the same contact
        and kind give the same attachment. An empty file is kept and flagged.
        """
        if isinstance(data, bytes | bytearray | memoryview):
            stored = await asyncio.to_thread(filestore.store_bytes, self.files_dir, bytes(data))
        else:
            source = Path(data)
            filename = filename or source.name
            stored = await asyncio.to_thread(filestore.store_path, self.files_dir, source)
        flags = ["empty"] if stored.size == 0 else []
        if len(kind) > 32 or len(content_type) > 128:  # from untrusted MIME headers
            flags.append("truncated_metadata")
            kind, content_type = kind[:32], content_type[:128]
        att_id = uuid.uuid5(_ATTACH_NS, f"{contact_id}:{kind}:{stored.sha256}").hex
        att = {
            "id": att_id,
            "kind": kind,
            "filename": filename,
            "content_type": content_type,
            "path": stored.path,
            "size": stored.size,
            "sha256": stored.sha256,
            "flags": flags,
        }
        now = self.clock()
        event = normalize_event(
            {
                "type": "AttachmentAdded",
                "event_id": f"att:{att_id}",
                "contact_id": contact_id,
                "ts": now,
                "attachment": att,
            },
            now,
        )
        async with self._write() as conn:
            await conn.execute(
                upsert(self.engine, attachments).on_conflict_do_nothing(index_elements=["id"]),
                [{**att, "contact_id": contact_id, "created_at": now}],
            )
            staged: dict[str, tuple[int, list[dict[str, Any]]]] = {}
            result = await self._apply(conn, [event], now, staged)
        self._remember(staged)
        if result[2]:
            self.outbox_signal.set()
        return {**att, "contact_id": contact_id, "abs_path": str(self.files_dir / stored.path)}

    async def attachments(self, contact_id: str) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            res = await conn.execute(
                select(attachments)
                .where(attachments.c.contact_id == contact_id)
                .order_by(attachments.c.created_at, attachments.c.id)
            )
            return [dict(r._mapping) for r in res]

    # -- customers -------------------------------------------------------------

    async def upsert_customer(
        self,
        name: str,
        *,
        tier: str = "standard",
        language: str = "",
        attributes: Mapping[str, Any] | None = None,
        contact_points: Iterable[tuple[str, str]] = (),
        customer_id: str | None = None,
    ) -> str:
        """Create or update a (non-provisional) customer; returns its id.

        A contact point held by a *provisional* customer is taken over by
        merging that provisional into this one (its history comes along); one
        held by another real customer raises :class:`ContactPointConflict`.
        """
        cid = customer_id or new_customer_id()
        now = self.clock()
        points = [(k, self._norm(k, v)) for k, v in contact_points]
        async with self._write() as conn:
            values = {
                "name": name,
                "tier": tier,
                "language": language,
                "attributes": dict(attributes or {}),
                "provisional": False,
                "updated_at": now,
            }
            ins = upsert(self.engine, customers)
            await conn.execute(
                ins.on_conflict_do_update(index_elements=["id"], set_=values),
                [{"id": cid, "merged_into": None, "created_at": now, **values}],
            )
            for kind, value in points:
                await self._claim_point(conn, cid, kind, value, "admin", "", now)
        return cid

    def _norm(self, kind: str, value: str) -> str:
        norm = normalize(kind, value, self.default_region)
        if norm is None:
            raise ValueError(f"not a valid {kind} contact point: {value!r}")
        return norm

    async def _claim_point(
        self, conn: AsyncConnection, cid: str, kind: str, value: str, how: str, actor: str, now: float
    ) -> None:
        owner = (
            await conn.execute(
                select(contact_points.c.customer_id).where(
                    contact_points.c.kind == kind, contact_points.c.value == value
                )
            )
        ).scalar_one_or_none()
        if owner == cid:
            return
        if owner is None:
            await conn.execute(
                upsert(self.engine, contact_points).on_conflict_do_nothing(index_elements=["kind", "value"]),
                [{"kind": kind, "value": value, "customer_id": cid, "how": how, "created_at": now}],
            )
            return
        provisional = (
            await conn.execute(select(customers.c.provisional).where(customers.c.id == owner))
        ).scalar_one()
        if not provisional:
            raise ContactPointConflict(f"{kind} {value} belongs to customer {owner}")
        await self._merge(conn, owner, cid, f"claim:{kind}", actor, now)

    async def add_contact_point(
        self, customer_id: str, kind: str, value: str, *, how: str = "agent", actor: str = ""
    ) -> str:
        """Attach a contact point; returns the normalized value."""
        norm = self._norm(kind, value)
        now = self.clock()
        async with self._write() as conn:
            live = (await live_ids(conn, [customer_id])).get(customer_id)
            if live is None:
                raise NotFound(f"no customer {customer_id}")
            await self._claim_point(conn, live, kind, norm, how, actor, now)
        self.outbox_signal.set()
        return norm

    async def add_note(
        self, customer_id: str, text_: str, *, author: str = "", contact_id: str | None = None
    ) -> str:
        note_id = uuid.uuid4().hex
        async with self._write() as conn:
            live = (await live_ids(conn, [customer_id])).get(customer_id)
            if live is None:
                raise NotFound(f"no customer {customer_id}")
            await conn.execute(
                customer_notes.insert(),
                [
                    {
                        "id": note_id,
                        "customer_id": live,
                        "contact_id": contact_id,
                        "author": author,
                        "text": text_,
                        "created_at": self.clock(),
                    }
                ],
            )
        return note_id

    async def upsert_case(
        self,
        customer_id: str,
        number: str,
        status: str,
        *,
        kind: str = "order",
        subject: str = "",
        is_open: bool = True,
        attributes: Mapping[str, Any] | None = None,
    ) -> str:
        """Create or update an order/case by its number; returns its id."""
        now = self.clock()
        number = number.strip().upper()
        async with self._write() as conn:
            live = (await live_ids(conn, [customer_id])).get(customer_id)
            if live is None:
                raise NotFound(f"no customer {customer_id}")
            values = {
                "customer_id": live,
                "kind": kind,
                "status": status,
                "subject": subject,
                "is_open": is_open,
                "attributes": dict(attributes or {}),
                "updated_at": now,
            }
            case_id = uuid.uuid5(_ATTACH_NS, f"case:{number}").hex
            ins = upsert(self.engine, customer_cases)
            await conn.execute(
                ins.on_conflict_do_update(index_elements=["number"], set_=values),
                [{"id": case_id, "number": number, "opened_at": now, **values}],
            )
        return case_id

    async def link_contact(
        self, contact_id: str, customer_id: str, *, how: str = "agent", actor: str = ""
    ) -> str:
        """Tie a contact to a known customer (an agent or a lookup identified the caller).

        If the contact sits on a provisional customer, that provisional is
        merged into ``customer_id`` so its earlier contacts come along. Returns
        the live customer id.
        """
        now = self.clock()
        async with self._write() as conn:
            target = (await live_ids(conn, [customer_id])).get(customer_id)
            if target is None:
                raise NotFound(f"no customer {customer_id}")
            row = (
                await conn.execute(select(interactions.c.customer_id).where(interactions.c.id == contact_id))
            ).one_or_none()
            if row is None:
                raise NotFound(f"no interaction {contact_id}")
            current = (await live_ids(conn, [row.customer_id])).get(row.customer_id or "")
            if current != target:
                if current is not None:
                    prov = (
                        await conn.execute(select(customers.c.provisional).where(customers.c.id == current))
                    ).scalar_one()
                    if prov:
                        await self._merge(conn, current, target, f"link:{how}", actor, now)
                await conn.execute(
                    update(interactions)
                    .where(interactions.c.id == contact_id)
                    .values(
                        customer_id=target,
                        original_customer_id=func.coalesce(interactions.c.original_customer_id, current),
                        match_method=f"link:{how}",
                        match_detail=actor,
                        updated_at=now,
                    )
                )
                await conn.execute(
                    identity_matches.insert(),
                    [
                        {
                            "customer_id": target,
                            "contact_id": contact_id,
                            "method": f"link:{how}",
                            "detail": "",
                            "source_customer_id": current,
                            "actor": actor,
                            "at": now,
                        }
                    ],
                )
        self.outbox_signal.set()
        return target

    async def merge_customers(
        self, source_id: str, target_id: str, *, how: str = "agent", actor: str = ""
    ) -> str:
        """Merge ``source`` into ``target``: contact points, notes, cases and
        interactions move over; ``source`` stays as a tombstone pointing at the
        survivor, and each interaction remembers the customer it was first
        matched to. Returns the survivor id."""
        now = self.clock()
        async with self._write() as conn:
            live = await live_ids(conn, [source_id, target_id])
            if source_id not in live or target_id not in live:
                raise NotFound(f"no customer {source_id if source_id not in live else target_id}")
            await self._merge(conn, live[source_id], live[target_id], how, actor, now)
        self.outbox_signal.set()
        return live[target_id]

    async def _merge(
        self, conn: AsyncConnection, source: str, target: str, how: str, actor: str, now: float
    ) -> None:
        if source == target:
            return
        for table in (contact_points, customer_notes, customer_cases):
            await conn.execute(update(table).where(table.c.customer_id == source).values(customer_id=target))
        await conn.execute(
            update(interactions)
            .where(interactions.c.customer_id == source)
            .values(
                customer_id=target,
                original_customer_id=func.coalesce(interactions.c.original_customer_id, source),
            )
        )
        await conn.execute(
            update(customers)
            .where(or_(customers.c.id == source, customers.c.merged_into == source))
            .values(merged_into=target, updated_at=now)
        )
        src = (await conn.execute(select(customers).where(customers.c.id == source))).one()
        tgt = (await conn.execute(select(customers).where(customers.c.id == target))).one()
        # The survivor keeps its own values; it only fills gaps from the source.
        await conn.execute(
            update(customers)
            .where(customers.c.id == target)
            .values(
                name=tgt.name or src.name,
                language=tgt.language or src.language,
                attributes={**(src.attributes or {}), **(tgt.attributes or {})},
                provisional=tgt.provisional and src.provisional,
                updated_at=now,
            )
        )
        await conn.execute(
            identity_matches.insert(),
            [
                {
                    "customer_id": target,
                    "contact_id": None,
                    "method": f"merge:{how}",
                    "detail": "",
                    "source_customer_id": source,
                    "actor": actor,
                    "at": now,
                }
            ],
        )
        key = f"customer.merged:{source}:{target}"
        await self._enqueue(
            conn,
            [
                {
                    "key": key,
                    "topic": "customer.merged",
                    "aggregate_id": target,
                    "payload": {
                        "topic": "customer.merged",
                        "key": key,
                        "source_id": source,
                        "target_id": target,
                        "how": how,
                        "actor": actor,
                        "at": now,
                    },
                    "created_at": now,
                    "fanned_out": False,
                }
            ],
        )

    # -- questions -------------------------------------------------------------

    async def _customer(self, conn: AsyncConnection, customer_id: str) -> dict[str, Any] | None:
        row = (await conn.execute(select(customers).where(customers.c.id == customer_id))).one_or_none()
        if row is not None and row.merged_into:  # rare: follow the merge chain
            live = (await live_ids(conn, [customer_id])).get(customer_id)
            row = (await conn.execute(select(customers).where(customers.c.id == live))).one_or_none()
        if row is None:
            return None
        pts = await conn.execute(
            select(contact_points.c.kind, contact_points.c.value, contact_points.c.how)
            .where(contact_points.c.customer_id == row.id)
            .order_by(contact_points.c.kind, contact_points.c.value)
        )
        data = dict(row._mapping)
        data["contact_points"] = [dict(p._mapping) for p in pts]
        return data

    async def get_customer(self, customer_id: str) -> dict[str, Any] | None:
        """The customer (following merges to the survivor) with its contact points."""
        async with self.engine.connect() as conn:
            return await self._customer(conn, customer_id)

    async def customer_by_address(self, kind: str, value: str) -> dict[str, Any] | None:
        """Customer owning a contact point (kind: phone|email|web|fax; ``ani`` = phone)."""
        kind = {"ani": "phone", "web_id": "web"}.get(kind, kind)
        if kind not in KINDS:
            raise ValueError(f"unknown contact point kind {kind!r}")
        norm = normalize(kind, value, self.default_region)
        if norm is None:
            return None
        async with self.engine.connect() as conn:
            owner = (
                await conn.execute(
                    select(contact_points.c.customer_id).where(
                        contact_points.c.kind == kind, contact_points.c.value == norm
                    )
                )
            ).scalar_one_or_none()
            if owner is None and kind == "fax":
                return None
            return await self._customer(conn, owner) if owner else None

    async def customer_by_account(self, account: str) -> dict[str, Any] | None:
        """Customer whose ``attributes["account"]`` equals ``account`` (IVR "enter
        your account number"). Live customers only; not indexed — fine for
        thousands of customers, add an expression index for millions."""
        account = (account or "").strip()
        if not account:
            return None
        async with self.engine.connect() as conn:
            cid = (
                await conn.execute(
                    select(customers.c.id)
                    .where(
                        customers.c.attributes["account"].as_string() == account,
                        customers.c.merged_into.is_(None),
                    )
                    .limit(1)
                )
            ).scalar_one_or_none()
            return await self._customer(conn, cid) if cid else None

    async def interaction(self, contact_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(interactions).where(interactions.c.id == contact_id))
            ).one_or_none()
            return dict(row._mapping) if row else None

    async def timeline(self, contact_id: str) -> list[dict[str, Any]]:
        """The append-only event timeline of one contact, in canonical order."""
        async with self.engine.connect() as conn:
            res = await conn.execute(
                select(interaction_events)
                .where(interaction_events.c.contact_id == contact_id)
                .order_by(interaction_events.c.ts, interaction_events.c.event_id)
            )
            return [dict(r._mapping) for r in res]

    async def _recent(
        self, conn: AsyncConnection, customer_id: str, n: int, exclude: str | None = None
    ) -> list[dict[str, Any]]:
        cols = [interactions.c[c] for c in SUMMARY_COLUMNS]
        q = (
            select(*cols)
            .where(interactions.c.customer_id == customer_id)
            .order_by(interactions.c.sort_ts.desc())
            .limit(n + (1 if exclude else 0))
        )
        rows = [dict(r._mapping) for r in await conn.execute(q)]
        return [r for r in rows if r["id"] != exclude][:n]

    async def recent_interactions(self, customer_id: str, n: int = 5) -> list[dict[str, Any]]:
        """The last ``n`` interactions of a customer across all channels (newest first)."""
        async with self.engine.connect() as conn:
            live = (await live_ids(conn, [customer_id])).get(customer_id)
            return await self._recent(conn, live, n) if live else []

    async def screen_pop(self, contact_id: str, recent_n: int = 5) -> dict[str, Any] | None:
        """Everything an agent desktop shows when the contact is offered."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(interactions).where(interactions.c.id == contact_id))
            ).one_or_none()
            if row is None:
                return None
            rec = dict(row._mapping)
            customer = await self._customer(conn, rec["customer_id"]) if rec["customer_id"] else None
            recent: list[dict[str, Any]] = []
            cases: list[dict[str, Any]] = []
            notes: list[dict[str, Any]] = []
            if customer is not None:
                cid = customer["id"]
                recent = await self._recent(conn, cid, recent_n, exclude=contact_id)
                cases = [
                    dict(r._mapping)
                    for r in await conn.execute(
                        select(
                            customer_cases.c.number,
                            customer_cases.c.kind,
                            customer_cases.c.status,
                            customer_cases.c.subject,
                            customer_cases.c.updated_at,
                        )
                        .where(customer_cases.c.customer_id == cid, customer_cases.c.is_open)
                        .order_by(customer_cases.c.updated_at.desc())
                        .limit(10)
                    )
                ]
                notes = [
                    dict(r._mapping)
                    for r in await conn.execute(
                        select(
                            customer_notes.c.text,
                            customer_notes.c.author,
                            customer_notes.c.created_at,
                        )
                        .where(customer_notes.c.customer_id == cid)
                        .order_by(customer_notes.c.created_at.desc())
                        .limit(5)
                    )
                ]
        return {
            "contact_id": contact_id,
            "contact": {
                k: rec[k]
                for k in (
                    "channel",
                    "direction",
                    "ani",
                    "dnis",
                    "service",
                    "from_addr",
                    "to_addr",
                    "web_id",
                    "subject",
                    "queue",
                    "agent_id",
                    "arrived_at",
                    "language",
                    "status",
                )
            },
            "customer": customer,
            "tier": customer["tier"] if customer else None,
            "match": {"method": rec["match_method"], "detail": rec["match_detail"]},
            "ivr": {
                "flow": rec["flow"],
                "path": rec["ivr_path"],
                "inputs": rec["ivr_inputs"],
                "outcome": (rec["attributes"] or {}).get("ivr_outcome", ""),
            },
            "recent": recent,
            "open_cases": cases,
            "notes": notes,
        }

    async def order_status(self, order_number: str) -> dict[str, Any] | None:
        """Status of an order/case by its number, for IVR self-service."""
        number = (order_number or "").strip().upper()
        if not number:
            return None
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        customer_cases.c.number,
                        customer_cases.c.kind,
                        customer_cases.c.status,
                        customer_cases.c.subject,
                        customer_cases.c.is_open,
                        customer_cases.c.customer_id,
                        customer_cases.c.updated_at,
                        customers.c.name.label("customer_name"),
                    )
                    .join(customers, customers.c.id == customer_cases.c.customer_id)
                    .where(customer_cases.c.number == number)
                )
            ).one_or_none()
            return dict(row._mapping) if row else None

    async def identity_history(self, customer_id: str) -> list[dict[str, Any]]:
        """Audit trail: every match, link and merge that touched this customer."""
        async with self.engine.connect() as conn:
            res = await conn.execute(
                select(identity_matches)
                .where(
                    or_(
                        identity_matches.c.customer_id == customer_id,
                        identity_matches.c.source_customer_id == customer_id,
                    )
                )
                .order_by(identity_matches.c.id)
            )
            return [dict(r._mapping) for r in res]
