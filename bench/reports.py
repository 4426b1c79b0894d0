"""Reports benchmark: crm_bridge.reports query time over a month of interactions on PostgreSQL.

Workload: ``--rows`` interaction rows (default 1,000,000) spread over 30 days, shaped
like the records crm_bridge builds (8 queues, voice 70 % / web 20 % / email 10 %,
200 agents, 12 % abandoned, 3 % self-served in the IVR, 2 % callbacks, 4 %
transferred with a ``ContactTransferred`` event in the timeline, small JSON segments
so rows are as wide as real ones). Loaded by COPY into a scratch database migrated
to head (the report indexes included), then VACUUM ANALYZE (what autovacuum does
after a bulk load; index-only scans need the visibility map).

Timed: the queue report (30-minute and 15-minute intervals) and the agent report
over the whole month and over one day, each ``--repeat`` times after a warm-up run;
the table shows the median and the worst. The scratch database is dropped at the end.

    python bench/reports.py            # 1,000,000 rows, writes bench/results/reports.json
    python bench/reports.py --quick    # 100,000 rows, < 1 minute, bench/results/reports_quick.json

PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth); the machine has 2 cores
shared with other work, the database server included: figures are an upper bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crm_bridge.db import make_engine  # noqa: E402
from crm_bridge.migrate import upgrade  # noqa: E402
from crm_bridge.reports import ReportSpec, agent_report, queue_report, refresh_rollup  # noqa: E402

HOST = os.environ.get("CRM_TEST_PG_HOST", "127.0.0.1")
PORT = int(os.environ.get("CRM_TEST_PG_PORT", "5432"))
USER = os.environ.get("CRM_TEST_PG_USER", "postgres")
ADMIN_DB = os.environ.get("CRM_TEST_PG_DB", "test")
START = 1_798_761_600.0  # 2027-01-01 00:00 UTC
DAY = 86_400.0
QUEUES = ["sales", "support", "billing", "tech", "vip", "retention", "claims", "general"]
CHANNELS = [("voice", 0.7), ("web", 0.2), ("email", 0.1)]
COLUMNS = [
    "id", "channel", "direction", "customer_id", "original_customer_id", "match_method", "match_detail",
    "ani", "dnis", "service", "from_addr", "to_addr", "web_id", "language", "flow", "queue", "agent_id",
    "arrived_at", "ivr_ended_at", "queued_at", "offered_at", "connected_at", "ended_at", "wrapup_ended_at",
    "ivr_s", "wait_s", "talk_s", "hold_s", "wrapup_s", "ivr_path", "ivr_inputs", "segments", "outcome",
    "end_reason", "disposition", "notes", "transcript", "subject", "body", "callback_number", "attachments",
    "attributes", "flags", "status", "sort_ts", "event_count", "content_hash", "pushed_hash", "version",
    "updated_at",
]  # fmt: skip


def row(i: int, rng: random.Random, span: float) -> tuple[tuple[Any, ...], bool]:
    """One interaction row and whether it was transferred."""
    cid = f"c{i:08d}"
    arrived = START + rng.random() * span
    channel = rng.choices([c for c, _ in CHANNELS], [w for _, w in CHANNELS])[0]
    queue = rng.choice(QUEUES)
    ivr = rng.uniform(5, 40) if channel == "voice" else 0.0
    queued: float | None = arrived + ivr
    agent, connected, ended, wrap_end = "", None, None, None
    wait = talk = hold = wrapup = None
    callback, transferred = "", False
    segments: list[dict[str, Any]] = []
    draw = rng.random()
    if draw < 0.03:  # self-served in the IVR
        queued, queue, outcome, ended = None, "", "self_served", arrived + ivr
    elif draw < 0.15:
        outcome = "abandoned"
        wait = rng.expovariate(1 / 60)
        ended = (queued or arrived) + wait
    elif draw < 0.17:
        outcome, callback = "callback_requested", "+441632960999"
        wait = rng.expovariate(1 / 90)
        ended = (queued or arrived) + wait
    else:
        outcome = "answered"
        wait = rng.expovariate(1 / 25)
        connected = (queued or arrived) + wait
        talk, hold = rng.lognormvariate(5.2, 0.5), rng.choice([0.0, 0.0, 0.0, rng.uniform(5, 60)])
        ended = connected + talk + hold
        wrapup = rng.uniform(5, 60)
        wrap_end = ended + wrapup
        agent = f"a{rng.randint(1, 200):03d}"
        transferred = rng.random() < 0.05
        segments = [
            {
                "kind": "queue",
                "queue": queue,
                "priority": 0,
                "start": queued,
                "end": connected,
                "result": "answered",
            },
            {
                "kind": "agent",
                "agent_id": agent,
                "start": connected,
                "end": ended,
                "hold_s": hold,
                "result": "ended",
            },
        ]
    values = {
        "id": cid,
        "channel": channel,
        "direction": "inbound",
        "customer_id": f"cu{rng.randint(1, 100000)}",
        "original_customer_id": None,
        "match_method": "phone",
        "match_detail": "",
        "ani": "+441632960001",
        "dnis": "+441632000100",
        "service": queue,
        "from_addr": "",
        "to_addr": "",
        "web_id": "",
        "language": "en",
        "flow": "main",
        "queue": queue,
        "agent_id": agent,
        "arrived_at": arrived,
        "ivr_ended_at": arrived + ivr if ivr else None,
        "queued_at": queued,
        "offered_at": connected,
        "connected_at": connected,
        "ended_at": ended,
        "wrapup_ended_at": wrap_end,
        "ivr_s": ivr or None,
        "wait_s": wait,
        "talk_s": talk,
        "hold_s": hold,
        "wrapup_s": wrapup,
        "ivr_path": '["welcome", "menu"]',
        "ivr_inputs": "{}",
        "segments": json.dumps(segments),
        "outcome": outcome,
        "end_reason": "hangup",
        "disposition": "",
        "notes": "",
        "transcript": "",
        "subject": "",
        "body": "",
        "callback_number": callback,
        "attachments": "[]",
        "attributes": "{}",
        "flags": "[]",
        "status": "ended",
        "sort_ts": arrived,
        "event_count": 12,
        "content_hash": "h" * 64,
        "pushed_hash": "h" * 64,
        "version": 1,
        "updated_at": wrap_end or ended or arrived,
    }
    return tuple(values[c] for c in COLUMNS), transferred


async def admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=HOST, port=PORT, user=USER, database=ADMIN_DB, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def load(db: str, rows: int, seed: int) -> dict[str, Any]:
    import asyncpg

    conn = await asyncpg.connect(host=HOST, port=PORT, user=USER, database=db)
    rng = random.Random(seed)
    t0 = time.perf_counter()
    transfers = 0
    try:
        for lo in range(0, rows, 100_000):
            batch, events = [], []
            for i in range(lo, min(rows, lo + 100_000)):
                values, transferred = row(i, rng, 30 * DAY)
                batch.append(values)
                if transferred:
                    ts = values[COLUMNS.index("connected_at")] + 30.0
                    events.append((f"t{i}", values[0], "ContactTransferred", ts, ts, "{}", "[]"))
            await conn.copy_records_to_table("interactions", records=batch, columns=COLUMNS)
            await conn.copy_records_to_table(
                "interaction_events",
                records=events,
                columns=["event_id", "contact_id", "type", "ts", "received_at", "payload", "flags"],
            )
            transfers += len(events)
        loaded = time.perf_counter() - t0
        await conn.execute("VACUUM ANALYZE interactions")
        await conn.execute("VACUUM ANALYZE interaction_events")
        size = await conn.fetchval("SELECT pg_total_relation_size('interactions')")
        index = await conn.fetchval("SELECT pg_relation_size('ix_interactions_report')")
    finally:
        await conn.close()
    return {
        "rows": rows,
        "transfer_events": transfers,
        "load_s": loaded,
        "table_bytes": size,
        "index_bytes": index,
    }


async def timed(fn: Any, repeat: int) -> tuple[Any, list[float]]:
    result = await fn()  # warm-up: plans and buffers
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t)
    return result, times


async def time_reports(url: str, db: str, repeat: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    import asyncpg

    engine = make_engine(url)
    month, day = (START, START + 30 * DAY), (START + 10 * DAY, START + 11 * DAY)
    cases: list[tuple[str, Any, ReportSpec, dict[str, Any]]] = [
        ("queues, month, 30 min", queue_report, ReportSpec(*month, 1800), {}),
        ("queues, month, 15 min", queue_report, ReportSpec(*month, 900), {}),
        ("agents, month", agent_report, ReportSpec(*month), {}),
        ("queues, one day, 30 min", queue_report, ReportSpec(*day, 1800), {}),
        ("agents, one day", agent_report, ReportSpec(*day), {}),
        ("rollup: queues, month, 30 min", queue_report, ReportSpec(*month, 1800), {"rollup": True}),
        ("rollup: queues, month, 15 min", queue_report, ReportSpec(*month, 900), {"rollup": True}),
        ("rollup: queues, one day, 30 min", queue_report, ReportSpec(*day, 1800), {"rollup": True}),
    ]
    out = []
    rollup: dict[str, Any] = {}
    try:
        t = time.perf_counter()
        await refresh_rollup(engine, full=True)
        rollup["full_refresh_s"] = time.perf_counter() - t
        # An incremental refresh after a busy minute: the 60 latest records rewritten, as
        # the store does when their events come in (updated_at moves on).
        conn = await asyncpg.connect(host=HOST, port=PORT, user=USER, database=db)
        try:
            await conn.execute(
                "UPDATE interactions SET updated_at = updated_at + 1e9, wrapup_s = coalesce(wrapup_s, 0) + 1 "
                "WHERE id IN (SELECT id FROM interactions ORDER BY sort_ts DESC LIMIT 60)"
            )
        finally:
            await conn.close()
        t = time.perf_counter()
        info = await refresh_rollup(engine)
        rollup["incremental_refresh_s"] = time.perf_counter() - t
        rollup["incremental_ranges"] = info["ranges"]
        for name, fn, spec, kw in cases:
            result, times = await timed(lambda fn=fn, spec=spec, kw=kw: fn(engine, spec, **kw), repeat)
            out.append(
                {
                    "report": name,
                    "result_rows": len(result),
                    "contacts": sum(r.get("arrived", 0) for r in result),
                    "median_ms": statistics.median(times) * 1000,
                    "max_ms": max(times) * 1000,
                }
            )
    finally:
        await engine.dispose()
    return out, rollup


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100,000 rows, under a minute")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    db = f"bench_reports_{uuid.uuid4().hex[:10]}"
    await admin(f'CREATE DATABASE "{db}"')
    url = f"postgresql+asyncpg://{USER}@{HOST}:{PORT}/{db}"
    try:
        await upgrade(url)
        data = await load(db, rows, args.seed)
        timings, rollup = await time_reports(url, db, args.repeat)
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    print(
        f"{rows:,} interactions over 30 days loaded in {data['load_s']:.1f} s "
        f"(table {data['table_bytes'] / 2**20:.0f} MiB, report index {data['index_bytes'] / 2**20:.0f} MiB)"
    )
    print(
        f"rollup: full refresh {rollup['full_refresh_s']:.1f} s, incremental refresh after 60 rewritten "
        f"records {rollup['incremental_refresh_s'] * 1000:.0f} ms "
        f"({rollup['incremental_ranges']} bucket ranges)"
    )
    print(f"{'report':<32} {'rows out':>9} {'contacts':>10} {'median ms':>10} {'max ms':>8}")
    for t in timings:
        print(
            f"{t['report']:<32} {t['result_rows']:>9} {t['contacts']:>10} "
            f"{t['median_ms']:>10.0f} {t['max_ms']:>8.0f}"
        )
    results = {
        "benchmark": "reports",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(sys.argv),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "data": data,
        "rollup": rollup,
        "reports": timings,
    }
    out = ROOT / "bench" / "results" / ("reports_quick.json" if args.quick else "reports.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    asyncio.run(main())
