"""Browser phone legs under load: N WebRTC agent legs vs N plain RTP agent legs, same run.

What runs (all on 127.0.0.1), once per kind and level N, each against a freshly started
server so one phase does not inherit the other's state:

- the server: a ``Center`` in this process from bench/call_path.py's bench config (N agents
  ``2001..``, queue ``general``), media in ``--media-workers`` worker processes (``rtp.workers``)
  and ``webrtc.ice_hosts: [127.0.0.1]``;
- callers: SIPp (bench/harness.py's caller scenario: main line 5000, DTMF 4 → queue
  ``general``) placing N calls that stay up for the whole measurement;
- **webrtc** agents: a child process (``--browser-worker``) of aiortc peer connections, one per
  agent, doing what the desk's page does: log in, open ``/ws`` and ``/api/phone/ws``, offer
  (PCMU first), register, go available, answer every incoming call. Once a peer is connected
  (real ICE, real DTLS handshake), ``lean.hand_over`` gives its media to a ``MediaEngine`` in
  that process, the server's own SRTP path (libsrtp), which sends a 440 Hz tone as the SSRC
  the offer announced and authenticates what it receives; a task per peer sends the STUN
  consent checks a browser sends. ``--aiortc-generator``: the old generator, aiortc carrying
  every packet (tone and decode in Python, about a core from 40 legs);
- **rtp** agents: bench/harness.py's SIPp agent phones (REGISTER, auto-answer) streaming a
  440 Hz PCMU tone (``rtp_stream``), and its desktop worker making them available.

Measured while all N calls are connected, over ``--window`` seconds:

- late packets: a sniffer process (AF_PACKET on ``lo``, kernel receive timestamps,
  SO_TIMESTAMPNS) records every RTP packet the server sends to the agent ends (SRTP leaves
  the RTP header in the clear) and judges it with bench/media.py's criterion: lateness
  against the stream's own 20 ms cadence, > 5 ms is late; a level holds when ≤ 1 % are late
  and every leg's stream was seen. For a WebRTC leg that is the server's whole path: on the
  lean path (default) the agent leg's packet to the gateway leg, the bridge to the line's
  session in the same worker, its 20 ms pacing and SRTP; with ``--aiortc-path`` the gateway
  in the server's loop, aiortc's own 20 ms pacing and SRTP;
- CPU per leg: CPU seconds of the server (this process, whose main loop does the lines'
  ICE/DTLS and, with ``--aiortc-path``, all their packets, plus its media workers) per
  second of wall clock, divided by N; the WebRTC/RTP ratio at each level is the figure to read.

N rises until a level fails (late > 1 %, or fewer streams than legs, or calls not connected)
or the time bound is reached.

After the window the server's lean lines are checked: how many the engine carries, SRTP
packets authenticated and failed, consent checks answered (``server_lines`` in the row).

Why aiortc for the handshake: a lighter client would have to re-implement ICE connectivity
checks, the DTLS handshake and SRTP keying; the generator shares the 2 cores with the
server, so its CPU is given per row.

    python bench/webrtc.py            # N = 10, 20, 40, 80, 120, 160, 200; 10 s windows
    python bench/webrtc.py --quick    # N = 10, 3 s windows: under a minute
    python bench/webrtc.py --aiortc-path ...   # webrtc.lean_media off: aiortc carries every packet
    python bench/webrtc.py --aiortc-generator  # the old load generator (aiortc's media path)

Results: bench/results/webrtc.json (quick: webrtc_quick.json).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import fractions
import gc
import json
import logging
import multiprocessing as mp
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

# The server's packages first: bench/routing.py would shadow the routing package once
# bench/ leads sys.path (bench/ is not a package; its helpers are imported by path).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from callcenter.center import Center
from callcenter.config import load_config
from callcenter.server import settle_gc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from call_path import FIRST_AGENT, Probe, make_config_dir
from harness import SCENARIOS, AgentPhones, Desktops, caller_scenario
from loopback import free_udp_port, limits, proc_cpu, sipp
from sip_load import write_ulaw_tone

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
LATE_LIMIT = 0.01
SETUP_RATE = 20  # calls/s placed by SIPp (the IVR answers and routes each)

log = logging.getLogger("bench.webrtc")


# --------------------------------------------------------------------------- the sniffer
# Classic BPF: keep UDP (IP protocol byte at offset 14 + 9 on lo's Ethernet framing), 96 bytes.
_BPF_UDP = [(0x30, 0, 0, 23), (0x15, 0, 1, 17), (0x06, 0, 0, 96), (0x06, 0, 0, 0)]
SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
PACKET_HOST = 0  # lo shows each packet twice: as sent (OUTGOING) and as received (HOST)


def sniffer(conn: Connection, ready: Any) -> None:
    """Child process: RTP packets to the given UDP ports on lo, with kernel timestamps."""
    import numpy as np
    from media import analyse

    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    sock.bind(("lo", 0x0800))
    prog = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *ins) for ins in _BPF_UDP))
    fprog = struct.pack("HL", len(_BPF_UDP), ctypes.addressof(prog))  # struct sock_fprog
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024 * 1024)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setblocking(False)
    ready.put(True)
    ports: set[int] = set()
    hdr, times, recording = bytearray(), [], False
    space = socket.CMSG_SPACE(16)
    while True:
        if conn.poll():
            cmd, arg = conn.recv()
            if cmd == "start":
                ports, hdr, times, recording = set(arg), bytearray(), [], True
            elif cmd == "stop":
                recording = False
                conn.send(analyse(bytes(hdr), np.array(times, dtype=np.int64)))
            elif cmd == "quit":
                return
        try:
            while True:
                data, anc, _flags, addr = sock.recvmsg(96, space)
                if not recording or addr[2] != PACKET_HOST or not anc:
                    continue
                udp = 14 + (data[14] & 0x0F) * 4
                rtp = udp + 8
                if len(data) < rtp + 12 or int.from_bytes(data[udp + 2 : udp + 4], "big") not in ports:
                    continue
                if data[rtp] >> 6 != 2 or data[rtp + 1] & 0x7F >= 64:  # not RTP, or RTCP (PT 72-76)
                    continue
                sec, nsec = struct.unpack_from("qq", anc[0][2])
                times.append(sec * 1_000_000_000 + nsec)
                hdr += data[rtp + 2 : rtp + 12]  # seq, timestamp, ssrc
        except BlockingIOError:
            pass
        time.sleep(0.005)


class Sniffer:
    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        ready: Any = ctx.Queue()
        self.proc = ctx.Process(target=sniffer, args=(child, ready), daemon=True)
        self.proc.start()
        ready.get(timeout=30)

    async def window(self, ports: set[int], seconds: float) -> dict[str, float]:
        self.conn.send(("start", sorted(ports)))
        await asyncio.sleep(seconds)  # the measurement window
        self.conn.send(("stop", None))
        return await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)

    def close(self) -> None:
        self.conn.send(("quit", None))
        self.proc.join(5)


# --------------------------------------------------------------------------- browser agents
async def browser_worker(http: str, agents: list[str], lean: bool = True) -> None:
    """Child process: one aiortc "browser phone" per agent. Prints READY {ports}, then
    a line per connected call; ends when stdin closes.

    ``lean`` (the default generator): aiortc does each browser's ICE and DTLS handshake only;
    once the peer connection is up, ``lean.hand_over`` gives its media to a ``MediaEngine`` in
    this process, the server's own libsrtp path, which sends the tone as the SSRC the offer
    announced and authenticates what the server sends, and a task per browser sends the
    STUN consent checks a browser sends (about every 5 s). Without it, aiortc carries every
    packet in Python (``--aiortc-generator``), a full core from about 40 legs."""
    import av
    import httpx
    import numpy as np
    import websockets
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
    from aiortc.rtcrtpsender import RTCRtpSender

    from callcenter.media.engine import MediaEngine
    from callcenter.web.tokens import ws_subprotocols
    from callcenter.webrtc.lean import hand_over
    from callcenter.webrtc.line import gather_on

    tone = (3000 * np.sin(2 * np.pi * 440 * np.arange(160) / 8000)).astype("<i2").reshape(1, 160)
    # the lean generator's engine allocates no ports: it only adopts the sockets ICE selected
    engine = MediaEngine("127.0.0.1", 2, 2, ("PCMU",)) if lean else None
    if engine is not None:
        await engine.start()

    class Unplugged(MediaStreamTrack):
        """The lean browser's track for aiortc: never yields a frame, so aiortc's sender
        sends no RTP and the engine starts the SSRC's sequence fresh (as the server's does)."""

        kind = "audio"

        async def recv(self) -> av.AudioFrame:
            await asyncio.Event().wait()
            raise MediaStreamError

    class Mic(MediaStreamTrack):
        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self.t0: float | None = None
            self.pts = 0

        async def recv(self) -> av.AudioFrame:
            if self.t0 is None:
                self.t0 = time.monotonic()
            else:
                self.pts += 160
                wait = self.t0 + self.pts / 8000 - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            frame = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 8000, self.pts, fractions.Fraction(1, 8000)
            return frame

    async def drain(track: Any) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()

    pcmu = [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType == "audio/PCMU"]
    ws_url = http.replace("http", "ws", 1)
    sem = asyncio.Semaphore(8)
    pcs: list[Any] = []
    socks: list[Any] = []
    tasks: list[asyncio.Task[None]] = []

    async def lean_media(pc: Any, up: asyncio.Event) -> None:
        """Once ICE and DTLS are up: the engine carries the tone and consent checks go out."""
        from aioice import stun

        await up.wait()
        session = hand_over(pc, "PCMU", engine)
        if session is None:  # stderr: every stdout line counts as a connected call
            print("lean generator: a browser's media stayed on aiortc", file=sys.stderr, flush=True)
            return
        tasks.append(asyncio.ensure_future(session.play(tone.tobytes() * 50, loop=True)))
        ice = pc.getTransceivers()[0].receiver.transport.transport._connection
        pair = ice._nominated[1]
        while True:  # RFC 7675: a browser checks consent every 4-6 s
            await asyncio.sleep(random.uniform(4.0, 6.0))
            check = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
            check.attributes["USERNAME"] = f"{ice.remote_username}:{ice.local_username}"
            check.attributes["PRIORITY"] = pair.local_candidate.priority
            check.attributes["ICE-CONTROLLING"] = ice._tie_breaker
            check.add_message_integrity(ice.remote_password.encode("utf8"))
            pair.protocol.send_stun(check, pair.remote_addr)

    async def pump(ws: Any, phone: bool) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                msg = json.loads(raw)
                if phone and msg.get("type") == "incoming":
                    await ws.send(json.dumps({"type": "answer_call"}))
                elif phone and msg.get("type") == "call" and msg.get("state") == "connected":
                    print(json.dumps({"connected": msg.get("call_id")}), flush=True)

    async with httpx.AsyncClient(base_url=http, timeout=60.0) as client:

        async def start(agent: str) -> list[int]:
            async with sem:
                r = await client.post("/api/login", json={"username": agent, "password": f"bench-{agent}"})
                r.raise_for_status()
                token = r.json()["token"]
                desk = await websockets.connect(ws_url + "/ws", subprotocols=ws_subprotocols(token),
                                                max_queue=None)  # fmt: skip
                socks.append(desk)
                while json.loads(await desk.recv()).get("type") != "snapshot":
                    pass
                tasks.append(asyncio.create_task(pump(desk, False)))
                pc = RTCPeerConnection()
                pcs.append(pc)
                tr = pc.addTransceiver(Unplugged() if lean else Mic(), direction="sendrecv")
                tr.setCodecPreferences(pcmu)
                ice = tr.sender.transport.transport
                gather_on(ice.iceGatherer._connection, ["127.0.0.1"])  # loopback, as the server
                pc.on("track", lambda t: tasks.append(asyncio.ensure_future(drain(t))))
                if lean:
                    up = asyncio.Event()
                    pc.on("connectionstatechange",
                          lambda pc=pc, up=up: up.set() if pc.connectionState == "connected" else None)
                    tasks.append(asyncio.create_task(lean_media(pc, up)))
                await pc.setLocalDescription(await pc.createOffer())
                ws = await websockets.connect(ws_url + "/api/phone/ws", subprotocols=ws_subprotocols(token))
                socks.append(ws)
                await ws.send(json.dumps({"type": "offer", "sdp": pc.localDescription.sdp}))
                while True:
                    msg = json.loads(await ws.recv())
                    if msg["type"] == "answer":
                        await pc.setRemoteDescription(RTCSessionDescription(msg["sdp"], "answer"))
                    elif msg["type"] == "registered":
                        break
                    elif msg["type"] in ("unregistered", "error"):
                        raise RuntimeError(f"browser phone {agent}: {msg}")
                tasks.append(asyncio.create_task(pump(ws, True)))
                r = await client.post("/api/agent/state", json={"state": "available"},
                                      headers={"Authorization": f"Bearer {token}"})  # fmt: skip
                r.raise_for_status()
                return [c.port for c in ice.iceGatherer.getLocalCandidates()]

        ports = await asyncio.gather(*(start(a) for a in agents))
        print("READY " + json.dumps({"ports": [p for ps in ports for p in ps]}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # the parent closes it
        for t in tasks:
            t.cancel()
        for ws in socks:
            with contextlib.suppress(Exception):
                await ws.close()
        if engine is not None:
            await engine.stop()
        for pc in pcs:
            await pc.close()


class Browsers:
    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.ports: set[int] = set()
        self.connected = 0
        self._reader: asyncio.Task[None] | None = None

    async def start(self, http: str, ids: list[str], lean: bool = True) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).resolve()),
            "--browser-worker" if lean else "--aiortc-browser-worker", http, *ids,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=str(ROOT))  # fmt: skip
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 60 + len(ids))
        if not line.startswith(b"READY "):
            raise RuntimeError(f"browser worker did not start: {line!r}")
        self.ports = set(json.loads(line[6:])["ports"])
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for _ in self.proc.stdout:
            self.connected += 1

    async def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 15)
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            self._reader.cancel()


# --------------------------------------------------------------------------- one phase
def agent_scenario(tmp: Path) -> Path:
    """harness.py's auto-answering agent phone, streaming a PCMU tone once answered."""
    tone = tmp / "agent_tone.ulaw"
    write_ulaw_tone(tone)
    xml = tmp / "agent_uas_rtp.xml"
    stream = f'<nop><action><exec rtp_stream="{tone},-1,0"/></action></nop>'
    text = (SCENARIOS / "agent_uas.xml").read_text().replace('<recv request="ACK"/>',
                                                               f'<recv request="ACK"/>\n  {stream}')
    xml.write_text(text)
    return xml


