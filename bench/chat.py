"""Web chat benchmark: N concurrent customer chat sessions (WebSocket clients) with M agents
replying, at a fixed total message rate; rising N.

Per stage (one N), each side in its own process so the clients do not share the server's CPU
time slice, started in this order (each step waits, with a timeout, for the one before):

- the server: a ``Center`` from a bench copy of ``config/`` (M agents ``3001..`` with web
  capacity ceil(N/M)+1, the web channel's rate limits lifted, the CRM in a SQLite file);
- the agents: M desks (login, desk WebSocket, available), then Accept every chat offered and
  reply to every customer line through ``POST /api/chat/{id}/messages``. The customers start
  only once every desk is available: a widget asking for a person while nobody who takes
  chats is signed in is told ``offline`` and its chat stays in self-service (by design);
- the customers: N widget sessions (hello, pre-chat, "talk to a person"), each counted once
  its agent has joined; then lines at ``--rate`` per second in total for ``--duration``
  seconds, each carrying its send time.

Measured: customer → agent delivery latency (customer's send to the agent's desk socket) and
agent → customer (the reply's POST to the customer's socket), p50/p99; the chats held (the
server's count of sessions with an agent and a live socket, during the traffic); the server's
RSS and CPU. The peer is a bare Starlette WebSocket relay (customer socket → agent socket →
back, no contact core, no CRM, no routing) in the same run with the same N, M and rate: the
ceiling of the transport. The ratio is ours / peer. N rises until ours holds fewer than N.

    python bench/chat.py              # N = 500, 1000, 2500, 5000; M = 50; 100 msg/s; 20 s each
    python bench/chat.py --quick      # N = 100, 300; M = 5; 50 msg/s; 5 s each (< 1 minute)
    python bench/chat.py --quick -v   # every step of every stage on stderr

Everything runs on 127.0.0.1 on a machine of 2 cores shared with other work: the figures are
an upper bound on latency and a lower bound on capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import os
import platform
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# bench/ holds a routing.py: the repository root goes first so ``routing`` is the package.
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from loopback import free_udp_port, proc_cpu  # noqa: E402

PASSWORD = "bench-agent"


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


VERBOSE = "-v" in sys.argv[1:]  # every step of every stage on stderr


def note(*parts: Any) -> None:
    """Progress on stderr (stdout is the children's JSON channel to the orchestrator)."""
    print(f"[chat {time.strftime('%H:%M:%S')}]", *parts, file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, math.ceil(q * len(values)) - 1)] * 1000.0  # ms


# ------------------------------------------------------------------ the server under test


def bench_config(tmp: Path, n: int, m: int) -> Path:
    """A copy of config/ for the bench: private ports and files, M agents for the support queue."""
    import yaml
    from argon2 import PasswordHasher

    d = tmp / "config"
    shutil.copytree(ROOT / "config", d)
    server = yaml.safe_load((d / "server.yaml").read_text())
    sip = free_udp_port(tcp=True)
    server["sip"]["listen"] = [{"transport": "udp", "host": "127.0.0.1", "port": sip}]
    rtp = random.randrange(50000, 60000) & ~1
    server["rtp"].update(port_min=rtp, port_max=rtp + 99, workers=1)
    server["http"]["port"] = 0
    server["data_dir"] = str(tmp / "var")
    server["database"]["url"] = f"sqlite+aiosqlite:///{tmp}/crm.db"
    server["crm"]["files_dir"] = str(tmp / "files")
    server["speech"]["tts_cache_dir"] = str(ROOT / "var" / "test-tts-cache")
    server["logging"].update(level="WARNING", format="text")
    if "email" in server:
        server["email"]["enabled"] = False
    (d / "server.yaml").write_text(yaml.safe_dump(server))
    services = yaml.safe_load((d / "services.yaml").read_text())
    for svc in services["services"].values():
        svc["hours"], svc["holidays"] = None, []
    (d / "services.yaml").write_text(yaml.safe_dump(services))
    queues = yaml.safe_load((d / "queues.yaml").read_text())
    for q in queues["queues"].values():
        q.update(reservation_timeout_s=600, wrap_up_s=600, max_size=None, max_wait_s=None)
        q.pop("escalation", None)
    (d / "queues.yaml").write_text(yaml.safe_dump(queues))
    agents = yaml.safe_load((d / "agents.yaml").read_text())
    realm = server["sip"].get("realm", "callcenter.local")
    desk_hash = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    cap = math.ceil(n / m) + 1
    agents["agents"] = [
        {
            "id": str(3001 + i),
            "name": f"Agent {3001 + i}",
            "skills": {"technical": 9, "english": 10},
            "capacity": {"voice": 1, "web": cap},
            "sip": {
                "username": str(3001 + i),
                "ha1_md5": hashlib.md5(f"{3001 + i}:{realm}:{PASSWORD}".encode()).hexdigest(),
                "ha1_sha256": hashlib.sha256(f"{3001 + i}:{realm}:{PASSWORD}".encode()).hexdigest(),
            },
            "desktop": {"password_hash": desk_hash},
        }
        for i in range(m)
    ]
    (d / "agents.yaml").write_text(yaml.safe_dump(agents))
    webchat = yaml.safe_load((d / "webchat.yaml").read_text())
    webchat["limits"].update(
        messages_per_session=100_000,
        messages_per_ip=10_000_000,
        sessions_per_ip=10_000_000,
        max_sessions=max(20_000, 2 * n),
    )
    (d / "webchat.yaml").write_text(yaml.safe_dump(webchat))
    return d


