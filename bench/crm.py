"""CRM bridge: events/s turned into committed records, and screen-pop latency.

1. Ingest. Synthetic contacts (IVR → queue → offer → answer → hold → end → wrap-up,
   or abandoned), their events interleaved in time as on a busy system, fed to
   ``CrmStore.apply_events`` in batches. Counted after the run: every event in the
   timeline, every record built with the right event count, one outbox row per
   ended record — zero loss is checked, not assumed. Into SQLite and PostgreSQL.
   Peer in the same run: a raw asyncpg COPY of the same events into a bare table
   (the ceiling for "just append the bytes", no records, no identity, no outbox).
2. Screen-pop. Bulk-load customers, contact points and interactions (COPY via
   asyncpg on PostgreSQL, executemany on SQLite), then time ``screen_pop()`` for
   random contacts, one at a time: p50/p95/p99.

    python bench/crm.py           # 100,000 customers / 1,000,000 interactions
    python bench/crm.py --quick   # < 1 minute: 10,000 / 100,000

Databases: a scratch PostgreSQL database on 127.0.0.1:5432 (created and dropped)
and an SQLite file in a temp dir. Results: bench/results/crm.json. The machine
has 2 cores shared with other work, the database server included: figures are a
lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
from sqlalchemy import func, select

from crm_bridge.batching import EventBatcher
from crm_bridge.schema import interaction_events, interactions, outbox
from crm_bridge.store import CrmStore

PG = dict(host="127.0.0.1", port=5432, user="postgres")
RESULTS = Path(__file__).with_name("results") / "crm.json"


# --------------------------------------------------------------------------- events
def contact_events(cid: str, t0: float, rng: random.Random, ani: str) -> list[dict[str, Any]]:
    n = 0

    def ev(type_: str, ts: float, **f: Any) -> dict[str, Any]:
        nonlocal n
        n += 1
        return {"type": type_, "event_id": f"{cid}-{n}", "contact_id": cid, "ts": t0 + ts, **f}

    out = [
        ev(
            "ContactArrived",
            0,
            channel="voice",
            direction="inbound",
            ani=ani,
            dnis="+441632000100",
            service="support",
            from_addr=f"sip:{ani}@127.0.0.1",
            to_addr="sip:100@127.0.0.1",
            customer_id=None,
            attributes={},
        ),
        ev("FlowEntered", 0.2, flow="main", language="en"),
        ev("PromptPlayed", 0.3, step="welcome", text="Welcome", audio="", interrupted=False),
        ev(
            "IvrInputCollected",
            3,
            step="menu",
            name="choice",
            value=str(rng.randint(1, 3)),
            how="dtmf",
            confidence=1.0,
        ),
        ev("BranchTaken", 3.1, step="menu", target="q", reason=""),
        ev("IvrCompleted", 3.2, outcome="queued", path=["welcome", "menu"], data={}),
        ev("ContactQueued", 3.2, queue="support", priority=0, skills={"en": 1}),
    ]
    if rng.random() < 0.15:
        out += [
            ev("ContactAbandoned", 40, waited_s=36.8, where="queue"),
            ev("ContactEnded", 40, reason="hangup", ended_by="caller"),
        ]
        return out
    agent = f"a{rng.randint(1, 200)}"
    out += [
        ev("AgentOffered", 10, agent_id=agent, queue="support", reservation_id=f"r-{cid}", explanation=""),
        ev("ContactConnected", 12, agent_id=agent),
        ev("ContactHeld", 50, agent_id=agent, on_hold=True),
        ev("ContactHeld", 60, agent_id=agent, on_hold=False),
        ev("ContactEnded", 180, reason="hangup", ended_by="caller"),
        ev("WrapUpCompleted", 200, agent_id=agent, disposition="resolved", notes="ok"),
    ]
    return out


CALL_S = 200.0  # an answered call's life in the workload: arrival to wrap-up


def workload(contacts: int, seed: int = 1, concurrent: int = 1000) -> tuple[list[dict[str, Any]], int]:
    """Events of ``contacts`` calls interleaved by timestamp, arrivals spaced so that about
    ``concurrent`` calls are in progress at once (Little's law). The more calls overlap,
    the more records each batch touches: that, not the event count, drives the cost."""
    spacing = CALL_S / concurrent
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    run = uuid.uuid4().hex[:6]
    for i in range(contacts):
        ani = f"+4477009{rng.randint(0, 99999):05d}"  # repeat callers happen
        events += contact_events(f"b{run}{i}", 1_700_000_000 + i * spacing, rng, ani)
    events.sort(key=lambda e: e["ts"])
    return events, contacts


# --------------------------------------------------------------------------- ingest
async def ingest(store: CrmStore, events: list[dict[str, Any]], batch: int, writers: int) -> dict[str, Any]:
    """Feed every event through the EventBatcher callcenter uses (``writers`` flush loops,
    partitioned by contact) and wait until all are committed."""
    batcher = EventBatcher(store, max_batch=batch, max_delay=0.05, writers=writers)
    batcher.start()
    t, cpu = time.perf_counter(), time.process_time()
    for e in events:
        batcher.put(e)
    await batcher.close()
    # CPU of this process per event: steadier than wall time on a shared machine
    cpu_us = (time.process_time() - cpu) / len(events) * 1e6
    return {"seconds": time.perf_counter() - t, "client_cpu_us_per_event": round(cpu_us, 1)}


async def verify(store: CrmStore, events: list[dict[str, Any]], contacts: int) -> dict[str, Any]:
    ids = {e["contact_id"] for e in events}
    ended = {e["contact_id"] for e in events if e["type"] == "ContactEnded"}
    per_contact: dict[str, int] = {}
    for e in events:
        per_contact[e["contact_id"]] = per_contact.get(e["contact_id"], 0) + 1
    async with store.engine.connect() as conn:
        n_events = (await conn.execute(select(func.count()).select_from(interaction_events))).scalar_one()
        rows = (await conn.execute(select(interactions.c.id, interactions.c.event_count))).all()
        n_outbox = (await conn.execute(select(func.count()).select_from(outbox))).scalar_one()
    wrong = sum(1 for r in rows if per_contact.get(r.id) != r.event_count)
    lost = len(events) - n_events + (len(ids) - len(rows)) + wrong
    # wrap-up after the end is a second change of the same record: one or two pushes per ended record
    return {
        "events_in_timeline": n_events,
        "records": len(rows),
        "records_with_wrong_event_count": wrong,
        "outbox_rows": n_outbox,
        "ended_records": len(ended),
        "lost": lost,
        "ok": lost == 0 and n_outbox >= len(ended),
    }


async def peer_copy(url_db: str, events: list[dict[str, Any]]) -> float:
    conn = await asyncpg.connect(database=url_db, **PG)
    try:
        await conn.execute(
            "CREATE TABLE peer_events (event_id text PRIMARY KEY, contact_id text, "
            "type text, ts float8, payload jsonb)"
        )
        recs = [(e["event_id"], e["contact_id"], e["type"], e["ts"], json.dumps(e)) for e in events]
        t = time.perf_counter()
        await conn.copy_records_to_table("peer_events", records=recs)
        return time.perf_counter() - t
    finally:
        await conn.close()


# --------------------------------------------------------------------------- screen-pop
def bulk_rows(
    customers: int, n_interactions: int, seed: int = 2
) -> tuple[list[tuple], list[tuple], list[tuple]]:
    rng = random.Random(seed)
    now = 1_700_000_000.0
    cust = [
        (
            f"c{i:07d}",
            f"Customer {i}",
            rng.choice(["standard", "gold", "vip"]),
            "en",
            "{}",
            False,
            None,
            now,
            now,
        )
        for i in range(customers)
    ]
    points = [("phone", f"+44161{i:07d}", f"c{i:07d}", "bulk", now) for i in range(customers)]
    inter = []
    cols = [c.name for c in interactions.columns]
    for j in range(n_interactions):
        c = rng.randrange(customers)
        ts = now - rng.random() * 86400 * 365
        row = {
            "id": f"i{j:08d}",
            "channel": rng.choice(["voice", "voice", "voice", "email", "web"]),
            "direction": "inbound",
            "customer_id": f"c{c:07d}",
            "original_customer_id": f"c{c:07d}",
            "match_method": "phone",
            "match_detail": f"+44161{c:07d}",
            "ani": f"+44161{c:07d}",
            "dnis": "+441632000100",
            "service": "support",
            "from_addr": "",
            "to_addr": "",
            "web_id": "",
            "language": "en",
            "flow": "main",
            "queue": "support",
            "agent_id": f"a{rng.randint(1, 200)}",
            "arrived_at": ts,
            "ivr_ended_at": ts + 5,
            "queued_at": ts + 5,
            "offered_at": ts + 15,
            "connected_at": ts + 17,
            "ended_at": ts + 200,
            "wrapup_ended_at": ts + 230,
            "ivr_s": 5.0,
            "wait_s": 12.0,
            "talk_s": 173.0,
            "hold_s": 10.0,
            "wrapup_s": 30.0,
            "ivr_path": '["welcome","menu"]',
            "ivr_inputs": '{"choice":{"value":"2","how":"dtmf"}}',
            "segments": "[]",
            "outcome": "answered",
            "end_reason": "hangup",
            "disposition": "resolved",
            "notes": "ok",
            "transcript": "",
            "subject": "",
            "body": "",
            "callback_number": "",
            "attachments": "[]",
            "attributes": "{}",
            "flags": "[]",
            "status": "ended",
            "sort_ts": ts,
            "event_count": 14,
            "content_hash": "",
            "pushed_hash": "",
            "version": 1,
            "updated_at": ts,
        }
        inter.append(tuple(row[k] for k in cols))
    return cust, points, inter


async def load_pg(db: str, cust: list[tuple], points: list[tuple], inter: list[tuple]) -> float:
    conn = await asyncpg.connect(database=db, **PG)
    try:
        t = time.perf_counter()
        await conn.copy_records_to_table(
            "customers",
            records=cust,
            columns=[
                "id",
                "name",
                "tier",
                "language",
                "attributes",
                "provisional",
                "merged_into",
                "created_at",
                "updated_at",
            ],
        )
        await conn.copy_records_to_table(
            "contact_points", records=points, columns=["kind", "value", "customer_id", "how", "created_at"]
        )
        await conn.copy_records_to_table(
            "interactions", records=inter, columns=[c.name for c in interactions.columns]
        )
        await conn.execute("ANALYZE")
        return time.perf_counter() - t
    finally:
        await conn.close()


def load_sqlite(path: str, cust: list[tuple], points: list[tuple], inter: list[tuple]) -> float:
    db = sqlite3.connect(path)
    t = time.perf_counter()
    with db:
        db.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,?)", cust)
        db.executemany(
            "INSERT INTO contact_points (kind, value, customer_id, how, created_at) VALUES (?,?,?,?,?)",
            points,
        )
        marks = ",".join("?" * len(interactions.columns))
        db.executemany(f"INSERT INTO interactions VALUES ({marks})", inter)
    db.execute("ANALYZE")
    db.close()
    return time.perf_counter() - t


async def time_screen_pops(store: CrmStore, n_interactions: int, samples: int) -> dict[str, float]:
    rng = random.Random(3)
    for _ in range(50):  # warm the pool and caches
        await store.screen_pop(f"i{rng.randrange(n_interactions):08d}")
    lat = []
    for _ in range(samples):
        cid = f"i{rng.randrange(n_interactions):08d}"
        t = time.perf_counter()
        pop = await store.screen_pop(cid)
        lat.append((time.perf_counter() - t) * 1000)
        assert pop is not None and pop["customer"] is not None and len(pop["recent"]) >= 1
    lat.sort()
    q = statistics.quantiles(lat, n=100)
    return {
        "p50_ms": round(q[49], 2),
        "p95_ms": round(q[94], 2),
        "p99_ms": round(q[98], 2),
        "max_ms": round(lat[-1], 2),
        "samples": samples,
    }


# --------------------------------------------------------------------------- main
async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    ap.add_argument("--batch", type=int, default=2000, help="events per apply_events call")
    ap.add_argument("--concurrent", type=int, default=1000, help="calls in progress at once in the workload")
    ap.add_argument("--writers", type=int, default=2, help="concurrent writers (PostgreSQL)")
    args = ap.parse_args()

    contacts = 1_000 if args.quick else 20_000
    customers, n_inter = (10_000, 100_000) if args.quick else (100_000, 1_000_000)
    samples = 300 if args.quick else 5_000
    events, _ = workload(contacts, concurrent=args.concurrent)
    rows: list[dict[str, Any]] = []
    tmp = tempfile.mkdtemp(prefix="crm_bench_")
    pg_db = f"crm_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(database="test", **PG)
    await admin.execute(f'CREATE DATABASE "{pg_db}"')
    pg_url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{pg_db}"
    pg_pop_db = f"crm_bench_pop_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{pg_pop_db}"')
    try:
        targets = [
            ("sqlite", f"sqlite+aiosqlite:///{tmp}/ingest.db", 1),
            ("postgresql", pg_url, 1),
            ("postgresql", pg_url, args.writers),
        ]
        for i, (name, url, writers) in enumerate(targets):
            if i == 2:  # fresh data for the second PostgreSQL run: new contact ids
                events, _ = workload(contacts, seed=9, concurrent=args.concurrent)
            store = CrmStore(url, Path(tmp) / "files")
            await store.start()
            r = await ingest(store, events, args.batch, writers)
            v = await verify(store, events, contacts) if i != 2 else None
            if i == 2:  # the database already holds run 1: verify only this run's contacts
                ids = {e["contact_id"] for e in events}
                async with store.engine.connect() as conn:
                    got = (
                        await conn.execute(
                            select(interactions.c.id, interactions.c.event_count).where(
                                interactions.c.id.in_(list(ids))
                            )
                        )
                    ).all()
                want = {}
                for e in events:
                    want[e["contact_id"]] = want.get(e["contact_id"], 0) + 1
                lost = len(ids) - len(got) + sum(1 for g in got if want[g.id] != g.event_count)
                v = {"records": len(got), "lost": lost, "ok": lost == 0}
            await store.close()
            rows.append(
                {
                    "test": "ingest",
                    "db": name,
                    "writers": writers,
                    "batch": args.batch,
                    "concurrent_calls": args.concurrent,
                    "events": len(events),
                    "contacts": contacts,
                    **r,
                    "events_per_s": round(len(events) / r["seconds"]),
                    **v,
                }
            )
        peer_s = await peer_copy(pg_db, events)
        rows.append(
            {
                "test": "ingest-peer",
                "db": "postgresql",
                "what": "raw COPY of the same events",
                "events": len(events),
                "seconds": peer_s,
                "events_per_s": round(len(events) / peer_s),
            }
        )

        cust, points, inter = bulk_rows(customers, n_inter)
        for name in ("postgresql", "sqlite"):
            if name == "postgresql":
                url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{pg_pop_db}"
            else:
                url = f"sqlite+aiosqlite:///{tmp}/pop.db"
            store = CrmStore(url, Path(tmp) / "files")
            await store.start()
            if name == "postgresql":
                load_s = await load_pg(pg_pop_db, cust, points, inter)
            else:
                load_s = await asyncio.to_thread(load_sqlite, f"{tmp}/pop.db", cust, points, inter)
            lat = await time_screen_pops(store, n_inter, samples)
            await store.close()
            rows.append(
                {
                    "test": "screen_pop",
                    "db": name,
                    "customers": customers,
                    "interactions": n_inter,
                    "bulk_load_s": round(load_s, 1),
                    **lat,
                }
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        await admin.execute(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')
        await admin.execute(f'DROP DATABASE IF EXISTS "{pg_pop_db}" WITH (FORCE)')
        await admin.close()

    print(
        f"\nCRM bridge benchmark ({'quick' if args.quick else 'full'}; 2 shared cores, DB on the same host;"
        f" {args.concurrent} calls in progress at once, batches of {args.batch} events)\n"
    )
    print(
        f"{'test':<12} {'db':<11} {'writers':>7} {'events':>8} {'seconds':>8} {'events/s':>9} "
        f"{'cpu us/ev':>9} {'loss':>5}"
    )
    for r in rows:
        if r["test"].startswith("ingest"):
            print(
                f"{r['test']:<12} {r['db']:<11} {r.get('writers', '-')!s:>7} {r['events']:>8} "
                f"{r['seconds']:>8.2f} {r['events_per_s']:>9} "
                f"{r.get('client_cpu_us_per_event', '-')!s:>9} {r.get('lost', '-')!s:>5}"
            )
    print(
        f"\n{'test':<12} {'db':<11} {'customers':>9} {'interact.':>10} {'load s':>7} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"
    )
    for r in rows:
        if r["test"] == "screen_pop":
            print(
                f"{r['test']:<12} {r['db']:<11} {r['customers']:>9} {r['interactions']:>10} "
                f"{r['bulk_load_s']:>7} {r['p50_ms']:>7} {r['p95_ms']:>7} {r['p99_ms']:>7}"
            )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "bench": "crm",
                "mode": "quick" if args.quick else "full",
                "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "host": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "note": "2 cores shared with other work and with the PostgreSQL server",
                },
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"\nwritten {RESULTS}")
    if not all(r.get("ok", True) for r in rows):
        raise SystemExit("LOSS DETECTED")


if __name__ == "__main__":
    asyncio.run(main())
