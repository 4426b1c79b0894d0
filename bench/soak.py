"""Soak and faults: SIPp callers through the IVR to SIPp agents for a long time at half the
measured establishment rate, while things break.

What runs (all on 127.0.0.1, the pieces of bench/call_path.py via bench/harness.py): the
server (a ``Center`` in this process, built from the demo config with ``rtp.workers: 2``
and one webhook sink), two SIPp agent phones, a desktop worker process logging every agent
in, one SIPp caller process dialling the main line from the demo customer's number and
pressing 4 (→ queue general), staying ``--hold-ms`` and hanging up.

Faults, at fixed points of the run:

- webhook sink down: the sink (an HTTP server in this process) answers 503 for a window
  (5 minutes; quick: 20 s). The CRM outbox must retry and deliver everything after it:
  at the end every ended interaction record in the store must have reached the sink.
- media worker SIGKILL: one of the two media worker processes is killed. Its calls lose
  media (workers are not restarted; the pool stops giving the dead worker calls); calls on
  the other worker must be untouched. Failed calls are counted per worker.
- Redis restart: not done — the server runs the in-memory router and bus (Redis is only a
  routing-library store and a registrar binding store, not wired into ``callcenter serve``).

Figures: calls placed/connected/failed (failed = the contact never reached an agent),
per media worker; RSS, open fds and asyncio tasks of the server process from /metrics
(idle before the calls, under load after warm-up, at the end of the load, idle after,
maximum); what reached the sink against the store; server ERROR lines.

The server runs in this process, so RSS and fds include the bench's own small parts
(probe counters, the sink); the probe keeps only contacts in flight, so it does not grow.

    python bench/soak.py --quick          # 60 s, sink down 10-30 s, worker killed at 40 s
    python bench/soak.py                  # 30 minutes, sink down 5-10 min, worker killed at 15 min
    python bench/soak.py --rate 20 --duration 600

Results: bench/results/soak.json (quick: soak_quick.json).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import glob
import json
import logging
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from call_path import FIRST_AGENT, ErrorCounter, make_config_dir
from harness import AgentPhones, Desktops, caller_scenario
from loopback import free_udp_port, last_stat, limits, sipp, stats
from sqlalchemy import func, select

from crm_bridge.admin import outbox_stats
from crm_bridge.schema import interactions

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
SINK_SECRET = "soak-secret"

log = logging.getLogger("bench.soak")


def baseline_rate() -> tuple[float, str]:
    """Half the highest zero-failure rate of the newest call_path baseline."""
    files = sorted(glob.glob(str(HERE / "baselines" / "call_path-*.json")))
    if not files:
        raise SystemExit("no bench/baselines/call_path-*.json: give --rate")
    top = json.loads(Path(files[-1]).read_text())["highest_rate_zero_failures"]
    return top / 2, f"half of {top} calls/s in {Path(files[-1]).name}"


# ---------------------------------------------------------------------------- the sink


@dataclass
class Sink:
    """A webhook receiver (HTTP/1.1 with keep-alive, just enough for httpx) that can be
    made to fail. Keeps the id of every record it accepted with status ``ended``."""

    failing: bool = False
    accepted: int = 0
    refused: int = 0
    ended_ids: set[str] = field(default_factory=set)
    server: asyncio.Server | None = None
    port: int = 0

    async def start(self) -> None:
        self.port = free_udp_port(tcp=True)
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                if self.failing:
                    self.refused += 1
                    writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
                else:
                    self.accepted += 1
                    record = (json.loads(body) or {}).get("record") or {}
                    if record.get("status") == "ended":
                        self.ended_ids.add(record["id"])
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        writer.close()


# ---------------------------------------------------------------------------- the probe


@dataclass
class Probe:
    """Bus subscriber: per media worker, contacts arrived / connected / failed. Keeps only
    contacts in flight (a 30-minute run sees tens of thousands)."""

    center: Any
    live: dict[str, list[Any]] = field(default_factory=dict)  # cid → [worker, connected]
    arrived: Counter[str] = field(default_factory=Counter)
    connected: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    failed_sample: list[dict[str, Any]] = field(default_factory=list)
    failed_by_minute: Counter[int] = field(default_factory=Counter)  # minute of the run → failures
    t0: float = field(default_factory=time.time)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def worker_of(self, cid: str) -> str:
        legs = self.center.voice.legs.get(cid) if self.center.voice else None
        worker = getattr(getattr(getattr(legs, "call", None), "media", None), "worker", None)
        for i, w in enumerate(getattr(self.center.media, "workers", ())):
            if w is worker:
                return str(i)
        return "?"

    def on_event(self, e: Any) -> None:
        kind, cid = e.type, e.contact_id
        if kind == "ContactArrived":
            w = self.worker_of(cid)
            self.live[cid] = [w, False]
            self.arrived[w] += 1
        elif kind == "ContactConnected" and cid in self.live:
            self.live[cid][1] = True
        elif kind == "ContactEnded" and cid in self.live:
            w, ok = self.live.pop(cid)
            (self.connected if ok else self.failed)[w] += 1
            if not ok:
                self.failed_by_minute[int((e.ts - self.t0) // 60)] += 1
            if not ok and len(self.failed_sample) < 10:
                self.failed_sample.append({"contact": cid, "worker": w, "ts": round(e.ts, 3)})
        self.changed.set()


# ---------------------------------------------------------------------------- sampling


def task_kinds() -> Counter[str]:
    """Live asyncio tasks by coroutine name: what an idle-after vs idle-before growth is made of."""
    return Counter(getattr(t.get_coro(), "__qualname__", "?") for t in asyncio.all_tasks())


def fd_kinds() -> Counter[str]:
    """This process's open fds by kind (socket, pipe, a file's suffix…)."""
    kinds: Counter[str] = Counter()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            kinds[target.split(":")[0] if ":" in target else Path(target).suffix or target] += 1
    return kinds


def scrape(text: str) -> dict[str, float]:
    wanted = {"process_resident_memory_bytes": "rss_mb", "process_open_fds": "fds",
              "callcenter_asyncio_tasks": "tasks", "callcenter_active_calls": "active_calls"}  # fmt: skip
    out: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            v = float(value)
            out[wanted[name]] = round(v / 2**20, 1) if name.endswith("bytes") else v
    return out


async def sample(http: Any, t0: float, center: Any) -> dict[str, float]:
    r = await http.get("/metrics")
    s = scrape(r.text)
    s["t"] = round(time.monotonic() - t0, 1)
    s["py_objects"] = len(gc.get_objects())  # where RSS growth would come from (tens of ms)
    s["load_1m"] = round(os.getloadavg()[0], 2)  # the 2 cores are shared: failures follow load
    s["crm_backlog"] = int(center.health().get("crm_backlog") or 0)
    return s


# ---------------------------------------------------------------------------- the run


@dataclass
class Plan:
    duration_s: float
    sink_down_at: float
    sink_down_s: float
    kill_worker_at: float
    sample_s: float
    warmup_s: float

    @classmethod
    def of(cls, duration_s: float) -> Plan:
        if duration_s >= 1200:  # the full run: 5 minutes of sink outage, then a worker killed
            return cls(duration_s, 300, 300, duration_s / 2, 30, 120)
        return cls(duration_s, duration_s / 6, duration_s / 3, duration_s * 2 / 3, 5, duration_s / 6)


async def drain(center: Any, sink: Sink, url: str, timeout_s: float) -> dict[str, Any]:
    """Wait (bounded) until the CRM has written every event and the outbox has nothing
    pending; then compare the store's ended records with what the sink holds."""

    deadline = time.monotonic() + timeout_s
    box: dict[str, Any] = {}
    # The last contacts' events may still be on the bus: the CRM backlog counts only what
    # reached it, so without this a record ended a moment ago reads as open.
    await center.bus.drain()
    await center.crm_events.flush()
    while time.monotonic() < deadline:
        box = await outbox_stats(url)
        pending = sum(v.get("pending", 0) for k, v in box.items() if k != "_outbox")
        unfanned = box.get("_outbox", {}).get("unfanned", 0)
        if int(center.health().get("crm_backlog") or 0) == 0 and pending == 0 and unfanned == 0:
            break
        await asyncio.sleep(1.0)
    async with center.crm.engine.connect() as conn:
        rows = (await conn.execute(select(interactions.c.id, interactions.c.status))).all()
        total = (await conn.execute(select(func.count()).select_from(interactions))).scalar_one()
    ended = {r.id for r in rows if r.status == "ended"}
    open_ids = sorted(r.id for r in rows if r.status != "ended")[:5]
    return {
        "open_records": {cid: [e["type"] for e in await center.crm.timeline(cid)][-6:] for cid in open_ids},
        "store_interactions": total,
        "store_ended": len(ended),
        "store_open": total - len(ended),
        "sink_ended_records": len(sink.ended_ids & ended),
        "ended_not_at_sink": len(ended - sink.ended_ids),
        "outbox": box,
        "sink_posts_accepted": sink.accepted,
        "sink_posts_refused": sink.refused,
        "drain_s_left": round(max(0.0, deadline - time.monotonic()), 1),
    }