async def commands() -> Any:
    """The orchestrator's commands on stdin, one a line, until it closes stdin."""
    loop = asyncio.get_running_loop()
    while cmd := await loop.run_in_executor(None, sys.stdin.readline):
        yield cmd.strip()


def answer(data: dict[str, Any]) -> None:
    """One JSON line to the orchestrator; it may be gone already (killed by its own timeout)."""
    with contextlib.suppress(BrokenPipeError):
        print(json.dumps(data), flush=True)


async def serve_ours(n: int, m: int) -> None:
    from callcenter.center import Center
    from callcenter.config import load_config
    from callcenter.server import settle_gc

    tmp = Path(tempfile.mkdtemp(prefix="bench-chat-"))
    center = Center(load_config(bench_config(tmp, n, m)), flows_dir=ROOT / "ivr_flows")
    await center.start()
    settle_gc()
    answer({"port": center.http_port, "tmp": str(tmp)})
    try:
        async for cmd in commands():
            if cmd == "count":  # the sessions held now, and those with an agent and a live socket
                sessions = list(center.webchat.sessions.values()) if center.webchat else []
                live = sum(1 for s in sessions if s.state == "connected" and s.socket is not None)
                answer({"sessions": len(sessions), "connected": live})
    finally:
        await center.stop()
        shutil.rmtree(tmp, ignore_errors=True)


async def serve_peer() -> None:
    """The ceiling: a bare Starlette WebSocket relay between customer and agent sockets."""
    import socket

    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    agents: dict[int, WebSocket] = {}
    customers: dict[int, WebSocket] = {}

    async def agent(ws: WebSocket) -> None:
        k = int(ws.path_params["k"])
        await ws.accept()
        agents[k] = ws
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                msg = json.loads(await ws.receive_text())
                target = customers.get(msg["to"])
                if target is not None:
                    await target.send_text(json.dumps({"text": msg["text"]}))

    async def customer(ws: WebSocket) -> None:
        i = int(ws.path_params["i"])
        await ws.accept()
        customers[i] = ws
        try:
            with contextlib.suppress(WebSocketDisconnect):
                while True:
                    text = await ws.receive_text()
                    target = agents.get(i % len(agents)) if agents else None
                    if target is not None:
                        await target.send_text(json.dumps({"from": i, "text": text}))
        finally:
            customers.pop(i, None)

    app = Starlette(routes=[WebSocketRoute("/a/{k}", agent), WebSocketRoute("/c/{i}", customer)])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    answer({"port": sock.getsockname()[1]})
    async for cmd in commands():
        if cmd == "count":
            answer({"sessions": len(customers), "connected": len(customers)})
    server.should_exit = True
    await task


# ------------------------------------------------------------------ agents


