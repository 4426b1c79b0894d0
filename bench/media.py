"""Media capacity: concurrent RTP sessions one shared 20 ms clock can serve on one core.

The engine (this process) runs N sessions, each playing a looped 1 kHz prompt to a
receiver in a SEPARATE process, which timestamps every packet on arrival. For each stream
the receiver computes how late each packet is against that stream's own 20 ms cadence
(arrival − RTP-timestamp time, minus the stream's smallest such offset in the window), so
a constant phase within the tick is not counted but any jitter the clock adds is.
N is raised until more than 1 % of packets arrive more than 5 ms late (the issue's
criterion). Also printed: CPU of the engine process per session, the engine's own view
(ticks skipped, max tick lateness) and packet loss.

    python bench/media.py              # full ramp, ~10 s per level → results/media.json
    python bench/media.py --quick      # < 1 minute → results/media_quick.json
    python bench/media.py --realtime   # sender and receiver at SCHED_RR → *_realtime.json

Side by side in the same run, the peer design: one asyncio task (and timer) per call,
the receiver and criterion unchanged. All traffic is 127.0.0.1. The machine has 2 cores
shared with other work: sender and receiver each want one, so figures are a lower bound;
the load average at start is printed and saved.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import gc
import json
import multiprocessing as mp
import os
import socket
import struct
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callcenter.media import MediaEngine

LATE_MS = 5.0
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux


# --------------------------------------------------------------------------- receiver
def set_realtime(on: bool) -> str:
    """SCHED_RR priority, as Asterisk (-p) and FreeSWITCH (-rp) offer for media."""
    if not on:
        return "normal"
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(10))
        return "SCHED_RR"
    except (AttributeError, PermissionError, OSError) as exc:
        return f"normal (SCHED_RR refused: {exc})"


def receiver(conn: Connection, port_q: mp.Queue, realtime: bool) -> None:  # type: ignore[type-arg]
    set_realtime(realtime)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    # the kernel stamps each datagram as it reaches the socket, so the arrival time does
    # not depend on when this process gets the CPU; we drain every few ms instead of
    # waking per packet, which would preempt the sender sharing the core
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    port_q.put(sock.getsockname()[1])
    hdr = bytearray()
    times = array.array("q")
    recording = False
    recvmsg = sock.recvmsg
    cmsg_space = socket.CMSG_SPACE(16)
    while True:
        if conn.poll():
            cmd = conn.recv()
            if cmd == "start":
                hdr, times, recording = bytearray(), array.array("q"), True
            elif cmd == "stop":
                recording = False
                conn.send(analyse(bytes(hdr), np.frombuffer(times, dtype=np.int64)))
            elif cmd == "quit":
                return
        try:
            while True:
                data, anc, _flags, _addr = recvmsg(64, cmsg_space)
                if recording and len(data) >= 12 and anc:
                    sec, nsec = struct.unpack_from("qq", anc[0][2])
                    times.append(sec * 1_000_000_000 + nsec)
                    hdr += data[2:12]  # seq, timestamp, ssrc
        except BlockingIOError:
            pass
        time.sleep(0.005)


def analyse(hdr: bytes, t_ns: np.ndarray) -> dict[str, float]:
    if not len(t_ns):
        return {"packets": 0, "late_fraction": 1.0, "p99_ms": 0.0, "max_ms": 0.0, "loss": 0.0}
    rec = np.frombuffer(hdr, dtype=[("seq", ">u2"), ("ts", ">u4"), ("ssrc", ">u4")])
    ssrc = rec["ssrc"].astype(np.int64)
    order = np.lexsort((t_ns, ssrc))
    ssrc, ts, seq, t = ssrc[order], rec["ts"][order].astype(np.int64), rec["seq"][order], t_ns[order]
    bounds = np.flatnonzero(np.diff(ssrc)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [len(ssrc)]))
    late = np.empty(len(t))
    expected = 0
    for a, b in zip(starts, ends, strict=True):
        rel_ts = (ts[a:b] - ts[a]) & 0xFFFFFFFF
        offset = (t[a:b] - t[a]) / 1e6 - rel_ts / 8.0  # ms
        late[a:b] = offset - offset.min()
        expected += int(((int(seq[b - 1]) - int(seq[a])) & 0xFFFF) + 1)
    return {
        "packets": len(t),
        "streams": len(starts),
        "late_fraction": float((late > LATE_MS).mean()),
        "p50_ms": float(np.percentile(late, 50)),
        "p99_ms": float(np.percentile(late, 99)),
        "max_ms": float(late.max()),
        "loss": float(max(0, expected - len(t)) / expected) if expected else 0.0,
    }


# --------------------------------------------------------------------------- senders
class Receiver:
    """The receiving process and the pipe that starts/stops a measurement window."""

    def __init__(self, realtime: bool) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        port_q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
        self.proc = ctx.Process(target=receiver, args=(child, port_q, realtime), daemon=True)
        self.proc.start()
        self.port = int(port_q.get(timeout=30))

    async def window(self, seconds: float) -> tuple[dict[str, float], float, float]:
        """(receiver figures, CPU seconds of this process, wall seconds)."""
        self.conn.send("start")
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        self.conn.send("stop")
        rx = await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)
        return rx, cpu, wall

    def close(self) -> None:
        self.conn.send("quit")
        self.proc.join(5)


def make_row(
    mode: str, n: int, tx: int, rx: dict[str, float], cpu: float, wall: float, **extra: float
) -> dict[str, float | str]:
    return {
        "mode": mode,
        "sessions": n,
        "tx_pps": tx / wall,
        "rx_packets": rx["packets"],
        "late_fraction": rx["late_fraction"],
        "p99_late_ms": rx.get("p99_ms", 0.0),
        "max_late_ms": rx["max_ms"],
        "loss": rx["loss"],
        "cpu_core_fraction": cpu / wall,
        "cpu_us_per_session_per_s": cpu / wall / n * 1e6,
        **extra,
    }


async def run_engine(
    rcv: Receiver, levels: list[int], window: float, warmup: float
) -> list[dict[str, float | str]]:
    """Our design: MediaEngine, one shared clock, sessions playing a looped prompt."""
    engine = MediaEngine("127.0.0.1", 40000, 59999)  # 10,000 even ports
    await engine.start()
    t = np.arange(16000) / 8000  # 2 s prompt, looped
    prompt = (6000 * np.sin(2 * np.pi * 1000 * t)).astype("<i2").tobytes()
    offer = (
        "v=0\r\no=rx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {rcv.port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    plays: list[asyncio.Task[bool]] = []
    results: list[dict[str, float | str]] = []
    loop = asyncio.get_running_loop()
    try:
        for n in levels:
            while len(plays) < n:
                s = engine.allocate()
                assert s.answer(offer) is not None
                plays.append(loop.create_task(s.play(prompt, loop=True)))
            gc.collect()
            gc.freeze()  # what the server does after start-up: long-lived objects leave GC
            await asyncio.sleep(warmup)
            tx0 = sum(s.stats.tx_packets for s in engine.sessions)
            skipped0 = engine.ticks_skipped
            engine.max_tick_late = 0.0
            rx, cpu, wall = await rcv.window(window)
            tx = sum(s.stats.tx_packets for s in engine.sessions) - tx0
            row = make_row(
                "shared clock",
                n,
                tx,
                rx,
                cpu,
                wall,
                engine_ticks_skipped=engine.ticks_skipped - skipped0,
                engine_max_tick_late_ms=engine.max_tick_late * 1000,
            )
            results.append(row)
            print_row(row)
            if rx["late_fraction"] > 0.01:
                break
    finally:
        await engine.stop()
        await asyncio.gather(*plays, return_exceptions=True)
        gc.unfreeze()
    return results


async def per_call_sender(
    sock: socket.socket, dest: tuple[str, int], ssrc: int, payload: bytes, counter: list[int]
) -> None:
    """The peer design: one asyncio task per call, each with its own 20 ms timer."""
    loop = asyncio.get_running_loop()
    hdr = struct.Struct("!BBHII")
    due = loop.time()
    seq = ts = 0
    while True:
        due += 0.02
        await asyncio.sleep(max(0.0, due - loop.time()))
        sock.sendto(hdr.pack(0x80, 0, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload, dest)
        seq += 1
        ts += 160
        counter[0] += 1


async def run_task_per_call(
    rcv: Receiver, levels: list[int], window: float, warmup: float
) -> list[dict[str, float | str]]:
    results: list[dict[str, float | str]] = []
    payload = bytes(160)
    for n in levels:
        socks = []
        for _ in range(n):
            sk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sk.bind(("127.0.0.1", 0))
            sk.setblocking(False)
            socks.append(sk)
        counter = [0]
        tasks = [
            asyncio.ensure_future(per_call_sender(sk, ("127.0.0.1", rcv.port), i + 1, payload, counter))
            for i, sk in enumerate(socks)
        ]
        try:
            await asyncio.sleep(warmup)
            c0 = counter[0]
            rx, cpu, wall = await rcv.window(window)
            row = make_row("task per call", n, counter[0] - c0, rx, cpu, wall)
            results.append(row)
            print_row(row)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for sk in socks:
                sk.close()
        if row["late_fraction"] > 0.01:  # type: ignore[operator]
            break
    return results


async def run(
    levels: list[int], peer_levels: list[int], window: float, warmup: float, realtime: bool
) -> list[dict[str, float | str]]:
    rcv = Receiver(realtime)
    try:
        results = await run_engine(rcv, levels, window, warmup)
        if peer_levels:
            results += await run_task_per_call(rcv, peer_levels, window, warmup)
        return results
    finally:
        rcv.close()


HEAD = (
    f"{'mode':<14} {'sessions':>8} {'tx pkt/s':>9} {'late>5ms':>9} {'p99 ms':>7} {'max ms':>7} "
    f"{'loss':>7} {'CPU core':>8} {'µs CPU/sess/s':>13} {'skipped':>7}"
)


def print_row(r: dict[str, float | str]) -> None:
    f = {k: v for k, v in r.items() if not isinstance(v, str)}
    print(
        f"{r['mode']!s:<14} {int(f['sessions']):>8} {f['tx_pps']:>9.0f} "
        f"{100 * f['late_fraction']:>8.2f}% {f['p99_late_ms']:>7.2f} {f['max_late_ms']:>7.1f} "
        f"{100 * f['loss']:>6.2f}% {100 * f['cpu_core_fraction']:>7.1f}% "
        f"{f['cpu_us_per_session_per_s']:>13.1f} {int(f.get('engine_ticks_skipped', 0)):>7}",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short ramp, finishes in < 1 minute")
    ap.add_argument("--levels", type=str, default="", help="comma-separated session counts")
    ap.add_argument("--no-peer", action="store_true", help="skip the task-per-call comparison")
    ap.add_argument(
        "--realtime",
        action="store_true",
        help="run sender and receiver with SCHED_RR priority (needs root/CAP_SYS_NICE)",
    )
    args = ap.parse_args()
    policy = set_realtime(args.realtime)
    if args.levels:
        levels = [int(x) for x in args.levels.split(",")]
        peer_levels = [] if args.no_peer else levels
    elif args.quick:
        levels, peer_levels = [500, 1000, 2000], [1000]
    else:
        levels = [250, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000]
        peer_levels = [250, 500, 1000, 1500, 2000]
    window, warmup = (3.0, 1.0) if args.quick else (10.0, 2.0)
    print(
        f"media bench: {os.cpu_count()} CPUs (shared with other work), window {window:.0f} s, "
        f"scheduling {policy}, load average {os.getloadavg()[0]:.1f}"
    )
    print(HEAD)
    if args.no_peer:
        peer_levels = []
    results = asyncio.run(run(levels, peer_levels, window, warmup, args.realtime))

    def capacity(mode: str) -> int:
        ok = [r for r in results if r["mode"] == mode and float(r["late_fraction"]) <= 0.01]
        return int(max((int(r["sessions"]) for r in ok), default=0))

    ours = capacity("shared clock")
    print(
        f"\ncapacity (shared clock): {ours} concurrent sessions with ≤1 % of packets "
        f">5 ms late (target ≥ 1000)"
    )
    if peer_levels:
        print(
            f"capacity (task per call, same run): {capacity('task per call')} "
            f"(tested up to {max(peer_levels)})"
        )
    name = "media" + ("_quick" if args.quick else "") + ("_realtime" if args.realtime else "")
    name += ".json"
    out = Path(__file__).resolve().parent / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "bench": "media",
                "quick": args.quick,
                "scheduling": policy,
                "load_average_at_start": os.getloadavg()[0],
                "cpus": os.cpu_count(),
                "note": "2 cores shared with other work; sender and receiver on one machine",
                "criterion": "receiver-side: >1 % of packets more than 5 ms late vs the stream cadence",
                "capacity_sessions": ours,
                "peer": "task per call (one asyncio task and timer per call), same receiver",
                "peer_capacity_sessions": capacity("task per call") if peer_levels else None,
                "levels": results,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
