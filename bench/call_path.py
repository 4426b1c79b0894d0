"""The whole call path under load: SIPp callers → IVR (DTMF) → queue → SIPp agents + screen-pop.

What runs (all on 127.0.0.1):

- the server: a ``Center`` built from a bench copy of ``config/`` (M agents ``2001..`` with
  HA1 hashes for realm callcenter.local and argon2id desktop hashes, skills
  {english: 5}, voice capacity 1; queue ``general`` with ``wrap_up_s: 0``; every service
  open around the clock), in this process's event loop, with ``gc.freeze()`` after start
  as ``callcenter serve`` does;
- agent phones: two SIPp processes, each first REGISTERing its half of the agents with
  digest auth from its own port (``bench/call_path/register_agents.xml``), then answering
  on that port at once (``agent_uas.xml``), logging the epoch time each INVITE arrived;
- agent desktops: a child process (``bench/harness.py --desktop-worker``) that logs every agent in
  (POST /api/login), opens ``/ws`` (token as the subprotocol), sets the agent available and prints every
  offer it receives with the wall-clock receive time;
- callers: SIPp (``caller_uac.xml``) dialling the main line 5000 from the demo customer's
  number, pressing 4 (operator → queue ``general``) as RFC 4733 events from a capture made
  here at run time, staying on the line ``--hold-ms`` and hanging up.

Figures per rate step (calls placed at R calls/s for a bounded time):

- calls completed: the caller's SIPp call succeeded AND the contact reached an agent
  (ContactConnected on the bus) and was not abandoned; a step passes with zero failures;
- screen-pop latency = desktop receive time − the offer's ``sent_at`` (the server stamps it
  when it builds the offer, just before writing it to the WebSocket; it then waits for the
  write and only then sends the agent-leg INVITE). Both are ``time.time()`` on the same
  machine, in two processes;
- pop lead = INVITE arrival at the agent's SIPp − desktop receive time (positive: the
  desktop showed the caller before the phone rang), and offer → ring = INVITE arrival −
  ``sent_at``;
- arrival → queue: ContactArrived → ContactQueued (answer, greeting cut by the digit, menu);
- queue → answer: ContactQueued → ContactConnected, event timestamps from ``center.bus``
  (split at AgentOffered: its publish hands the pop to the desktop's socket; the INVITE
  follows once the pop is written);
- CPU (per cent of one core, over the step) of the server process, the SIPps and the
  desktop worker, and the 1-minute load average (the machine's 2 cores are shared).

    python bench/call_path.py            # 5, 10, 20, 50 calls/s, 20 s each
    python bench/call_path.py --quick    # 10, 50 calls/s, 6 s each: under a minute

Results: bench/results/call_path.json (quick: call_path_quick.json; with --crm-url: *_pg.json).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import json
import logging
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# bench/ is not a package: make loopback.py importable however this file is loaded
# (as a script, or by path from the tests)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import AGENT_PHONES, CALLER_ANI, AgentPhones, Desktops, caller_scenario
from loopback import free_udp_port, last_stat, limits, proc_cpu, sipp, stats

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
REALM = "callcenter.local"
FIRST_AGENT = 2001
TARGET_P99_MS = 50.0

log = logging.getLogger("bench.call_path")


# ---------------------------------------------------------------------------- helpers


def pct(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (None for no data)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def summary(values: Sequence[float]) -> dict[str, float | None]:
    """p50, p99 and max of durations in seconds, in milliseconds."""
    return {"p50": ms(pct(values, 50)), "p99": ms(pct(values, 99)), "max": ms(max(values, default=None))}


# ---------------------------------------------------------------------------- inputs


def make_config_dir(tmp: Path, agents: int, sip_port: int, rtp_base: int, crm_url: str | None) -> Path:
    """The demo config with private ports/files, M bench agents and the bench's queue edits."""
    import yaml
    from argon2 import PasswordHasher

    d = tmp / "config"
    shutil.copytree(ROOT / "config", d)
    server = yaml.safe_load((d / "server.yaml").read_text())
    server["sip"]["listen"] = [{"transport": "udp", "host": "127.0.0.1", "port": sip_port},
                               {"transport": "tcp", "host": "127.0.0.1", "port": sip_port}]  # fmt: skip
    server["rtp"].update(port_min=rtp_base, port_max=rtp_base + 1999)
    server["http"]["port"] = 0
    server["data_dir"] = str(tmp / "var")
    server["database"]["url"] = crm_url or f"sqlite+aiosqlite:///{tmp}/crm.db"
    server["crm"]["files_dir"] = str(tmp / "files")
    # Same prompts as the tests: they render once per machine, not once per bench run.
    server["speech"]["tts_cache_dir"] = str(ROOT / "var" / "test-tts-cache")
    server["logging"].update(level="WARNING", format="text")
    (d / "server.yaml").write_text(yaml.safe_dump(server))

    services = yaml.safe_load((d / "services.yaml").read_text())
    for svc in services["services"].values():
        svc["hours"] = None  # the bench runs at any hour
        svc["holidays"] = []
    (d / "services.yaml").write_text(yaml.safe_dump(services))

    queues = yaml.safe_load((d / "queues.yaml").read_text())
    queues["queues"]["general"]["wrap_up_s"] = 0  # agents come back at once
    (d / "queues.yaml").write_text(yaml.safe_dump(queues))

    # argon2id with small cost parameters: M logins must not take minutes of the 2 cores;
    # the server verifies whatever parameters the stored hash names.
    hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    docs = yaml.safe_load((d / "agents.yaml").read_text())
    docs["agents"] = []
    for n in range(agents):
        user = str(FIRST_AGENT + n)
        secret = f"bench-{user}"
        a1 = f"{user}:{REALM}:{secret}".encode()
        docs["agents"].append({
            "id": user,
            "name": f"Bench Agent {user}",
            "skills": {"english": 5},
            "capacity": {"voice": 1},
            "sip": {"username": user, "ha1_md5": hashlib.md5(a1).hexdigest(),
                    "ha1_sha256": hashlib.sha256(a1).hexdigest()},
            "desktop": {"password_hash": hasher.hash(secret)},
        })  # fmt: skip
    (d / "agents.yaml").write_text(yaml.safe_dump(docs, sort_keys=False))
    return d