async def run_agents(port: int, m: int, peer: bool, deadline_s: float) -> None:
    """M desks. Answers ``{"ready": k}`` once every desk is available (or at the deadline with
    those that are): customers must not ask for a person before, or the widget is told that
    nobody is there (``offline``) and the chat stays in self-service."""
    import httpx
    import websockets

    from callcenter.web.tokens import ws_subprotocols

    latencies: list[float] = []
    accepted = replies = 0
    errors: dict[str, int] = {}
    available = 0
    all_ready = asyncio.Event()
    logins = asyncio.Semaphore(8)
    tasks: set[asyncio.Task[Any]] = set()

    def error(what: str) -> None:
        errors[what] = errors.get(what, 0) + 1

    def ready_one() -> None:
        nonlocal available
        available += 1
        if available >= m:
            all_ready.set()

    def spawn(coro: Any) -> None:
        t = asyncio.create_task(coro)
        tasks.add(t)
        t.add_done_callback(tasks.discard)

    async def peer_desk(k: int) -> None:
        nonlocal replies
        async with websockets.connect(f"ws://127.0.0.1:{port}/a/{k}", max_queue=None) as ws:
            ready_one()
            async for raw in ws:
                msg = json.loads(raw)
                latencies.append(time.time() - float(msg["text"][2:]))
                await ws.send(json.dumps({"to": msg["from"], "text": f"r={time.time()}"}))
                replies += 1

    async def desk(k: int, http: httpx.AsyncClient) -> None:
        async with logins:  # the server hashes 2 passwords at once and queues 16 (429 beyond)
            r = await http.post("/api/login", json={"username": str(3001 + k), "password": PASSWORD})
        r.raise_for_status()
        token = r.json()["token"]
        headers = {"Authorization": f"Bearer {token}"}

        async def accept(cid: str) -> None:
            nonlocal accepted
            r = await http.post(f"/api/contacts/{cid}/accept", headers=headers)
            if r.status_code == 200:
                accepted += 1
            else:
                error(f"accept {r.status_code}")

        async def reply(cid: str) -> None:
            nonlocal replies
            r = await http.post(
                f"/api/chat/{cid}/messages", json={"text": f"r={time.time()}"}, headers=headers
            )
            if r.status_code == 200:
                replies += 1
            else:
                error(f"reply {r.status_code}")

        async with websockets.connect(
            f"ws://127.0.0.1:{port}/ws", subprotocols=ws_subprotocols(token), max_queue=None
        ) as ws:
            r = await http.post("/api/agent/state", json={"state": "available"}, headers=headers)
            r.raise_for_status()
            ready_one()
            async for raw in ws:
                msg = json.loads(raw)
                if msg.get("type") == "offer" and msg["contact"]["channel"] == "chat":
                    spawn(accept(msg["contact"]["contact_id"]))
                elif (
                    msg.get("type") == "contact_message"
                    and msg["direction"] == "in"
                    and msg["text"].startswith("t=")
                ):
                    latencies.append(time.time() - float(msg["text"][2:]))
                    spawn(reply(msg["contact_id"]))

    async def guarded(coro: Any, k: int) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one desk failing is a figure, not the end of the run
            error(f"desk {type(exc).__name__}")
            note(f"agent {3001 + k}: {exc!r}")

    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits) as http:
        desks = [asyncio.create_task(guarded(peer_desk(k) if peer else desk(k, http), k)) for k in range(m)]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_ready.wait(), deadline_s)
        answer({"ready": available})
        async for cmd in commands():
            if cmd == "stop":
                break
        answer({"latencies": latencies, "replies": replies, "accepted": accepted, "errors": errors})
        for d in desks:
            d.cancel()
        await asyncio.gather(*desks, *tasks, return_exceptions=True)


# ------------------------------------------------------------------ customers


