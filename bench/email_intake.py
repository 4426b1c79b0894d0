"""Email intake: messages/s from SMTP 250 to a routed task and a committed record.

The email channel as the server runs it — ``SmtpListener`` (aiosmtpd, 250 only after the
raw message is committed), ``EmailProcessor`` (parse, attachments to the file store,
threading, auto-acknowledgement queued), ``EmailChannel`` on a ``ContactCore`` with the
in-memory router, and the CRM writer (``EventBatcher``) turning the events into records —
fed by a load generator in another process: ``--clients`` SMTP connections (aiosmtplib)
sending ``--messages`` messages, 10 % of them with a 1 MB attachment. Into SQLite and into
PostgreSQL (a scratch database on 127.0.0.1:5432, created and dropped).

Counted after each run, not assumed: every 250-acknowledged message is a row processed,
a contact queued in the router and an interaction record committed (``lost`` must be 0).
Figures: messages/s from the first send until the last record is committed; p50/p99 of
the intake latency (the client's DATA → 250) and of 250 → routed (the row's processed_at
− its commit time).

Peer in the same run: a raw aiosmtpd sink that writes each message to a file (fsynced,
like the database commit) and answers 250 — the ceiling for "accept and keep the bytes",
no parsing, no database, no routing. The ratio is reported.

    python bench/email_intake.py           # 2,000 messages per run
    python bench/email_intake.py --quick   # < 1 minute: 300 messages per run

Results: bench/results/email_intake.json. Two cores shared with other work (the database server
and the load generator included): the figures are a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("results") / "email_intake.json"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "postgres"}
ATTACHMENT_BYTES = 1 << 20


# --------------------------------------------------------------------------- load generator
CLIENT = r"""
import asyncio, json, os, sys, time
from email.message import EmailMessage
import email.policy
import aiosmtplib

port, total, clients, attach_every = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
blob = os.urandom(ATTACHMENT)

def message(n):
    m = EmailMessage()
    m["From"] = f"Customer {n % 500} <customer{n % 500}@example.com>"
    m["To"] = "support@callcenter.local"
    m["Subject"] = f"Question {n}"
    m["Message-ID"] = f"<bench{n}.{os.getpid()}@example.com>"
    m.set_content(f"Hello, this is message {n}.\n" * 5)
    if attach_every and n % attach_every == 0:
        m.add_attachment(blob, maintype="application", subtype="pdf", filename=f"file{n}.pdf")
    return m.as_bytes(policy=email.policy.SMTP)

async def worker(ids, out):
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
    await smtp.connect()
    for n in ids:
        raw = message(n)
        t0 = time.perf_counter()
        await smtp.sendmail(f"customer{n % 500}@example.com", ["support@callcenter.local"], raw)
        out.append(time.perf_counter() - t0)
    await smtp.quit()

async def main():
    out = []
    t0 = time.time()
    await asyncio.gather(*(worker(range(i, total, clients), out) for i in range(clients)))
    print(json.dumps({"start": t0, "end": time.time(), "latencies": out}))