# ---------------------------------------------------------------------------- the run


@dataclass
class Contact:
    arrived: float | None = None
    queued: float | None = None
    offered: float | None = None
    connected: float | None = None
    ended: float | None = None
    abandoned: bool = False
    queue: str | None = None


@dataclass
class Probe:
    """Bus subscriber: per-contact timestamps of the events the figures need."""

    contacts: dict[str, Contact] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_event(self, e: Any) -> None:
        c = self.contacts.setdefault(e.contact_id, Contact())
        kind = e.type
        if kind == "ContactArrived":
            c.arrived = e.ts
        elif kind == "ContactQueued" and c.queued is None:
            c.queued, c.queue = e.ts, e.queue
        elif kind == "AgentOffered" and c.offered is None:
            c.offered = e.ts
        elif kind == "ContactConnected" and c.connected is None:
            c.connected = e.ts
        elif kind == "ContactAbandoned":
            c.abandoned = True
        elif kind == "ContactEnded":
            c.ended = e.ts
        self.changed.set()


class ErrorCounter(logging.Handler):
    """Counts ERROR records the server logs during the run (a clean run has none)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.first: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.first) < 5:
            self.first.append(f"{record.name}: {record.getMessage()}"[:300])


def read_invites(paths: list[Path]) -> dict[str, float]:
    """Interaction id → epoch time the agent SIPp processed the INVITE (from its <log>)."""
    seen: dict[str, float] = {}
    for p in paths:
        if not p.exists():
            continue
        for line in p.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[0] == "INVITE":
                with contextlib.suppress(ValueError):
                    seen.setdefault(parts[1], int(float(parts[2])) + int(float(parts[3])) / 1e6)
    return seen


async def bench(
    rates: list[int], step_s: float, hold_ms: int, quick: bool, crm_url: str | None = None
) -> dict[str, Any]:
    from callcenter.center import Center
    from callcenter.config import load_config
    from callcenter.server import settle_gc

    if shutil.which("sipp") is None:
        raise SystemExit("sipp is required (apt-get install sip-tester)")
    hold_s = hold_ms / 1000
    # Each call holds an agent for about hold_s (+ ring and IVR slack): size for the top rate.
    agents = max(10, math.ceil(max(rates) * (hold_s + 0.6) * 1.3))
    tmp = Path(tempfile.mkdtemp(prefix="bench-call-path-"))
    sip_port = free_udp_port(tcp=True)  # the server listens on UDP and TCP
    rtp_base = random.randrange(50000, 57000) & ~1
    cfg = load_config(make_config_dir(tmp, agents, sip_port, rtp_base, crm_url))
    center = Center(cfg, flows_dir=ROOT / "ivr_flows")
    errors = ErrorCounter()
    logging.getLogger().addHandler(errors)
    t0 = time.monotonic()
    await center.start()
    probe = Probe()
    center.bus.subscribe("bench-probe", probe.on_event)
    http = f"http://127.0.0.1:{center.http_port}"
    target = f"127.0.0.1:{sip_port}"
    caller_xml = caller_scenario(tmp)
    phones = AgentPhones()
    offers: dict[str, dict[str, Any]] = {}
    desks = Desktops(on_offer=lambda o: offers.__setitem__(o["cid"], o))
    steps: list[dict[str, Any]] = []
    try:
        ids = [str(FIRST_AGENT + n) for n in range(agents)]
        total_calls = sum(math.ceil(r * step_s) for r in rates)
        await phones.start(center, ids, target, tmp, max_calls=total_calls * 2,
                           run_s=len(rates) * (step_s + 60) + 60)  # fmt: skip
        await desks.start(http, ids)
        available = sum(1 for a in ids if str(center.router.agent_state(a)) == "available")
        setup_s = time.monotonic() - t0
        settle_gc()  # as `callcenter serve` does after start-up

        def crm_backlog() -> int:  # events not yet written to the CRM store
            return int(center.health().get("crm_backlog") or 0)

        for rate in rates:
            step = await run_step(rate, step_s, hold_ms, target, caller_xml, tmp, probe, offers,
                                  phones.procs, phones.logs, desks.proc, crm_backlog)  # fmt: skip
            # Every agent should be back to available once the step's calls are over.
            states: dict[str, int] = {}
            for a in ids:
                agent = center.router.agents[a]
                key = str(center.router.agent_state(a)) + (f" ({agent.reason})" if agent.reason else "")
                states[key] = states.get(key, 0) + 1
            step["agent_states_after"] = states
            step["active_calls_after"] = len(center.ua.calls)
            steps.append(step)
            await asyncio.sleep(1.0)  # let the last BYEs and bus events settle between steps
    finally:
        await desks.stop()
        await phones.stop()
        await center.stop()
        logging.getLogger().removeHandler(errors)
        gc.unfreeze()
    passed = [s["rate"] for s in steps if s["failures"] == 0]
    top = max(steps, key=lambda s: s["rate"]) if steps else None
    result = {
        "bench": "call_path",
        "quick": quick,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "note": "2 cores shared with other work; "
                    "server, SIPp callers/agents and the desktop worker all on this machine"},
        "config": {"agents": agents, "available_at_start": available, "step_s": step_s,
                   "hold_ms": hold_ms, "agent_phones": AGENT_PHONES, "setup_s": round(setup_s, 1),
                   "flow": "main (DNIS 5000) → DTMF 4 → queue general", "ani": CALLER_ANI,
                   "crm": (crm_url or "sqlite (temp file)").split("://")[0]},
        "steps": steps,
        "highest_rate_zero_failures": max(passed) if passed else None,
        "target": {"screen_pop_p99_ms": TARGET_P99_MS, "at_rate": 50,
                   "met": None if not top or top["rate"] < 50 or top["screen_pop_ms"]["p99"] is None
                   else top["screen_pop_ms"]["p99"] < TARGET_P99_MS},
        "server_errors_logged": errors.count,
        "server_error_samples": errors.first,
    }  # fmt: skip
    shutil.rmtree(tmp, ignore_errors=True)
    return result


async def run_step(
    rate: int,
    step_s: float,
    hold_ms: int,
    target: str,
    caller_xml: Path,
    tmp: Path,
    probe: Probe,
    offers: dict[str, dict[str, Any]],
    uas_procs: list[asyncio.subprocess.Process],
    uas_logs: list[Path],
    desk: asyncio.subprocess.Process,
    crm_backlog: Callable[[], int],
) -> dict[str, Any]:
    calls = math.ceil(rate * step_s)
    before = set(probe.contacts)
    stat = tmp / f"caller_{rate}.csv"
    limit = step_s + hold_ms / 1000 + 40
    load_before = os.getloadavg()[0]
    cpu0 = time.process_time()
    others0 = sum(proc_cpu(p.pid) for p in uas_procs)
    desk0 = proc_cpu(desk.pid)
    wall0 = time.monotonic()
    args = [*sipp(loops=1000), target, "-sf", str(caller_xml), "-s", "5000",
            "-r", str(rate), "-m", str(calls), "-l", str(calls), "-d", str(hold_ms),
            *limits(limit), *stats(stat, every_s=1), "-recv_timeout", "20000",
            "-trace_err", "-error_file", str(tmp / f"caller_{rate}_errors.log")]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(*args, cwd=str(tmp), stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE)  # fmt: skip
    sipp_cpu = 0.0
    backlog_max = 0
    try:
        # sample the caller SIPp's CPU just before it exits (its /proc entry goes with it)
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(proc.wait()), 0.5)
                break
            except TimeoutError:
                sipp_cpu = proc_cpu(proc.pid) or sipp_cpu
                backlog_max = max(backlog_max, crm_backlog())
                if time.monotonic() - wall0 > limit + 10:
                    proc.kill()
    finally:
        out, err = await proc.communicate()
    rc = proc.returncode
    # wait (bounded) until every contact of this step has ended on the server
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        mine = [c for cid, c in probe.contacts.items() if cid not in before and cid]
        if len(mine) >= calls and all(c.ended is not None for c in mine):
            break
        probe.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(probe.changed.wait(), 1.0)
    wall = time.monotonic() - wall0
    cpu = time.process_time() - cpu0
    others = sum(proc_cpu(p.pid) for p in uas_procs) - others0
    desk_cpu = proc_cpu(desk.pid) - desk0
    # the desktop worker prints offers as they come: give the last lines a moment to arrive
    mine_ids = [cid for cid in probe.contacts if cid not in before and cid]
    wait_until = time.monotonic() + 3
    while time.monotonic() < wait_until and any(
        probe.contacts[c].connected is not None and c not in offers for c in mine_ids
    ):
        await asyncio.sleep(0.05)
    invites = read_invites(uas_logs)

    st = last_stat(stat)
    ok_calls = int(st.get("SuccessfulCall(C)", 0) or 0)
    failed_calls = int(st.get("FailedCall(C)", 0) or 0)
    mine = {cid: probe.contacts[cid] for cid in mine_ids}
    connected = [c for c in mine.values() if c.connected is not None and not c.abandoned]
    abandoned = sum(1 for c in mine.values() if c.abandoned)
    not_general = sum(1 for c in mine.values() if c.queue not in (None, "general"))
    never_queued = sum(1 for c in mine.values() if c.queued is None)
    pops = [o["recv_at"] - o["sent_at"] for cid, o in offers.items() if cid in mine]
    leads = [invites[cid] - o["recv_at"] for cid, o in offers.items() if cid in mine and cid in invites]
    ring = [invites[cid] - o["sent_at"] for cid, o in offers.items() if cid in mine and cid in invites]
    ivr = [c.queued - c.arrived for c in mine.values() if c.queued is not None and c.arrived is not None]
    slow = sorted(((o["recv_at"] - o["sent_at"], invites.get(cid, math.nan) - o["sent_at"])
                   for cid, o in offers.items() if cid in mine), reverse=True)[:5]
    q2o = [c.offered - c.queued for c in mine.values() if c.queued is not None and c.offered is not None]
    o2a = [c.connected - c.offered for c in connected if c.offered is not None and c.connected is not None]
    q2a = [c.connected - c.queued for c in connected if c.queued is not None and c.connected is not None]
    # A call completes when SIPp saw it through AND the server connected it to an agent.
    completed = min(ok_calls, len(connected))
    failures = calls - completed
    return {
        "rate": rate,
        "calls": calls,
        "sipp_rc": rc,
        "sipp_successful": ok_calls,
        "sipp_failed": failed_calls,
        "contacts_seen": len(mine),
        "never_queued": never_queued,
        "other_queue": not_general,
        "connected": len(connected),
        "completed": completed,
        "abandoned": abandoned,
        "failures": failures,
        "offers_received": len(pops),
        "connected_without_offer_seen": sum(1 for cid, c in mine.items()
                                            if c.connected is not None and cid not in offers),
        "invites_logged": len(ring),
        "screen_pop_ms": summary(pops),
        "pop_before_ring": {"share": round(sum(1 for x in leads if x > 0) / len(leads), 4) if leads else None,
                            "lead_ms_p50": ms(pct(leads, 50)), "lead_ms_min": ms(min(leads, default=None))},
        "screen_pop_over_ms": {str(t): sum(1 for x in pops if x > t / 1000) for t in (5, 10, 20, 40)},
        "slowest_pops_ms": [{"pop": ms(p), "offer_to_ring": ms(r) if r == r else None} for p, r in slow],
        "offer_to_ring_ms": summary(ring),
        "arrival_to_queue_ms": summary(ivr),
        "queue_to_answer_ms": summary(q2a),
        "queue_to_offer_ms": summary(q2o),
        "offer_to_answer_ms": summary(o2a),
        "crm_backlog": {"max_sampled": backlog_max, "after": crm_backlog()},
        "wall_s": round(wall, 1),
        "cpu_pct": {"server": round(100 * cpu / wall, 1),
                    "sipp_caller": round(100 * sipp_cpu / wall, 1),
                    "sipp_agents": round(100 * others / wall, 1),
                    "desktops": round(100 * desk_cpu / wall, 1)},
        "loadavg_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "sipp_tail": (err or out).decode(errors="replace")[-400:] if failures else "",
    }  # fmt: skip


def print_table(result: dict[str, Any]) -> None:
    head = (f"{'rate/s':>6} {'calls':>6} {'ok':>5} {'fail':>5} {'pop p50':>8} {'pop p99':>8} "
            f"{'pop<ring':>8} {'q→ans p50':>9} {'q→ans p99':>9} {'cpu srv%':>8} {'sipp%':>6} "
            f"{'desk%':>6} {'load':>5}")  # fmt: skip
    print(head)
    print("-" * len(head))

    def f(v: Any) -> str:
        return "-" if v is None else f"{v:.1f}"

    for s in result["steps"]:
        c = s["cpu_pct"]
        share = s["pop_before_ring"]["share"]
        print(f"{s['rate']:>6} {s['calls']:>6} {s['completed']:>5} {s['failures']:>5} "
              f"{f(s['screen_pop_ms']['p50']):>8} {f(s['screen_pop_ms']['p99']):>8} "
              f"{'-' if share is None else f'{share:.0%}':>8} "
              f"{f(s['queue_to_answer_ms']['p50']):>9} {f(s['queue_to_answer_ms']['p99']):>9} "
              f"{c['server']:>8.0f} {c['sipp_caller'] + c['sipp_agents']:>6.0f} {c['desktops']:>6.0f} "
              f"{s['loadavg_1m']['after']:>5.2f}")  # fmt: skip
    cfg = result["config"]
    print(f"\nagents {cfg['agents']} (available {cfg['available_at_start']}), step {cfg['step_s']} s, "
          f"hold {cfg['hold_ms']} ms; times in ms; cpu in % of one core; 2 shared cores.")  # fmt: skip
    print(f"highest rate with zero failures: {result['highest_rate_zero_failures']} calls/s; "
          f"screen-pop p99 < {TARGET_P99_MS:.0f} ms at 50 calls/s: "
          f"{ {True: 'met', False: 'MISSED', None: 'not measured'}[result['target']['met']]}; "
          f"server errors logged: {result['server_errors_logged']}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10 and 50 calls/s, 6 s each (under a minute)")
    ap.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")], default=None,
                    help="comma-separated calls/s steps (default 5,10,20,50)")  # fmt: skip
    ap.add_argument("--step-s", type=float, default=None, help="seconds of new calls per step")
    ap.add_argument("--hold-ms", type=int, default=2000, help="caller stays on the line after the digit")
    ap.add_argument("--crm-url", default=None,
                    help="CRM database URL (default: a temp SQLite file), e.g. "
                    "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_call_path")  # fmt: skip
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    rates = args.rates or ([10, 50] if args.quick else [5, 10, 20, 50])
    step_s = args.step_s or (6.0 if args.quick else 20.0)
    result = asyncio.run(bench(rates, step_s, args.hold_ms, args.quick, args.crm_url))
    print_table(result)
    RESULTS.mkdir(exist_ok=True)
    name = "call_path" + ("_quick" if args.quick else "") + ("_pg" if args.crm_url else "")
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if result["highest_rate_zero_failures"] is not None else 1


if __name__ == "__main__":
    sys.exit(main())