async def run_customers(
    port: int, n: int, rate: float, duration: float, peer: bool, deadline_s: float
) -> None:
    """N widget sessions. A session counts as connected when its agent has joined (the widget's
    ``agent`` message); for the peer, when its socket is open. Sessions not there by the
    deadline are counted (refused, with the server's reason, or still waiting) and left out of
    the traffic."""
    import websockets

    socks: list[Any] = [None] * n
    readers: set[asyncio.Task[None]] = set()  # referenced until done (the loop keeps weak ones)
    latencies: list[float] = []
    received = 0

    async def reader(ws: Any, joined: asyncio.Future[str]) -> None:
        nonlocal received
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                msg = json.loads(raw)
                kind, text = msg.get("type"), msg.get("text", "")
                if peer or (kind == "line" and msg.get("from") == "agent"):
                    if text.startswith("r="):
                        latencies.append(time.time() - float(text[2:]))
                        received += 1
                elif kind == "agent" and msg.get("name") and not joined.done():
                    joined.set_result("connected")
                elif kind in ("offline", "error") and not joined.done():
                    joined.set_result(f"{kind}:{msg.get('reason') or msg.get('code')}")
        if not joined.done():
            joined.set_result("closed")

    async def session(i: int) -> str:
        url = f"ws://127.0.0.1:{port}/c/{i}" if peer else f"ws://127.0.0.1:{port}/chat/ws"
        ws = await websockets.connect(url, max_queue=None, open_timeout=deadline_s)
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(reader(ws, done))
        readers.add(task)
        task.add_done_callback(readers.discard)
        if peer:
            socks[i] = ws
            return "connected"
        await ws.send(json.dumps({"type": "hello"}))
        prechat = {
            "type": "start",
            "name": f"Bench {i}",
            "email": f"bench{i}@example.com",
            "topic": "support",
        }
        await ws.send(json.dumps(prechat))
        await ws.send(json.dumps({"type": "agent"}))
        outcome = await done
        if outcome == "connected":
            socks[i] = ws
        return outcome

    sem = asyncio.Semaphore(50)  # connect in waves: a burst of 5,000 handshakes is not the test

    async def limited(i: int) -> str:
        async with sem:
            try:
                return await session(i)
            except Exception as exc:
                return f"connect:{type(exc).__name__}"

    t0 = time.monotonic()
    pending = [asyncio.create_task(limited(i)) for i in range(n)]
    done, waiting = await asyncio.wait(pending, timeout=deadline_s)
    outcomes: dict[str, int] = {}
    for t in done:
        outcomes[t.result()] = outcomes.get(t.result(), 0) + 1
    for t in waiting:
        t.cancel()
    live = [s for s in socks if s is not None]
    answer({"connected": len(live), "outcomes": outcomes, "waiting": len(waiting),
            "connect_s": round(time.monotonic() - t0, 1)})  # fmt: skip
    sent = 0
    async for cmd in commands():
        if cmd != "go":
            break
        start = time.monotonic()
        interval = 1.0 / rate
        while live and (now := time.monotonic()) - start < duration:
            due = int((now - start) / interval) + 1
            while sent < due:
                ws = random.choice(live)
                text = f"t={time.time()}"
                await ws.send(
                    text if peer else json.dumps({"type": "say", "text": text, "client_id": str(sent)})
                )
                sent += 1
            await asyncio.sleep(interval / 2)
        settle = time.monotonic() + 5
        while received < sent and time.monotonic() < settle:
            await asyncio.sleep(0.05)
        answer({"sent": sent, "latencies": latencies, "received": received})
    # The sockets stay open until the orchestrator ends this process: closing 5,000 of them one
    # by one (each a close handshake) would only add minutes.


# ------------------------------------------------------------------ the orchestration


async def child(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=2**30,
    )


async def line(proc: asyncio.subprocess.Process, timeout: float) -> dict[str, Any]:
    if VERBOSE:
        note(f"waiting for pid {proc.pid} (up to {timeout:.0f} s)")
    raw = await asyncio.wait_for(proc.stdout.readline(), timeout)  # type: ignore[union-attr]
    if VERBOSE:
        note(f"pid {proc.pid}: {raw[:80]!r}")
    if not raw:
        raise RuntimeError("a bench process ended early")
    return json.loads(raw)


def rss_mb(pid: int) -> float | None:
    try:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) / 1024
    except OSError:
        return None
    return None


async def tell(proc: asyncio.subprocess.Process, cmd: str) -> None:
    proc.stdin.write(cmd.encode() + b"\n")  # type: ignore[union-attr]
    await proc.stdin.drain()  # type: ignore[union-attr]


