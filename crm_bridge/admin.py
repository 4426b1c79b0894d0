"""Admin operations behind ``callcenter db upgrade`` and ``callcenter crm outbox …``.

Each function takes a database URL, opens its own engine and closes it, so the
CLI can call them without a running server (and while one runs).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, or_, select, update

from crm_bridge.db import make_engine
from crm_bridge.migrate import current_revision
from crm_bridge.migrate import upgrade as _upgrade
from crm_bridge.schema import outbox, outbox_deliveries

__all__ = ["current_revision", "outbox_list", "outbox_replay", "outbox_stats", "upgrade"]


async def upgrade(url: str) -> None:
    """Migrate the CRM database at ``url`` to the newest schema."""
    await _upgrade(url)


async def outbox_list(url: str, dead_only: bool = False, limit: int = 1000) -> list[dict[str, Any]]:
    """Deliveries, newest first: every one not yet delivered, or only dead letters."""
    d = outbox_deliveries
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            q = (
                select(
                    d.c.id,
                    d.c.sink,
                    d.c.state,
                    d.c.attempts,
                    d.c.last_status,
                    d.c.last_error,
                    d.c.next_attempt_at,
                    d.c.delivered_at,
                    d.c.created_at,
                    d.c.updated_at,
                    outbox.c.seq,
                    outbox.c.key,
                    outbox.c.topic,
                    outbox.c.aggregate_id,
                )
                .join(outbox, outbox.c.seq == d.c.outbox_seq)
                .where(d.c.state == "dead" if dead_only else d.c.state != "delivered")
                .order_by(d.c.updated_at.desc(), d.c.id)
                .limit(limit)
            )
            return [dict(r._mapping) for r in await conn.execute(q)]
    finally:
        await engine.dispose()


async def outbox_replay(url: str, ids: list[str] | None = None) -> int:
    """Put dead letters back in line (attempts reset). ``ids`` are delivery ids
    (``sink:seq``) or outbox keys; ``None`` replays every dead letter. Returns
    how many deliveries were re-queued."""
    d = outbox_deliveries
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            now = time.time()  # the dispatcher compares against its own clock
            stmt = update(d).where(d.c.state == "dead")
            if ids is not None:
                if not ids:
                    return 0
                keyed = select(outbox.c.seq).where(outbox.c.key.in_(ids)).scalar_subquery()
                stmt = stmt.where(or_(d.c.id.in_(ids), d.c.outbox_seq.in_(keyed)))
            res = await conn.execute(
                stmt.values(
                    state="pending",
                    attempts=0,
                    next_attempt_at=now,
                    lease_until=None,
                    updated_at=now,
                )
            )
            return res.rowcount or 0
    finally:
        await engine.dispose()


async def outbox_stats(url: str) -> dict[str, dict[str, int]]:
    """``{sink: {state: count}}`` plus ``{"_outbox": {"unfanned": n}}``."""
    d = outbox_deliveries
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            out: dict[str, dict[str, int]] = {}
            for sink, state, n in await conn.execute(
                select(d.c.sink, d.c.state, func.count()).group_by(d.c.sink, d.c.state)
            ):
                out.setdefault(sink, {})[state] = n
            unfanned = (
                await conn.execute(
                    select(func.count()).select_from(outbox).where(outbox.c.fanned_out.is_(False))
                )
            ).scalar_one()
            out["_outbox"] = {"unfanned": unfanned}
            return out
    finally:
        await engine.dispose()