async def lean_lines(phones: Any) -> dict[str, int]:
    """What the server's engine saw on the browser lines it carries (the lean path): SRTP
    packets authenticated, packets that failed SRTP, consent checks answered and refused,
    packets sent and dropped on a full socket buffer."""
    counted = ("rx_packets", "rx_srtp_failed", "stun_answered", "stun_refused", "tx_packets", "tx_dropped")
    out = {"lines": len(phones.sessions), "lean": 0} | dict.fromkeys(counted, 0)
    for session in list(phones.sessions.values()):
        if session.line.lean is None:
            continue
        st = await session.line.lean.fetch_stats()
        out["lean"] += 1
        for k in counted:
            out[k] += int(st.get(k, 0))
    return out


def server_cpu(center: Any) -> float:
    """CPU seconds of this process (the server's loop, aiortc included) and its media workers."""
    total = proc_cpu(os.getpid(), children=False)
    for w in getattr(center.media, "workers", []):
        if w._proc is not None and w._proc.pid:
            total += proc_cpu(w._proc.pid, children=False)
    return total


async def phase(kind: str, n: int, window: float, workers: int, sniff: Sniffer,
                lean: bool = True, realtime: bool = False, lean_generator: bool = True) -> dict[str, Any]:
    import yaml

    tmp = Path(tempfile.mkdtemp(prefix=f"bench-webrtc-{kind}-"))
    sip_port = free_udp_port(tcp=True)
    cfg_dir = make_config_dir(tmp, n, sip_port, random.randrange(50000, 57000) & ~1, None)
    server = yaml.safe_load((cfg_dir / "server.yaml").read_text())
    server["rtp"]["workers"] = workers
    if realtime:  # the workers at SCHED_RR, as server.yaml's rtp.realtime_priority does on a busy host
        server["rtp"]["realtime_priority"] = 10
    server["webrtc"] = {"ice_hosts": ["127.0.0.1"], "lean_media": lean}
    (cfg_dir / "server.yaml").write_text(yaml.safe_dump(server))
    center = Center(load_config(cfg_dir), flows_dir=ROOT / "ivr_flows")
    await center.start()
    probe = Probe()
    center.bus.subscribe("bench-probe", probe.on_event)
    http = f"http://127.0.0.1:{center.http_port}"
    target = f"127.0.0.1:{sip_port}"
    ids = [str(FIRST_AGENT + k) for k in range(n)]
    phones, desks, browsers = AgentPhones(), Desktops(on_offer=lambda o: None), Browsers()
    callers: asyncio.subprocess.Process | None = None
    row: dict[str, Any] = {"kind": kind, "legs": n}
    t_setup = time.monotonic()
    try:
        if kind == "rtp":
            await phones.start(center, ids, target, tmp, max_calls=n, run_s=300,
                               scenario=agent_scenario(tmp))  # fmt: skip
            await desks.start(http, ids)
        else:
            await browsers.start(http, ids, lean_generator)
        settle_gc()
        # WebRTC setup runs well behind SETUP_RATE from ~160 legs (each call's INVITE to a browser
        # line goes through the gateway in the server's loop): every call must still be up when
        # the last connects, or early calls end before the window and the level reads as failed
        setup_bound = n / SETUP_RATE * 5 + 30
        hold_ms = int((setup_bound + 10 + window) * 1000)  # ended by us after the window
        callers = await asyncio.create_subprocess_exec(
            *sipp(loops=1000), target, "-sf", str(caller_scenario(tmp)), "-s", "5000",
            "-r", str(SETUP_RATE), "-m", str(n), "-l", str(n), "-d", str(hold_ms),
            *limits(hold_ms / 1000 + 30), cwd=str(tmp),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + setup_bound
        while time.monotonic() < deadline:
            if sum(1 for c in probe.contacts.values() if c.connected and not c.ended) >= n:
                break
            probe.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(probe.changed.wait(), 1.0)
        connected = sum(1 for c in probe.contacts.values() if c.connected and not c.ended)
        row["setup_s"] = round(time.monotonic() - t_setup, 1)
        await asyncio.sleep(1.0)  # let every leg's media settle before the window
        if kind == "rtp":
            ports = set()
            for call in list(center.ua.calls.values()):
                if getattr(call.direction, "value", call.direction) == "outbound" and call.media is not None:
                    remote = (await call.media.fetch_stats()).get("remote")
                    if remote:
                        ports.add(int(remote[1]))
        else:
            ports = browsers.ports
        load = os.getloadavg()[0]
        gen_pid = browsers.proc.pid if browsers.proc is not None else None
        gen0 = proc_cpu(gen_pid, children=False) if gen_pid else 0.0
        main0, cpu0, wall0 = proc_cpu(os.getpid(), children=False), server_cpu(center), time.monotonic()
        rx = await sniff.window(ports, window)
        cpu, wall = server_cpu(center) - cpu0, time.monotonic() - wall0
        main_cpu = proc_cpu(os.getpid(), children=False) - main0
        if gen_pid:  # the aiortc load generator shares the 2 cores: its demand explains late packets
            row["generator_cpu_core_fraction"] = round((proc_cpu(gen_pid, children=False) - gen0) / wall, 3)
        row.update(
            connected=connected,
            streams=rx.get("streams", 0),
            packets=rx["packets"],
            late_fraction=round(rx["late_fraction"], 5),
            p99_late_ms=round(rx.get("p99_ms", 0.0), 2),
            max_late_ms=round(rx["max_ms"], 2),
            loss=round(rx["loss"], 5),
            server_cpu_core_fraction=round(cpu / wall, 3),
            server_main_cpu_core_fraction=round(main_cpu / wall, 3),  # the rest: the media workers
            cpu_ms_per_leg_per_s=round(1000 * cpu / wall / n, 3),
            load_avg_1m=round(load, 2),
        )
        if kind == "webrtc" and center.phones is not None:
            row["server_lines"] = await lean_lines(center.phones)
        row["held"] = connected >= n and row["streams"] >= n and row["late_fraction"] <= LATE_LIMIT
    finally:
        if callers is not None and callers.returncode is None:
            callers.kill()
            await callers.wait()
        await browsers.stop()
        await desks.stop()
        await phones.stop()
        await center.stop()
        gc.unfreeze()
        shutil.rmtree(tmp, ignore_errors=True)
    return row


def print_row(r: dict[str, Any]) -> None:
    g = r.get
    print(f"  {g('kind'):<6} {g('legs'):>4} legs  {g('connected', 0):>4} up  {g('streams', 0):>4} streams  "
          f"late>5ms {100 * g('late_fraction', 1):6.2f}%  p99 {g('p99_late_ms', 0):6.2f} ms  "
          f"loss {100 * g('loss', 0):5.2f}%  server CPU {100 * g('server_cpu_core_fraction', 0):5.1f}%  "
          f"{g('cpu_ms_per_leg_per_s', 0):6.2f} ms/s per leg "
          f"(main {100 * g('server_main_cpu_core_fraction', 0):.0f}%, "
          f"setup {g('setup_s', 0):.0f} s)  {'held' if g('held') else 'NOT held'}"
          + (f"  (generator CPU {100 * g('generator_cpu_core_fraction'):.0f}%)"
             if g('generator_cpu_core_fraction') is not None else ""),
          flush=True)  # fmt: skip
    if (sl := g("server_lines")) is not None:
        print(f"         server: {sl['lean']}/{sl['lines']} lines on the lean path, "
              f"{sl['rx_packets']} SRTP packets in, {sl['rx_srtp_failed']} SRTP failures, "
              f"{sl['stun_answered']} consent checks answered ({sl['stun_refused']} refused), "
              f"{sl['tx_dropped']} of {sl['tx_packets']} sends dropped", flush=True)


async def run(levels: list[int], window: float, workers: int, budget_s: float, lean: bool = True,
              all_levels: bool = False, realtime: bool = False,
              lean_generator: bool = True) -> list[dict[str, Any]]:
    started = time.monotonic()
    sniff = Sniffer()
    levels_out: list[dict[str, Any]] = []
    try:
        for n in levels:
            rows = {}
            for kind in ("rtp", "webrtc"):
                rows[kind] = await phase(kind, n, window, workers, sniff, lean, realtime, lean_generator)
                print_row(rows[kind])
            rtp, web = rows["rtp"], rows["webrtc"]
            ratio = (web["cpu_ms_per_leg_per_s"] / rtp["cpu_ms_per_leg_per_s"]
                     if rtp.get("cpu_ms_per_leg_per_s") else None)  # fmt: skip
            levels_out.append({"legs": n, "rtp": rtp, "webrtc": web,
                               "cpu_per_leg_ratio_webrtc_to_rtp": round(ratio, 2) if ratio else None})
            if ratio:
                print(f"  N={n}: CPU per leg, WebRTC / plain RTP = {ratio:.2f}", flush=True)
            if (not web.get("held") and not all_levels) or time.monotonic() - started > budget_s:
                break
    finally:
        sniff.close()
    return levels_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="one level (N=10), 3 s window: < 1 minute")
    parser.add_argument("--media-workers", type=int, default=2, help="rtp.workers (default 2)")
    parser.add_argument("--levels", type=str, default="", help="comma-separated N, e.g. 10,20,40")
    parser.add_argument("--window", type=float, default=0.0, help="measurement window, seconds")
    parser.add_argument("--budget", type=float, default=600.0, help="no new level after this many seconds")
    parser.add_argument("--aiortc-path", action="store_true",
                        help="webrtc.lean_media: false (every packet through aiortc, for comparison)")
    parser.add_argument("--all-levels", action="store_true",
                        help="measure every level even after one fails (CPU per leg as N grows)")
    parser.add_argument("--realtime", action="store_true",
                        help="media workers at SCHED_RR (rtp.realtime_priority 10), both kinds")
    parser.add_argument("--aiortc-generator", action="store_true",
                        help="the old load generator: aiortc carries every browser's packets (a core "
                             "from ~40 legs); default: aiortc for ICE/DTLS, then our engine's SRTP")
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        raise SystemExit("sipp is required (apt-get install sip-tester)")
    if os.geteuid() != 0:
        raise SystemExit("the sniffer needs CAP_NET_RAW (an AF_PACKET socket on lo): run as root")
    full = [10, 20, 40, 80, 120, 160, 200]
    levels = [int(x) for x in args.levels.split(",") if x] or ([10] if args.quick else full)
    window = args.window or (3.0 if args.quick else 10.0)
    logging.basicConfig(level=logging.WARNING)
    t0 = time.monotonic()
    print(f"WebRTC vs plain RTP agent legs, {args.media_workers} media workers, {window:.0f} s windows "
          f"(load average {os.getloadavg()[0]:.2f})", flush=True)  # fmt: skip
    out = asyncio.run(run(levels, window, args.media_workers, args.budget, not args.aiortc_path,
                          args.all_levels, args.realtime, not args.aiortc_generator))
    held = [lv["legs"] for lv in out if lv["webrtc"].get("held")]
    held_rtp = [lv["legs"] for lv in out if lv["rtp"].get("held")]
    result = {
        "benchmark": "webrtc",
        "quick": args.quick,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "note": "2 cores shared with other work; server, "
                    "aiortc load generator, SIPp and the sniffer all on this machine"},
        "config": {"media_workers": args.media_workers, "window_s": window, "levels": levels,
                   "lean_media": not args.aiortc_path, "realtime_workers": args.realtime,
                   "load_generator": "aiortc" if args.aiortc_generator else "aiortc ICE/DTLS + engine SRTP",
                   "criterion": "sniffer on lo (kernel timestamps): > 1 % of packets to the agent ends "
                                "more than 5 ms late vs the stream cadence fails a level"},
        "levels": out,
        "webrtc_legs_held": max(held, default=0),
        "rtp_legs_held": max(held_rtp, default=0),
        "wall_s": round(time.monotonic() - t0, 1),
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    tag = (("_aiortc" if args.aiortc_path else "") + ("_aiortcgen" if args.aiortc_generator else "")
           + ("_realtime" if args.realtime else ""))
    path = RESULTS / f"webrtc{tag}{'_quick' if args.quick else ''}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    print(f"{'WebRTC legs held (≤1 % late >5 ms)':<40} {result['webrtc_legs_held']:>6}")
    print(f"{'plain RTP legs held, same levels':<40} {result['rtp_legs_held']:>6}")
    print(f"results written to {path} ({result['wall_s']} s)")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] in ("--browser-worker", "--aiortc-browser-worker"):
        asyncio.run(browser_worker(sys.argv[2], sys.argv[3:], lean=sys.argv[1] == "--browser-worker"))
    else:
        main()
