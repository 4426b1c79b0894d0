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

Rollup: a month of raw rows is a lot to aggregate per request (1M rows take
1.7-3 s on the 2-core test machine), so :func:`refresh_rollup` keeps ``report_intervals``
— the same sums per 15-minute bucket, queue and channel, for one (threshold, short
abandon) pair — up to date incrementally: it re-aggregates only the buckets holding
records written since its last run (``interactions.updated_at`` above the watermark,
minus ``lag_s`` for transactions that committed late). ``queue_report(..., rollup=True)``
then sums at most 96 buckets a day instead of every contact. A record whose arrival
time itself changes (its arrival event came late) leaves its old bucket stale until
``refresh_rollup(full=True)``.

Not in the records, so not here yet: agent state time (available / not ready by
reason code) and occupancy, which need agent state events stored; the skills a
contact required (``ContactQueued.skills`` is not folded into the record).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, and_, case, cast, delete, func, insert, literal, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ColumnElement

from crm_bridge.schema import (
    ROLLUP_COUNTS,
    ROLLUP_SUMS,
    interaction_events,
    interactions,
    report_intervals,
    report_rollup_state,
)

SL_FORMULA = "answered within threshold / (answered + abandoned - short abandons)"
TRANSFER_SLACK_S = 7 * 86_400.0
ROLLUP_S = 900.0  # rollup bucket: 15 and 30-minute, hourly and daily reports are sums of it
# Output counts, and the sums the means are made of (mean talk = talk_sum / talk_n:
# records still open have no talk time yet); the rollup table has a column for each.
COUNTS = tuple(c for c in ROLLUP_COUNTS if not c.endswith("_n"))
SUMS = (*ROLLUP_SUMS, "talk_n", "hold_n", "wrap_n")
_i = interactions.c
_r = report_intervals.c
_LOCK_KEY = 0x43524D52  # "CRMR": one rollup refresh at a time on PostgreSQL


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


def _floor(dialect: str, value: ColumnElement[Any], interval_s: float) -> ColumnElement[Any]:
    """``floor(value / interval) · interval``. PostgreSQL has floor(); SQLite may lack the
    math functions, but CAST truncates toward zero, which is floor for epoch times."""
    steps = value / interval_s
    index = func.floor(steps) if dialect == "postgresql" else cast(steps, Integer)
    return index * interval_s