asyncio.run(main())
""".replace("ATTACHMENT", str(ATTACHMENT_BYTES))


async def load(port: int, total: int, clients: int) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLIENT,
        str(port),
        str(total),
        str(clients),
        "10",
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode})")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return json.loads(out) | {"cpu_s": cpu}


async def database_cpu_s(crm: Any) -> float:
    """CPU seconds of the PostgreSQL backends serving this (scratch) database, from /proc
    (the server is on this machine); 0 for SQLite, whose work is in this process. A
    pooled connection closed during the run is missed: a lower bound."""
    from sqlalchemy import text

    if crm.engine.dialect.name != "postgresql":
        return 0.0
    async with crm.engine.connect() as conn:
        pids = [
            r.pid
            for r in await conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            )
        ]
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


# --------------------------------------------------------------------------- the channel
def routing_config() -> Any:
    """The demo's routing, with room for every message in the support queue (no agent
    takes them: routed = queued for an agent)."""
    import yaml

    from routing.config import build_config

    queues = yaml.safe_load((ROOT / "config" / "queues.yaml").read_text())
    for q in queues["queues"].values():
        q.pop("max_size", None)
        q["max_wait_s"] = 86_400
        q.pop("escalation", None)
        q.pop("overflow", None)
    agents = yaml.safe_load((ROOT / "config" / "agents.yaml").read_text())["agents"]
    profiles = [{k: v for k, v in a.items() if k not in ("sip", "desktop")} for a in agents]
    return build_config(yaml.safe_load((ROOT / "config" / "skills.yaml").read_text()), queues, profiles)


async def run_channel(url: str, tmp: Path, total: int, clients: int) -> dict[str, Any]:
    from sqlalchemy import event, func, select

    from callcenter.bus import EventBus
    from callcenter.contacts.core import ContactCore
    from callcenter.email.config import EmailCfg
    from callcenter.email.service import EmailService
    from callcenter.events import recorded_types
    from crm_bridge.batching import EventBatcher
    from crm_bridge.email_schema import email_messages
    from crm_bridge.schema import interactions
    from crm_bridge.store import CrmStore
    from routing.router import Router

    crm = CrmStore(url, tmp / "files")
    await crm.start()
    connects = [0]  # new database connections during the run (the pool's churn)
    event.listen(crm.engine.sync_engine, "connect", lambda *_a: connects.__setitem__(0, connects[0] + 1))
    bus = EventBus()
    router = Router(routing_config())
    core = ContactCore(router=router, bus=bus, crm=crm)
    batcher = EventBatcher(crm, writers=1 if url.startswith("sqlite") else 2)
    batcher.start()
    bus.subscribe("crm", lambda event: batcher.put(event.as_dict()), recorded_types())
    cfg = EmailCfg.model_validate(
        {
            "enabled": True,
            "smtp": {"port": 0, "max_message_bytes": 4 * ATTACHMENT_BYTES},
            "mailboxes": [
                {"address": "support@callcenter.local", "service": "support-email", "queue": "support"}
            ],
        }
    )
    service = EmailService(cfg, core, crm, tmp / "files")
    await service.start()
    assert service.smtp is not None
    cpu0 = time.process_time()
    try:
        sent = await load(service.smtp.port, total, clients)

        async def drained() -> tuple[int, int]:
            async with crm.engine.connect() as conn:
                done = (
                    await conn.execute(
                        select(func.count())
                        .select_from(email_messages)
                        .where(email_messages.c.direction == "in", email_messages.c.state == "done")
                    )
                ).scalar_one()
                recs = (
                    await conn.execute(
                        select(func.count())
                        .select_from(interactions)
                        .where(interactions.c.channel == "email")
                    )
                ).scalar_one()
            return done, recs

        deadline = time.monotonic() + 600
        while True:
            await bus.drain()
            await batcher.flush()
            done, recs = await drained()
            if (done >= total and recs >= total) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        finished = time.time()
        cpu = time.process_time() - cpu0
        async with crm.engine.connect() as conn:
            lag = [
                r.processed_at - r.received_at
                for r in await conn.execute(
                    select(email_messages.c.received_at, email_messages.c.processed_at).where(
                        email_messages.c.direction == "in", email_messages.c.processed_at.is_not(None)
                    )
                )
            ]
        queued = sum(1 for c in core.contacts.values() if c.channel == "email" and str(c.phase) == "queued")
        db_cpu = await database_cpu_s(crm)
    finally:
        await service.close()
        core.close()
        await bus.close()
        await batcher.close()
        await crm.close()
    lat = sent["latencies"]
    return {
        "messages": total,
        "acknowledged": len(lat),
        "processed": done,
        "records": recs,
        "queued": queued,
        "lost": len(lat) - min(done, recs, queued),
        "msgs_per_s": total / (finished - sent["start"]),
        "cpu_ms_per_msg": cpu / total * 1000,
        "db_cpu_ms_per_msg": db_cpu / total * 1000,
        "load_cpu_ms_per_msg": sent["cpu_s"] / total * 1000,
        "db_connects": connects[0],
        "writers_per_commit": service.store.group.writers / max(1, service.store.group.transactions),
        "intake_p50_ms": pct(lat, 50) * 1000,
        "intake_p99_ms": pct(lat, 99) * 1000,
        "routed_p50_ms": pct(lag, 50) * 1000,
        "routed_p99_ms": pct(lag, 99) * 1000,
    }


# --------------------------------------------------------------------------- the peer
class FileSink:
    """aiosmtpd handler: each message to its own file, fsynced, then 250."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.n = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.n += 1
        path = self.dir / f"{self.n:08d}.eml"
        data = envelope.original_content

        def write() -> None:
            with path.open("wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())

        await asyncio.to_thread(write)
        return "250 OK"


async def run_sink(tmp: Path, total: int, clients: int) -> dict[str, Any]:
    from aiosmtpd.smtp import SMTP

    tmp.mkdir(parents=True, exist_ok=True)
    sink = FileSink(tmp)
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(sink, data_size_limit=4 * ATTACHMENT_BYTES), "127.0.0.1", 0
    )
    cpu0 = time.process_time()
    try:
        sent = await load(server.sockets[0].getsockname()[1], total, clients)
    finally:
        server.close()
        await server.wait_closed()
    cpu = time.process_time() - cpu0
    lat = sent["latencies"]
    return {
        "messages": total,
        "acknowledged": len(lat),
        "files": len(list(tmp.glob("*.eml"))),
        "msgs_per_s": total / (sent["end"] - sent["start"]),
        "cpu_ms_per_msg": cpu / total * 1000,
        "db_cpu_ms_per_msg": 0.0,
        "load_cpu_ms_per_msg": sent["cpu_s"] / total * 1000,
        "intake_p50_ms": pct(lat, 50) * 1000,
        "intake_p99_ms": pct(lat, 99) * 1000,
    }


