"""``callcenter email outbox list|replay``: the outbound mail queue, like ``crm outbox``.

Each function opens its own engine on the database URL, so the CLI works with or
without a running server.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select, update

from crm_bridge.db import make_engine
from crm_bridge.email_schema import email_outbound

_COLUMNS = (
    "id",
    "kind",
    "state",
    "attempts",
    "last_error",
    "rcpt_to",
    "message_id",
    "contact_id",
    "created_at",
    "updated_at",
    "sent_at",
)


async def outbox_list(url: str, *, dead_only: bool = False, limit: int = 1000) -> list[dict[str, Any]]:
    """Messages not sent (pending, dead, no relay), newest first; only dead letters with ``dead_only``."""
    o = email_outbound
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            q = select(*(o.c[c] for c in _COLUMNS)).order_by(o.c.updated_at.desc(), o.c.id).limit(limit)
            q = q.where(o.c.state == "dead") if dead_only else q.where(o.c.state != "sent")
            return [dict(r._mapping) for r in await conn.execute(q)]
    finally:
        await engine.dispose()


async def outbox_replay(url: str, ids: list[str] | None = None, *, no_relay: bool = False) -> int:
    """Put dead letters (and with ``no_relay`` the ones kept for lack of a relay) back in
    line with their attempts reset; ``ids`` limits it to those. Returns how many."""
    o = email_outbound
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            states = ["dead", "no_relay"] if no_relay else ["dead"]
            stmt = update(o).where(o.c.state.in_(states))
            if ids is not None:
                if not ids:
                    return 0
                stmt = stmt.where(o.c.id.in_(ids))
            now = time.time()
            res = await conn.execute(
                stmt.values(
                    state="pending", attempts=0, next_attempt_at=now, lease_until=None, updated_at=now
                )
            )
            return res.rowcount or 0
    finally:
        await engine.dispose()