async def soak(rate: float, rate_note: str, plan: Plan, hold_ms: int, quick: bool) -> dict[str, Any]:
    import httpx
    import yaml

    from callcenter.center import Center
    from callcenter.config import load_config
    from callcenter.server import settle_gc

    if shutil.which("sipp") is None:
        raise SystemExit("sipp is required (apt-get install sip-tester)")
    hold_s = hold_ms / 1000
    agents = max(10, math.ceil(rate * (hold_s + 0.6) * 1.3))
    calls = math.ceil(rate * plan.duration_s)
    tmp = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    sink = Sink()
    await sink.start()
    sip_port = free_udp_port(tcp=True)
    rtp_base = random.randrange(50000, 57000) & ~1
    cfg_dir = make_config_dir(tmp, agents, sip_port, rtp_base, None)
    server = yaml.safe_load((cfg_dir / "server.yaml").read_text())
    server["rtp"]["workers"] = 2
    server["crm"]["webhooks"] = [{"name": "soak", "url": f"http://127.0.0.1:{sink.port}/hook",
                                  "secret": SINK_SECRET}]  # the default retry policy  # fmt: skip
    (cfg_dir / "server.yaml").write_text(yaml.safe_dump(server))
    db_url = server["database"]["url"]
    center = Center(load_config(cfg_dir), flows_dir=ROOT / "ivr_flows")
    errors = ErrorCounter()
    logging.getLogger().addHandler(errors)
    await center.start()
    probe = Probe(center)
    center.bus.subscribe("soak-probe", probe.on_event)
    target = f"127.0.0.1:{sip_port}"
    phones = AgentPhones()
    offers = Counter[str]()
    desks = Desktops(on_offer=lambda o: offers.update(["offers"]))
    samples: list[dict[str, float]] = []
    faults: dict[str, Any] = {"redis_restart": "not done: the server uses the in-memory router "
                              "and bus; no Redis store is in use"}  # fmt: skip
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{center.http_port}", timeout=30)
    t0 = time.monotonic()
    try:
        ids = [str(FIRST_AGENT + n) for n in range(agents)]
        await phones.start(center, ids, target, tmp, max_calls=calls * 2, run_s=plan.duration_s + 300)
        await desks.start(f"http://127.0.0.1:{center.http_port}", ids)
        settle_gc()
        idle_before = await sample(http, t0, center)
        tasks_before, fds_before = task_kinds(), fd_kinds()
        stat = tmp / "caller.csv"
        caller = await asyncio.create_subprocess_exec(
            *sipp(loops=1000), target, "-sf", str(caller_scenario(tmp)), "-s", "5000",
            "-r", str(rate), "-rp", "1000", "-m", str(calls), "-l", str(max(50, int(rate * 20))),
            "-d", str(hold_ms), *limits(plan.duration_s + 120), *stats(stat, every_s=5),
            "-recv_timeout", "20000", "-trace_err", "-error_file", str(tmp / "caller_errors.log"),
            cwd=str(tmp), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        load0 = time.monotonic()
        probe.t0 = time.time()
        sink_down = sink_up = killed = False
        while caller.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(caller.wait(), plan.sample_s)
            now = time.monotonic() - load0
            if not sink_down and now >= plan.sink_down_at:
                sink.failing, sink_down = True, True
                faults["sink_down_at_s"] = round(now, 1)
            if sink_down and not sink_up and now >= plan.sink_down_at + plan.sink_down_s:
                sink.failing, sink_up = False, True
                faults["sink_up_at_s"] = round(now, 1)
                faults["sink_refused_posts_while_down"] = sink.refused
            if not killed and now >= plan.kill_worker_at:
                killed = True
                faults["worker_killed"] = kill_worker(center, probe, now)
            if caller.returncode is None:
                s = await sample(http, t0, center)
                s["sipp_calls"] = int(last_stat(stat).get("TotalCallCreated", 0) or 0)
                samples.append(s)
        sipp_err = (await caller.stderr.read()).decode(errors="replace") if caller.stderr else ""
        st = last_stat(stat)
        # every contact of the run ended on the server
        deadline = time.monotonic() + 60
        while probe.live and time.monotonic() < deadline:
            probe.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(probe.changed.wait(), 1.0)
        delivery = await drain(center, sink, db_url, 600 if not quick else 120)
        idle_after = await sample(http, t0, center)
        # what idle-after has more of than idle-before: tasks by coroutine, fds by kind
        grown = {"tasks": dict(task_kinds() - tasks_before), "fds": dict(fd_kinds() - fds_before)}
    finally:
        await http.aclose()
        await desks.stop()
        await phones.stop()
        await center.stop()
        await sink.stop()
        logging.getLogger().removeHandler(errors)
    result = summarize(rate, rate_note, plan, hold_ms, agents, calls, quick, st, caller.returncode,
                       sipp_err, probe, samples, idle_before, idle_after, grown, delivery, faults,
                       errors, offers["offers"])  # fmt: skip
    shutil.rmtree(tmp, ignore_errors=True)
    return result


def kill_worker(center: Any, probe: Probe, at: float) -> dict[str, Any]:
    """SIGKILL media worker 1 (the pool has no public pid: this is a bench reaching in)."""
    workers = getattr(center.media, "workers", [])
    if len(workers) < 2:
        return {"skipped": "rtp.workers < 2"}
    victim = workers[1]
    in_flight = Counter(w for w, _ok in probe.live.values())
    pid = victim._proc.pid
    os.kill(pid, signal.SIGKILL)
    return {"at_s": round(at, 1), "worker": "1", "pid": pid, "sessions_on_it": len(victim.sessions),
            "contacts_in_flight": dict(in_flight)}  # fmt: skip


def trend(samples: list[dict[str, float]], key: str, warmup_s: float) -> dict[str, float | None]:
    values = [s[key] for s in samples if key in s]
    warm = [s[key] for s in samples if key in s and s["t"] >= warmup_s + samples[0]["t"]] or values
    return {"first": values[0] if values else None, "after_warmup": warm[0] if warm else None,
            "end": values[-1] if values else None, "max": max(values, default=None)}  # fmt: skip


def summarize(rate: float, rate_note: str, plan: Plan, hold_ms: int, agents: int, calls: int, quick: bool,
              st: dict[str, str], rc: int | None, sipp_err: str, probe: Probe,
              samples: list[dict[str, float]], idle_before: dict[str, float], idle_after: dict[str, float],
              grown: dict[str, dict[str, int]], delivery: dict[str, Any], faults: dict[str, Any],
              errors: ErrorCounter, offers: int) -> dict[str, Any]:  # fmt: skip
    killed = faults.get("worker_killed", {}).get("worker")
    failed = dict(probe.failed)
    failed_elsewhere = sum(n for w, n in failed.items() if w != killed)
    placed = int(st.get("TotalCallCreated", 0) or 0)
    seen = sum(probe.arrived.values())
    return {
        "bench": "soak",
        "quick": quick,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "note": "2 cores shared with other work; server, SIPp "
                    "callers/agents and the desktop worker all on this machine"},
        "config": {"rate": rate, "rate_from": rate_note, "duration_s": plan.duration_s, "hold_ms": hold_ms,
                   "agents": agents, "media_workers": 2, "plan": plan.__dict__,
                   "flow": "main (DNIS 5000) → DTMF 4 → queue general", "crm": "sqlite (temp file)",
                   "webhook": "one sink, default retry policy"},
        "calls": {"planned": calls, "placed": placed,
                  "sipp_successful": int(st.get("SuccessfulCall(C)", 0) or 0),
                  "sipp_failed": int(st.get("FailedCall(C)", 0) or 0), "sipp_rc": rc,
                  "contacts_seen": seen, "not_seen_by_server": placed - seen,
                  "still_live_at_end": len(probe.live),
                  "arrived_per_worker": dict(probe.arrived), "connected_per_worker": dict(probe.connected),
                  "failed_per_worker": failed, "failed_not_on_killed_worker": failed_elsewhere,
                  "failed_sample": probe.failed_sample, "offers_seen_by_desktops": offers,
                  "failed_by_minute": {str(k): v for k, v in sorted(probe.failed_by_minute.items())},
                  "sipp_tail": sipp_err[-400:]},
        "resources": {"idle_before": idle_before, "idle_after": idle_after, "grown_idle": grown,
                      **{k: trend(samples, k, plan.warmup_s) for k in ("rss_mb", "fds", "tasks")}},
        "samples": samples,
        "faults": faults,
        "delivery": delivery,
        "lost": {"calls_not_seen": placed - seen,
                 "ended_records_not_delivered": delivery["ended_not_at_sink"],
                 "records_open_at_end": delivery["store_open"],
                 "contacts_vs_records": seen - delivery["store_interactions"]},
        "server_errors_logged": errors.count,
        "server_error_samples": errors.first,
    }  # fmt: skip