async def pg_database() -> str | None:
    import asyncpg

    name = f"bench_email_{uuid.uuid4().hex[:10]}"
    try:
        conn = await asyncpg.connect(timeout=5, **PG)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"PostgreSQL not reachable ({exc}): skipped")
        return None
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def pg_drop(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(timeout=5, **PG)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="300 messages per run (< 1 minute)")
    ap.add_argument("--messages", type=int, default=None)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    total = args.messages or (300 if args.quick else 2000)
    tmp = Path(tempfile.mkdtemp(prefix="bench-email-"))
    rows: dict[str, dict[str, Any]] = {}
    try:
        rows["raw aiosmtpd file sink (peer)"] = await run_sink(tmp / "sink", total, args.clients)
        rows["email channel, SQLite"] = await run_channel(
            f"sqlite+aiosqlite:///{tmp / 'crm.sqlite3'}", tmp / "sqlite", total, args.clients
        )
        name = await pg_database()
        if name is not None:
            try:
                url = f"postgresql+asyncpg://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
                rows["email channel, PostgreSQL"] = await run_channel(url, tmp / "pg", total, args.clients)
            finally:
                await pg_drop(name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    peer = rows["raw aiosmtpd file sink (peer)"]["msgs_per_s"]
    print(f"\n{total} messages, {args.clients} SMTP connections, 1 MB attachment in 10 %\n")
    head = f"{'run':34} {'msg/s':>8} {'vs peer':>8} {'250 p50':>9} {'250 p99':>9} {'→routed p99':>12}"
    print(f"{head} {'lost':>5}   CPU ms/msg: server + database + load = total → 2-core bound")
    for name, r in rows.items():
        ratio = r["msgs_per_s"] / peer if peer else float("nan")
        cpu = r["cpu_ms_per_msg"] + r["db_cpu_ms_per_msg"] + r["load_cpu_ms_per_msg"]
        r["cpu_bound_msgs_per_s"] = 2 * 1000 / cpu  # every core busy with nothing else
        print(
            f"{name:34} {r['msgs_per_s']:8.1f} {ratio:8.2f} {r['intake_p50_ms']:7.1f}ms "
            f"{r['intake_p99_ms']:7.1f}ms {r.get('routed_p99_ms', float('nan')):10.1f}ms {r.get('lost', 0):5}"
            f"   {r['cpu_ms_per_msg']:.1f} + {r['db_cpu_ms_per_msg']:.1f} + {r['load_cpu_ms_per_msg']:.1f}"
            f" = {cpu:.1f} → {r['cpu_bound_msgs_per_s']:.0f}/s"
        )
    print("server: this process (listener, processing, routing, CRM writer); database: the PostgreSQL")
    print("backends of the bench database; load: the SMTP load generator (builds the messages)")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "quick": args.quick,
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                "messages": total,
                "clients": args.clients,
                "attachment_bytes": ATTACHMENT_BYTES,
                "attachment_share": 0.1,
                "runs": rows,
                "ratio_to_peer": {k: v["msgs_per_s"] / peer for k, v in rows.items()},
            },
            indent=2,
            default=str,
        )
    )
    print(f"\nwritten {RESULTS}")


if __name__ == "__main__":
    asyncio.run(main())