async def stage(kind: str, n: int, m: int, rate: float, duration: float, connect_s: float) -> dict[str, Any]:
    """One N against one server (ours or the peer): start the server, then the agents, wait
    until every desk is available, then the customers, wait until their chats have an agent
    (or the deadline), then the traffic. Each step waits for its child's answer with a
    timeout, so a stuck step ends the stage with an error row instead of hanging the run."""
    peer = kind == "peer"
    row: dict[str, Any] = {"kind": kind, "n": n, "m": m, "rate": rate, "duration_s": duration}
    flag = ["--peer"] if peer else []
    procs: list[asyncio.subprocess.Process] = []
    step = "server start"
    tmp: str | None = None
    try:
        server = await child("--role", "serve-peer" if peer else "serve", "--n", str(n), "--m", str(m))
        procs.append(server)
        started = await line(server, 120)
        port, tmp = str(started["port"]), started.get("tmp")
        step = "agents available"
        agents = await child("--role", "agents", "--port", port, "--m", str(m), "--deadline", "60", *flag)
        procs.append(agents)
        row["agents_ready"] = (await line(agents, 90))["ready"]
        if row["agents_ready"] < m:
            raise RuntimeError(f"only {row['agents_ready']} of {m} desks became available")
        step = "customers connected"
        cpu0, t0 = proc_cpu(server.pid, children=False), time.monotonic()
        args = ["--port", port, "--n", str(n), "--rate", str(rate), "--duration", str(duration)]
        customers = await child("--role", "customers", *args, "--deadline", str(connect_s), *flag)
        procs.append(customers)
        c0 = await line(customers, connect_s + 60)
        setup_s = time.monotonic() - t0
        row.update(connected=c0["connected"], outcomes=c0["outcomes"], connect_s=c0["connect_s"],
                   server_cpu_connect_pct=round((proc_cpu(server.pid, children=False) - cpu0)
                                                / setup_s * 100, 1))  # fmt: skip
        step = "traffic"
        cpu0, t0 = proc_cpu(server.pid, children=False), time.monotonic()
        await tell(customers, "go")
        c = await line(customers, duration + 60)
        cpu = (proc_cpu(server.pid, children=False) - cpu0) / (time.monotonic() - t0) * 100
        step = "figures"
        await tell(server, "count")
        held = await line(server, 30)
        await tell(agents, "stop")
        a = await line(agents, 60)
        row.update(
            held=held["connected"],
            sessions=held["sessions"],
            sent=c["sent"],
            delivered=len(a["latencies"]),
            replies_received=c["received"],
            accepted=a["accepted"],
            agent_errors=a["errors"],
            c2a_p50_ms=pct(a["latencies"], 0.5),
            c2a_p99_ms=pct(a["latencies"], 0.99),
            a2c_p50_ms=pct(c["latencies"], 0.5),
            a2c_p99_ms=pct(c["latencies"], 0.99),
            server_rss_mb=rss_mb(server.pid),
            server_cpu_pct=round(cpu, 1),
        )
    except (RuntimeError, TimeoutError, ValueError, KeyError) as exc:
        row["error"] = f"{step}: {exc!r}"
        note(f"{kind} N={n} failed at {step}: {exc!r}")
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(p.wait(), 10)
        if tmp:  # the server was killed, not stopped: its data directory is left behind
            shutil.rmtree(tmp, ignore_errors=True)
    return row


def fmt(v: Any) -> str:
    return "—" if v is None else f"{v:.1f}" if isinstance(v, float) else str(v)


TARGET_SESSIONS, TARGET_P99_MS = 5000, 50.0  # issue 13: >= 5,000 chats, p99 < 50 ms at 100 lines/s


