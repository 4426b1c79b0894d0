"""Events in, records out: the timeline, the record rebuild, attachments and the
outbox rows that go with them, all in one transaction per batch."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from crm_bridge import files as filestore
from crm_bridge.agent_states import state_rows
from crm_bridge.db import is_postgres, upsert
from crm_bridge.identity import Match, resolve
from crm_bridge.intake import IncomingEvent, normalize_event
from crm_bridge.record_types import InteractionRecord, PublishedRecord, RecordPayload
from crm_bridge.records import build_record, identity_keys
from crm_bridge.schema import (
    agent_state_events,
    attachments,
    customers,
    interaction_events,
    interactions,
)
from crm_bridge.store_core import (
    _ATTACH_NS,
    _RECORD_LIMITS,
    RECORD_COLUMNS,
    ApplyResult,
    StoreCore,
    _chunks,
)


class IngestMixin(StoreCore):
    """Events → records (see the module docstring)."""

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
        # Agent state changes (no contact) also go to their own table, for agent reports.
        states = state_rows(e for e in incoming if e.event_id in new_ids)
        if states:
            await conn.execute(agent_state_events.insert(), states)
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
            # Completed in place into an InteractionRecord (identity, version, ...) below.
            rec = cast(dict[str, Any], build_record(cid, history[cid], self.default_region))
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

        to_write: list[InteractionRecord] = []
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
            to_write.append(cast(InteractionRecord, {k: rec[k] for k in RECORD_COLUMNS}))
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
            record = cast(PublishedRecord, {k: rec[k] for k in RECORD_COLUMNS if k not in ("pushed_hash",)})
            payload: RecordPayload = {
                "topic": "interaction.record",
                "key": key,
                "record": record,
                "customer": people.get(rec["customer_id"] or ""),
            }
            rows.append(
                {
                    "key": key,
                    "topic": "interaction.record",
                    "aggregate_id": rec["id"],
                    "payload": payload,
                    "created_at": now,
                    "fanned_out": False,
                }
            )
        return await self._enqueue(conn, rows)

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
