"""Supervisor reports, aggregated in SQL from the ``interactions`` table (SQLite and PostgreSQL).

Every figure is a SUM/AVG/MAX computed by the database, grouped by interval, queue and
channel (or by agent); Python only divides the sums it gets back. The same definitions
as :mod:`routing.simulation`, so a simulated day and a recorded one compare row by row:

- a contact counts in the interval of its *arrival* (``sort_ts`` = ``arrived_at``),
  interval = ``floor(sort_ts / interval_s) · interval_s`` (UTC epoch, so 15/30-minute
  intervals line up with the hour in every whole- or half-hour time zone);
- offered = reached a queue (``queued_at`` set); answered = offered and connected;
  abandoned = offered with outcome ``abandoned``; short abandons = abandoned after
  waiting less than ``short_abandon_s``;
- wait = ``connected_at − queued_at`` for answered contacts (first queue to first
  agent), ``wait_s`` (else ``ended_at − queued_at``) for abandoned ones;
- answered within = answered with wait ≤ ``threshold_s``;

      service level = answered within / (answered + abandoned − short abandons)

  (None when that denominator is 0);
- ASA = mean wait of answered contacts; talk, hold and wrap-up = the record's
  ``talk_s``, ``hold_s``, ``wrapup_s`` averaged over answered contacts; AHT = their sum;
- longest wait = the longest answered or abandoned wait;
- transfers = ``ContactTransferred`` events of the interval's contacts, counted from the
  ``interaction_events`` timeline (the record keeps them only inside its JSON
  ``segments``, which neither dialect can aggregate cheaply or alike); events more
  than ``TRANSFER_SLACK_S`` after the report's end are not looked at;
- callbacks = contacts with a callback number (``CallbackRequested``);
- self-served = outcome ``self_served`` (IVR or web flow ended the contact).

Per agent (the record's ``agent_id``: the last agent connected, so a transferred
contact counts for the agent who finished it): handled and AHT split as above.

Not in the records, so not here yet: agent state time (available / not ready by
reason code) and occupancy, which need agent state events stored; the skills a
contact required (``ContactQueued.skills`` is not folded into the record).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, and_, case, cast, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ColumnElement

from crm_bridge.schema import interaction_events, interactions

SL_FORMULA = "answered within threshold / (answered + abandoned - short abandons)"
TRANSFER_SLACK_S = 7 * 86_400.0
_i = interactions.c


@dataclass(frozen=True, slots=True)
class ReportSpec:
    """What a report covers: ``[start, end)`` in epoch seconds, and its thresholds."""

    start: float
    end: float
    interval_s: float = 1800.0
    threshold_s: float = 20.0
    short_abandon_s: float = 5.0
    queues: tuple[str, ...] = ()  # empty = every queue

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("a report's end must come after its start")
        if self.interval_s <= 0:
            raise ValueError("interval_s must be positive")


def _bucket(dialect: str, interval_s: float) -> ColumnElement[Any]:
    """The interval start of ``sort_ts``. PostgreSQL has floor(); SQLite may lack the
    math functions, but CAST truncates toward zero, which is floor for epoch times."""
    steps = _i.sort_ts / interval_s
    index = func.floor(steps) if dialect == "postgresql" else cast(steps, Integer)
    return (index * interval_s).label("interval_start")


def _measures(spec: ReportSpec) -> list[ColumnElement[Any]]:
    """The aggregate columns shared by the queue and the agent report.

    ``FILTER (WHERE …)`` (PostgreSQL, SQLite ≥ 3.30) rather than ``SUM(CASE …)``: the
    database skips the row per aggregate instead of evaluating a CASE for each.
    """
    queued = _i.queued_at.is_not(None)
    answered = and_(queued, _i.connected_at.is_not(None))
    abandoned = and_(queued, _i.connected_at.is_(None), _i.outcome == "abandoned")
    answer_wait = _i.connected_at - _i.queued_at
    abandon_wait = func.coalesce(_i.wait_s, _i.ended_at - _i.queued_at)

    def count(cond: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.count().filter(cond)

    handle = func.coalesce(_i.talk_s, 0.0) + func.coalesce(_i.hold_s, 0.0) + func.coalesce(_i.wrapup_s, 0.0)
    return [
        func.count().label("arrived"),
        count(queued).label("offered"),
        count(answered).label("answered"),
        count(abandoned).label("abandoned"),
        count(and_(abandoned, abandon_wait < spec.short_abandon_s)).label("short_abandoned"),
        count(and_(answered, answer_wait <= spec.threshold_s)).label("answered_within"),
        func.avg(answer_wait).filter(answered).label("asa_s"),
        func.avg(_i.talk_s).filter(answered).label("talk_s"),
        func.avg(_i.hold_s).filter(answered).label("hold_s"),
        func.avg(_i.wrapup_s).filter(answered).label("wrap_up_s"),
        func.avg(handle).filter(answered).label("aht_s"),
        func.max(case((answered, answer_wait), (abandoned, abandon_wait), else_=None)).label(
            "longest_wait_s"
        ),
        count(_i.callback_number != "").label("callbacks"),
        count(_i.outcome == "self_served").label("self_served"),
    ]


def _where(spec: ReportSpec) -> list[ColumnElement[bool]]:
    conds = [_i.sort_ts >= spec.start, _i.sort_ts < spec.end]
    if spec.queues:
        conds.append(_i.queue.in_(spec.queues))
    return conds


def _finish(row: dict[str, Any]) -> dict[str, Any]:
    """Add the service level; turn the database's numerics into plain floats/ints."""
    for key in ("arrived", "offered", "answered", "abandoned", "short_abandoned", "answered_within"):
        row[key] = int(row[key])
    for key in ("callbacks", "self_served", "transfers"):
        if key in row:
            row[key] = int(row[key])
    denom = row["answered"] + row["abandoned"] - row["short_abandoned"]
    row["service_level"] = row["answered_within"] / denom if denom else None
    for key in ("asa_s", "talk_s", "hold_s", "wrap_up_s", "aht_s", "longest_wait_s", "interval_start"):
        if row.get(key) is not None:
            row[key] = float(row[key])
    return row