def stage_line(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"{r['kind']:5} N={r['n']:5} FAILED {r['error']}"
    return (
        f"{r['kind']:5} N={r['n']:5} connected={r['connected']} in {r['connect_s']} s held={r['held']} "
        f"delivered={r['delivered']}/{r['sent']} "
        f"c→a p50={fmt(r['c2a_p50_ms'])} p99={fmt(r['c2a_p99_ms'])} ms "
        f"a→c p50={fmt(r['a2c_p50_ms'])} p99={fmt(r['a2c_p99_ms'])} ms "
        f"rss={fmt(r['server_rss_mb'])} MB cpu={fmt(r['server_cpu_pct'])} %"
    )


async def orchestrate(args: argparse.Namespace) -> None:
    ns = [100, 300] if args.quick else [500, 1000, 2500, 5000]
    if args.n:
        ns = [int(x) for x in args.n.split(",")]
    m = args.m or (5 if args.quick else 50)
    rate = args.rate or (50.0 if args.quick else 100.0)
    duration = args.duration or (5.0 if args.quick else 20.0)
    rows: list[dict[str, Any]] = []
    for n in ns:
        connect_s = args.deadline or 30 + n * 0.06  # seconds for all N chats to reach an agent
        for kind in ("ours", "peer"):
            rows.append(await stage(kind, n, m, rate, duration, connect_s))
            print(stage_line(rows[-1]), flush=True)
        ours = rows[-2]
        if "error" in ours or ours["held"] < n:
            note(f"ours held {ours.get('held')} of {n}: no larger N")
            break
    print()
    print(
        f"{'N':>6} {'held':>6} {'c→a p50':>9} {'c→a p99':>9} {'peer p50':>9} {'peer p99':>9} "
        f"{'ratio p99':>9} {'a→c p99':>9} {'RSS MB':>8} {'CPU %':>6}"
    )
    for ours in (r for r in rows if r["kind"] == "ours"):
        peer = next((r for r in rows if r["n"] == ours["n"] and r["kind"] == "peer"), {})
        a, b = ours.get("c2a_p99_ms"), peer.get("c2a_p99_ms")
        ours["ratio_p99_vs_peer"] = a / b if a and b else None
        ratio = "—" if ours["ratio_p99_vs_peer"] is None else f"{ours['ratio_p99_vs_peer']:.2f}"
        print(
            f"{ours['n']:>6} {fmt(ours.get('held')):>6} {fmt(ours.get('c2a_p50_ms')):>9} {fmt(a):>9} "
            f"{fmt(peer.get('c2a_p50_ms')):>9} {fmt(b):>9} {ratio:>9} "
            f"{fmt(ours.get('a2c_p99_ms')):>9} {fmt(ours.get('server_rss_mb')):>8} "
            f"{fmt(ours.get('server_cpu_pct')):>6}"
        )
    ok = [
        r
        for r in rows
        if r["kind"] == "ours"
        and r.get("held", 0) >= TARGET_SESSIONS
        and r.get("c2a_p99_ms") is not None
        and r["c2a_p99_ms"] < TARGET_P99_MS
        and r["rate"] >= 100
    ]
    target = f">= {TARGET_SESSIONS} chats held with c→a p99 < {TARGET_P99_MS:.0f} ms at >= 100 lines/s"
    print(f"\ntarget ({target}): {'met' if ok else 'not met in this run'}")
    out = ROOT / "bench" / "results" / ("chat_quick.json" if args.quick else "chat.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "host": platform.node(),
                "cpus": os.cpu_count(),
                "target": target,
                "target_met": bool(ok),
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {out.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="N = 100, 300 with 5 agents; under a minute")
    parser.add_argument("--n", help="comma-separated session counts (stages)")
    parser.add_argument("--m", type=int, help="agents")
    parser.add_argument("--rate", type=float, help="customer lines per second, all sessions together")
    parser.add_argument("--duration", type=float, help="seconds of traffic per stage")
    parser.add_argument("--deadline", type=float, help="seconds for all chats of a stage to reach an agent")
    parser.add_argument("-v", action="store_true", help="each step of each stage on stderr")
    parser.add_argument("--role", default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    raise_fd_limit()
    role = args.role
    if role == "bench":
        asyncio.run(orchestrate(args))
    elif role == "serve":
        asyncio.run(serve_ours(int(args.n), args.m))
    elif role == "serve-peer":
        asyncio.run(serve_peer())
    elif role == "agents":
        asyncio.run(run_agents(args.port, args.m, args.peer, args.deadline))
    elif role == "customers":
        asyncio.run(run_customers(args.port, int(args.n), args.rate, args.duration, args.peer, args.deadline))


if __name__ == "__main__":
    main()
