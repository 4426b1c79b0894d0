"""After a crash: close what the previous run left open, and keep callback requests.

A server killed with calls up never wrote their end, so their interaction records would
stay ``open`` forever. :meth:`RecoveryMixin.close_interrupted`, run at start-up before
any call is taken, ends each one with a ``ContactEnded`` (reason ``server_restart``,
ended by the system, at the time of its last event) applied like any other event: the
record is rebuilt (outcome ``interrupted``), and its outbox row is written in the same
transaction, so the CRM push carries the closed record. The event id is derived from
the contact, so a second sweep changes nothing.

Callback requests waiting for an agent exist only in the server's memory; the
``pending_callbacks`` table keeps them (with the time they entered their queue) so a
restart can put them back in their place. Those contacts are not interrupted.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import delete, func, select

from crm_bridge.db import upsert
from crm_bridge.ingest import IngestMixin
from crm_bridge.schema import interaction_events, interactions, pending_callbacks

RESTART_REASON = "server_restart"


def restart_event_id(contact_id: str) -> str:
    return f"{contact_id}:{RESTART_REASON}"


class RecoveryMixin(IngestMixin):
    """The sweep writes through :meth:`IngestMixin.apply_events`: one way into records."""

    async def close_interrupted(self, keep: Collection[str] = ()) -> int:
        """End every open record except ``keep`` (contacts the server carries on with);
        returns how many were closed."""
        ev = interaction_events
        last_event = (
            select(interactions.c.id, func.max(ev.c.ts))
            .join(ev, ev.c.contact_id == interactions.c.id)
            .where(interactions.c.status == "open")
            .group_by(interactions.c.id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(last_event)).all()
        ends = [
            {
                "type": "ContactEnded",
                "contact_id": cid,
                "event_id": restart_event_id(cid),
                "ts": ts,
                "reason": RESTART_REASON,
                "ended_by": "system",
            }
            for cid, ts in rows
            if cid not in keep
        ]
        if ends:
            await self.apply_events(ends)
        return len(ends)

    async def save_pending_callback(
        self, contact_id: str, created_at: float, data: Mapping[str, Any]
    ) -> None:
        """Keep (or update) a waiting callback request; the first ``created_at`` stays: it is
        the request's place in its queue."""

        async def op() -> None:
            stmt = upsert(self.engine, pending_callbacks).values(
                contact_id=contact_id, created_at=created_at, data=dict(data), updated_at=self.clock()
            )
            changed = {"data": stmt.excluded.data, "updated_at": stmt.excluded.updated_at}
            stmt = stmt.on_conflict_do_update(index_elements=["contact_id"], set_=changed)
            async with self._write() as conn:
                await conn.execute(stmt)

        await self._retrying(op)

    async def drop_pending_callback(self, contact_id: str) -> None:
        async def op() -> None:
            table = pending_callbacks
            async with self._write() as conn:
                await conn.execute(delete(table).where(table.c.contact_id == contact_id))

        await self._retrying(op)

    async def pending_callbacks(self) -> list[dict[str, Any]]:
        """Every kept request, oldest first: ``contact_id``, ``created_at``, ``data``."""
        q = select(pending_callbacks.c.contact_id, pending_callbacks.c.created_at, pending_callbacks.c.data)
        async with self.engine.connect() as conn:
            rows = await conn.execute(q.order_by(pending_callbacks.c.created_at))
            return [dict(r._mapping) for r in rows]
