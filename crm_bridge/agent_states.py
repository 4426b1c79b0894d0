"""Agent time per state and reason code, and occupancy, from stored agent state changes.

The server's bus delivers ``AgentStateChanged`` events (agent_id, old, new, reason; no
contact) to the CRM with the contact events; :func:`state_rows` turns the new ones into
rows of ``agent_state_events`` in the same transaction (the timeline keeps them too, as
JSON, which neither dialect aggregates cheaply or alike). The report is one SQL query:
each change lasts until the agent's next change (``LEAD`` window, PostgreSQL and SQLite
≥ 3.25), clipped to the report's range; the state an agent was in when the range
starts is their last change before it.

    occupancy = (reserved + busy + wrap_up) / (available + reserved + busy + wrap_up)

i.e. the share of the time an agent was ready for work that they spent on it (not
ready and offline time count neither way).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ColumnElement

from crm_bridge.intake import IncomingEvent
from crm_bridge.schema import agent_state_events

STATES = ("available", "reserved", "busy", "wrap_up", "not_ready", "offline")
WORKING = ("reserved", "busy", "wrap_up")
OCCUPANCY_FORMULA = "(reserved + busy + wrap_up) / (available + reserved + busy + wrap_up)"
_a = agent_state_events.c


def state_rows(events: Iterable[IncomingEvent]) -> list[dict[str, Any]]:
    """``agent_state_events`` rows of the AgentStateChanged events among ``events``."""
    rows = []
    for e in events:
        if e.type != "AgentStateChanged":
            continue
        p = e.payload
        agent = p.get("agent_id")
        if not isinstance(agent, str) or not agent:
            continue
        rows.append({
            "event_id": e.event_id,
            "agent_id": agent[:128],
            "ts": e.ts,
            "state": str(p.get("new") or "")[:32],
            "old": str(p.get("old") or "")[:32],
            "reason": str(p.get("reason") or "")[:64],
        })  # fmt: skip
    return rows


def _least(dialect: str, a: Any, b: Any) -> ColumnElement[Any]:
    return func.least(a, b) if dialect == "postgresql" else func.min(a, b)  # SQLite: scalar min()


def _greatest(dialect: str, a: Any, b: Any) -> ColumnElement[Any]:
    return func.greatest(a, b) if dialect == "postgresql" else func.max(a, b)


def _time_in_state(
    conn: Connection, start: float, end: float, agents: tuple[str, ...]
) -> list[tuple[Any, ...]]:
    dialect = conn.dialect.name
    stop = min(end, time.time())  # the current state lasts until now, not until the range's end
    before = agent_state_events.alias("before")
    b = before.c
    opening = (  # the change in force when the range starts
        select(func.max(b.ts)).where(b.agent_id == _a.agent_id, b.ts <= start).scalar_subquery()
    )
    conds = [_a.ts < end, or_(_a.ts >= start, _a.ts == opening)]
    if agents:
        conds.append(_a.agent_id.in_(agents))
    spans = (
        select(
            _a.agent_id,
            _a.state,
            _a.reason,
            _a.ts,
            func.lead(_a.ts).over(partition_by=_a.agent_id, order_by=(_a.ts, _a.event_id)).label("next_ts"),
        )
        .where(*conds)
        .subquery()
    )
    s = spans.c
    lo = _greatest(dialect, s.ts, start)
    hi = _least(dialect, func.coalesce(s.next_ts, stop), stop)
    query = (
        select(s.agent_id, s.state, s.reason, func.sum(hi - lo))
        .where(and_(hi > lo))
        .group_by(s.agent_id, s.state, s.reason)
        .order_by(s.agent_id, s.state, s.reason)
    )
    return [tuple(r) for r in conn.execute(query)]


async def agent_state_report(
    db: AsyncEngine | AsyncConnection, start: float, end: float, *, agents: Iterable[str] = ()
) -> dict[str, list[dict[str, Any]]]:
    """Per agent: seconds in each state over ``[start, end)`` and occupancy (``states``);
    per agent and reason code: seconds not ready (``reasons``)."""
    if isinstance(db, AsyncEngine):
        async with db.connect() as conn:
            raw = await conn.run_sync(_time_in_state, start, end, tuple(agents))
    else:
        raw = await db.run_sync(_time_in_state, start, end, tuple(agents))
    per_agent: dict[str, dict[str, Any]] = {}
    reasons: list[dict[str, Any]] = []
    for agent, state, reason, seconds in raw:
        row = per_agent.setdefault(agent, {"agent_id": agent, **{f"{s}_s": 0.0 for s in STATES}})
        key = f"{state}_s" if state in STATES else "other_s"
        row[key] = row.get(key, 0.0) + float(seconds)
        if state == "not_ready":
            reasons.append({"agent_id": agent, "reason": reason, "seconds": float(seconds)})
    for row in per_agent.values():
        working = sum(row[f"{s}_s"] for s in WORKING)
        ready = working + row["available_s"]
        row["logged_in_s"] = sum(v for k, v in row.items() if k.endswith("_s") and k != "offline_s")
        row["occupancy"] = working / ready if ready else None
    return {"states": [per_agent[a] for a in sorted(per_agent)], "reasons": reasons}