def _sums(threshold_s: float, short_abandon_s: float) -> list[ColumnElement[Any]]:
    """Counts, sums and the longest wait over the grouped records.

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

    def total(value: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.coalesce(func.sum(value).filter(answered), 0.0)

    handle = func.coalesce(_i.talk_s, 0.0) + func.coalesce(_i.hold_s, 0.0) + func.coalesce(_i.wrapup_s, 0.0)
    longest = case((answered, answer_wait), (abandoned, abandon_wait), else_=None)
    return [
        func.count().label("arrived"),
        count(queued).label("offered"),
        count(answered).label("answered"),
        count(abandoned).label("abandoned"),
        count(and_(abandoned, abandon_wait < short_abandon_s)).label("short_abandoned"),
        count(and_(answered, answer_wait <= threshold_s)).label("answered_within"),
        count(_i.callback_number != "").label("callbacks"),
        count(_i.outcome == "self_served").label("self_served"),
        total(answer_wait).label("wait_sum"),
        total(_i.talk_s).label("talk_sum"),
        count(and_(answered, _i.talk_s.is_not(None))).label("talk_n"),
        total(_i.hold_s).label("hold_sum"),
        count(and_(answered, _i.hold_s.is_not(None))).label("hold_n"),
        total(_i.wrapup_s).label("wrap_sum"),
        count(and_(answered, _i.wrapup_s.is_not(None))).label("wrap_n"),
        total(handle).label("handle_sum"),
        func.max(longest).label("longest_wait_s"),
    ]


def _finish(row: dict[str, Any]) -> dict[str, Any]:
    """Means and service level from the sums; plain ints and floats; the sums dropped.
    Written flat: a month at 15 minutes is ~76,000 rows, and this runs for each."""
    pop = row.pop
    n = row["answered"] = int(row["answered"] or 0)
    abandoned = row["abandoned"] = int(row["abandoned"] or 0)
    short = row["short_abandoned"] = int(row["short_abandoned"] or 0)
    within = row["answered_within"] = int(row["answered_within"] or 0)
    for key in ("arrived", "offered", "callbacks", "self_served", "transfers"):
        if key in row:
            row[key] = int(row[key] or 0)
    wait, talk, hold, wrap, handle = (
        pop(k) or 0.0 for k in ("wait_sum", "talk_sum", "hold_sum", "wrap_sum", "handle_sum")
    )
    talk_n, hold_n, wrap_n = pop("talk_n"), pop("hold_n"), pop("wrap_n")
    row["asa_s"] = float(wait) / n if n else None
    row["talk_s"] = float(talk) / talk_n if talk_n else None
    row["hold_s"] = float(hold) / hold_n if hold_n else None
    row["wrap_up_s"] = float(wrap) / wrap_n if wrap_n else None
    row["aht_s"] = float(handle) / n if n else None
    denom = n + abandoned - short
    row["service_level"] = within / denom if denom else None
    for key in ("longest_wait_s", "interval_start"):
        if row.get(key) is not None:
            row[key] = float(row[key])
    return row


def _rows(conn: Connection, query: Any) -> list[dict[str, Any]]:
    """Result rows as finished dicts (zip with the keys once: cheaper than Row._mapping)."""
    result = conn.execute(query)
    keys = list(result.keys())
    return [_finish(dict(zip(keys, r, strict=True))) for r in result]


def _in_range(start: float, end: float, queues: Sequence[str] = ()) -> list[ColumnElement[bool]]:
    conds = [_i.sort_ts >= start, _i.sort_ts < end]
    if queues:
        conds.append(_i.queue.in_(queues))
    return conds


def _by_interval(
    dialect: str,
    start: float,
    end: float,
    interval_s: float,
    threshold_s: float,
    short_s: float,
    queues: Sequence[str] = (),
) -> Any:
    """Raw aggregation of the records arriving in ``[start, end)`` per interval, queue, channel."""
    e = interaction_events.c
    moved = (  # transfers per contact; the (type, ts) index finds the few events
        select(e.contact_id, func.count().label("n"))
        .where(e.type == "ContactTransferred", e.ts >= start, e.ts < end + TRANSFER_SLACK_S)
        .group_by(e.contact_id)
        .subquery("moved")
    )
    bucket = _floor(dialect, _i.sort_ts, interval_s).label("interval_start")
    return (
        select(
            bucket,
            _i.queue,
            _i.channel,
            *_sums(threshold_s, short_s),
            func.coalesce(func.sum(moved.c.n), 0).label("transfers"),
        )
        .select_from(interactions.outerjoin(moved, moved.c.contact_id == _i.id))
        .where(*_in_range(start, end, queues))
        .group_by(bucket, _i.queue, _i.channel)
    )


def _queue_rows(conn: Connection, spec: ReportSpec) -> list[dict[str, Any]]:
    query = _by_interval(
        conn.dialect.name,
        spec.start,
        spec.end,
        spec.interval_s,
        spec.threshold_s,
        spec.short_abandon_s,
        spec.queues,
    ).order_by(text("1, 2, 3"))
    return _rows(conn, query)


def _rollup_rows(conn: Connection, spec: ReportSpec) -> list[dict[str, Any]]:
    profile = (_r.threshold_s == spec.threshold_s, _r.short_abandon_s == spec.short_abandon_s)
    known = conn.execute(
        select(report_rollup_state.c.watermark).where(
            report_rollup_state.c.threshold_s == spec.threshold_s,
            report_rollup_state.c.short_abandon_s == spec.short_abandon_s,
        )
    ).first()
    if known is None:
        raise ValueError(
            f"no rollup for threshold {spec.threshold_s:g} s / short abandon {spec.short_abandon_s:g} s: "
            "run refresh_rollup() with them first"
        )
    bucket = _floor(conn.dialect.name, _r.bucket_start, spec.interval_s).label("interval_start")
    conds = [*profile, _r.bucket_start >= spec.start, _r.bucket_start < spec.end]
    if spec.queues:
        conds.append(_r.queue.in_(spec.queues))
    query = (
        select(
            bucket,
            _r.queue,
            _r.channel,
            *(func.sum(_r[c]).label(c) for c in (*COUNTS, *SUMS)),
            func.max(_r.longest_wait_s).label("longest_wait_s"),
        )
        .where(*conds)
        .group_by(bucket, _r.queue, _r.channel)
        .order_by(bucket, _r.queue, _r.channel)
    )
    return _rows(conn, query)


def _agent_rows(conn: Connection, spec: ReportSpec) -> list[dict[str, Any]]:
    handled = and_(_i.queued_at.is_not(None), _i.connected_at.is_not(None), _i.agent_id != "")
    query = (
        select(_i.agent_id, _i.channel, *_sums(spec.threshold_s, spec.short_abandon_s))
        .where(*_in_range(spec.start, spec.end, spec.queues), handled)
        .group_by(_i.agent_id, _i.channel)
        .order_by(_i.agent_id, _i.channel)
    )
    out = _rows(conn, query)
    for row in out:
        row["handled"] = row["answered"]
    return out


async def _run(db: AsyncEngine | AsyncConnection, fn: Any, *args: Any) -> Any:
    if isinstance(db, AsyncEngine):
        async with db.begin() as conn:
            return await conn.run_sync(fn, *args)
    return await db.run_sync(fn, *args)


def _aligned(spec: ReportSpec) -> bool:
    return all(v % ROLLUP_S == 0 for v in (spec.interval_s, spec.start, spec.end))


async def queue_report(
    db: AsyncEngine | AsyncConnection, spec: ReportSpec, *, rollup: bool = False
) -> list[dict[str, Any]]:
    """One row per (interval_start, queue, channel) with arrivals in ``spec``'s range:
    interval_start, queue, channel, arrived, offered, answered, abandoned,
    short_abandoned, answered_within, service_level, asa_s, talk_s, hold_s, wrap_up_s,
    aht_s, longest_wait_s, transfers, callbacks, self_served. Contacts that never
    reached a queue (self-served in the IVR) have queue ``""``.

    ``rollup=True`` reads ``report_intervals`` (as fresh as the last
    :func:`refresh_rollup` for these thresholds) when the range and interval are whole
    15-minute buckets, and the raw records otherwise; both give the same figures."""
    if rollup and _aligned(spec):
        return await _run(db, _rollup_rows, spec)
    return await _run(db, _queue_rows, spec)


async def agent_report(db: AsyncEngine | AsyncConnection, spec: ReportSpec) -> list[dict[str, Any]]:
    """One row per (agent_id, channel) over ``spec``'s range: handled, AHT and its
    talk/hold/wrap-up split, ASA and service level of the contacts they answered."""
    return await _run(db, _agent_rows, spec)


# What the simulator's replay reads of a record (routing.simulation.Arrival.from_record).
REPLAY_COLUMNS = (
    "id", "channel", "queue", "arrived_at", "queued_at", "connected_at", "ended_at",
    "talk_s", "hold_s", "wait_s", "outcome", "segments", "attributes",
)  # fmt: skip


def _records_between(
    conn: Connection, start: float, end: float, queues: Sequence[str], limit: int | None
) -> list[dict[str, Any]]:
    query = (
        select(*(_i[c] for c in REPLAY_COLUMNS))
        .where(*_in_range(start, end, queues))
        .order_by(_i.sort_ts, _i.id)
        .limit(limit)
    )
    result = conn.execute(query)
    keys = list(result.keys())
    return [dict(zip(keys, r, strict=True)) for r in result]


async def records_between(
    db: AsyncEngine | AsyncConnection,
    start: float,
    end: float,
    *,
    queues: Sequence[str] = (),
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """The records arriving in ``[start, end)`` (the report index), in arrival order, with
    the columns a replay needs (:data:`REPLAY_COLUMNS`); at most ``limit`` of them."""
    return await _run(db, _records_between, start, end, tuple(queues), limit)


def _runs(buckets: Sequence[float]) -> list[tuple[float, float]]:
    """Sorted bucket starts → contiguous [lo, hi) ranges, so a month of dirty buckets is
    one statement, not thousands."""
    out: list[tuple[float, float]] = []
    for b in sorted(buckets):
        if out and out[-1][1] == b:
            out[-1] = (out[-1][0], b + ROLLUP_S)
        else:
            out.append((b, b + ROLLUP_S))
    return out


def _refresh(
    conn: Connection, threshold_s: float, short_s: float, full: bool, lag_s: float
) -> dict[str, Any]:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    st = report_rollup_state.c
    profile = (st.threshold_s == threshold_s, st.short_abandon_s == short_s)
    mark = conn.execute(select(st.watermark).where(*profile)).scalar()
    newest = conn.execute(select(func.max(_i.updated_at))).scalar()
    mine = (_r.threshold_s == threshold_s, _r.short_abandon_s == short_s)
    if full or mark is None:
        conn.execute(delete(report_intervals).where(*mine))
        ranges = [(-1e18, 1e18)]
    else:
        bucket = _floor(dialect, _i.sort_ts, ROLLUP_S)
        dirty = conn.execute(select(bucket).where(_i.updated_at >= mark - lag_s).distinct()).scalars()
        ranges = _runs([float(b) for b in dirty])
    rows = 0
    for lo, hi in ranges:
        conn.execute(delete(report_intervals).where(*mine, _r.bucket_start >= lo, _r.bucket_start < hi))
        source = _by_interval(dialect, lo, hi, ROLLUP_S, threshold_s, short_s)
        source = source.add_columns(
            literal(threshold_s).label("threshold_s"), literal(short_s).label("short_abandon_s")
        )
        names = [
            "bucket_start",
            "queue",
            "channel",
            *(c.name for c in _sums(threshold_s, short_s)),
            "transfers",
            "threshold_s",
            "short_abandon_s",
        ]
        rows += conn.execute(insert(report_intervals).from_select(names, source)).rowcount or 0
    conn.execute(delete(report_rollup_state).where(*profile))
    conn.execute(
        insert(report_rollup_state).values(
            threshold_s=threshold_s, short_abandon_s=short_s, watermark=newest or 0.0
        )
    )
    return {"ranges": len(ranges), "rows": rows, "watermark": newest}


async def refresh_rollup(
    db: AsyncEngine | AsyncConnection,
    threshold_s: float = 20.0,
    short_abandon_s: float = 5.0,
    *,
    full: bool = False,
    lag_s: float = 300.0,
) -> dict[str, Any]:
    """Bring ``report_intervals`` up to date for one (threshold, short abandon) pair:
    re-aggregate the 15-minute buckets of every record written since the last refresh
    (everything on the first run or with ``full``). One transaction; concurrent
    refreshes queue on an advisory lock (PostgreSQL) or the write lock (SQLite).
    Returns ``{"ranges", "rows", "watermark"}``."""
    return await _run(db, _refresh, threshold_s, short_abandon_s, full, lag_s)


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