def print_table(r: dict[str, Any]) -> None:
    c, res, d, lost = r["calls"], r["resources"], r["delivery"], r["lost"]
    cfg = r["config"]
    print(f"soak: {cfg['rate']} calls/s ({cfg['rate_from']}) for {cfg['duration_s']:.0f} s, "
          f"{cfg['agents']} agents, 2 media workers, hold {cfg['hold_ms']} ms")  # fmt: skip
    print(f"\n{'resource':<10} {'idle before':>11} {'first':>8} {'warm':>8} {'end load':>8} {'max':>8} "
          f"{'idle after':>10}")  # fmt: skip
    for key, name in (("rss_mb", "RSS MB"), ("fds", "open fds"), ("tasks", "tasks")):
        t = res[key]
        print(f"{name:<10} {res['idle_before'].get(key, '-'):>11} {t['first']!s:>8} {t['after_warmup']!s:>8} "
              f"{t['end']!s:>8} {t['max']!s:>8} {res['idle_after'].get(key, '-'):>10}")  # fmt: skip
    print(f"idle after, more than idle before: tasks {res['grown_idle']['tasks'] or 'none'}; "
          f"fds {res['grown_idle']['fds'] or 'none'}")
    print(f"\n{'worker':<8} {'arrived':>8} {'connected':>9} {'failed':>7}")
    for w in sorted(set(c["arrived_per_worker"]) | set(c["failed_per_worker"])):
        print(f"{w:<8} {c['arrived_per_worker'].get(w, 0):>8} {c['connected_per_worker'].get(w, 0):>9} "
              f"{c['failed_per_worker'].get(w, 0):>7}")  # fmt: skip
    kill = r["faults"].get("worker_killed", {})
    print(f"\ncalls placed {c['placed']} (SIPp ok {c['sipp_successful']}, failed {c['sipp_failed']}), "
          f"seen by the server {c['contacts_seen']}; failed not on the killed worker: "
          f"{c['failed_not_on_killed_worker']}")  # fmt: skip
    print(f"worker {kill.get('worker', '-')} killed at {kill.get('at_s', '-')} s with "
          f"{kill.get('sessions_on_it', '-')} media sessions on it")  # fmt: skip
    f = r["faults"]
    print(f"sink down {f.get('sink_down_at_s', '-')}–{f.get('sink_up_at_s', '-')} s "
          f"({f.get('sink_refused_posts_while_down', 0)} posts refused); after: store {d['store_ended']} "
          f"ended records, sink has {d['sink_ended_records']}, not delivered {d['ended_not_at_sink']}, "
          f"outbox {d['outbox']}")  # fmt: skip
    print(f"redis: {f['redis_restart']}")
    print(f"lost: {lost}; server errors logged: {r['server_errors_logged']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="60 s with shortened fault windows")
    ap.add_argument("--duration", type=float, default=None, help="seconds of calls (default 1800)")
    ap.add_argument("--rate", type=float, default=None,
                    help="calls/s (default: half the call_path baseline's highest zero-failure rate)")
    ap.add_argument("--hold-ms", type=int, default=2000, help="caller stays on the line after the digit")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    rate, note = (args.rate, "--rate") if args.rate else baseline_rate()
    duration = args.duration or (60.0 if args.quick else 1800.0)
    result = asyncio.run(soak(rate, note, Plan.of(duration), args.hold_ms, args.quick))
    print_table(result)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("soak_quick.json" if args.quick else "soak.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    ok = result["calls"]["failed_not_on_killed_worker"] == 0 and not any(
        result["lost"][k] for k in ("calls_not_seen", "ended_records_not_delivered"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