def _transfers(spec: ReportSpec) -> Any:
    """Transfers per contact from the timeline; the (type, ts) index finds the few events."""
    e = interaction_events.c
    return (
        select(e.contact_id, func.count().label("n"))
        .where(e.type == "ContactTransferred", e.ts >= spec.start, e.ts < spec.end + TRANSFER_SLACK_S)
        .group_by(e.contact_id)
        .subquery("transfers")
    )


def _queue_rows(conn: Connection, spec: ReportSpec) -> list[dict[str, Any]]:
    bucket = _bucket(conn.dialect.name, spec.interval_s)
    moved = _transfers(spec)
    query = (
        select(
            bucket,
            _i.queue,
            _i.channel,
            *_measures(spec),
            func.coalesce(func.sum(moved.c.n), 0).label("transfers"),
        )
        .select_from(interactions.outerjoin(moved, moved.c.contact_id == _i.id))
        .where(*_where(spec))
        .group_by(bucket, _i.queue, _i.channel)
        .order_by(bucket, _i.queue, _i.channel)
    )
    return [_finish(dict(r._mapping)) for r in conn.execute(query)]


def _agent_rows(conn: Connection, spec: ReportSpec) -> list[dict[str, Any]]:
    handled = and_(_i.queued_at.is_not(None), _i.connected_at.is_not(None), _i.agent_id != "")
    query = (
        select(_i.agent_id, _i.channel, *_measures(spec))
        .where(*_where(spec), handled)
        .group_by(_i.agent_id, _i.channel)
        .order_by(_i.agent_id, _i.channel)
    )
    out = []
    for r in conn.execute(query):
        row = _finish(dict(r._mapping))
        row["handled"] = row["answered"]
        out.append(row)
    return out


async def _run(db: AsyncEngine | AsyncConnection, fn: Any, spec: ReportSpec) -> list[dict[str, Any]]:
    if isinstance(db, AsyncEngine):
        async with db.connect() as conn:
            return await conn.run_sync(fn, spec)
    return await db.run_sync(fn, spec)


async def queue_report(db: AsyncEngine | AsyncConnection, spec: ReportSpec) -> list[dict[str, Any]]:
    """One row per (interval_start, queue, channel) with arrivals in ``spec``'s range:
    interval_start, queue, channel, arrived, offered, answered, abandoned,
    short_abandoned, answered_within, service_level, asa_s, talk_s, hold_s, wrap_up_s,
    aht_s, longest_wait_s, transfers, callbacks, self_served. Contacts that never
    reached a queue (self-served in the IVR) have queue ``""``."""
    return await _run(db, _queue_rows, spec)


async def agent_report(db: AsyncEngine | AsyncConnection, spec: ReportSpec) -> list[dict[str, Any]]:
    """One row per (agent_id, channel) over ``spec``'s range: handled, AHT and its
    talk/hold/wrap-up split, ASA and service level of the contacts they answered."""
    return await _run(db, _agent_rows, spec)


def totals(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Sum interval rows into one (weighted means; service level by the same formula)."""
    keys = ("arrived", "offered", "answered", "abandoned", "short_abandoned", "answered_within")
    out: dict[str, Any] = {k: sum(r[k] for r in rows) for k in keys}
    for k in ("transfers", "callbacks", "self_served"):
        out[k] = sum(r.get(k, 0) for r in rows)
    n = out["answered"]
    for k in ("asa_s", "talk_s", "hold_s", "wrap_up_s", "aht_s"):
        parts = [(r[k], r["answered"]) for r in rows if r.get(k) is not None and r["answered"]]
        out[k] = sum(v * c for v, c in parts) / n if n and parts else None
    out["longest_wait_s"] = max((r["longest_wait_s"] or 0.0 for r in rows), default=None)
    denom = out["answered"] + out["abandoned"] - out["short_abandoned"]
    out["service_level"] = out["answered_within"] / denom if denom else None
    return out


__all__ = ["SL_FORMULA", "TRANSFER_SLACK_S", "ReportSpec", "agent_report", "queue_report", "totals"]
