"""SIP call load, in RFC 7502 terms: session establishment rate and session capacity.

**Session establishment rate** (RFC 7502 §4.1/§5.3): SIPp places calls at a fixed rate
for a fixed time; each call is held 2 s with RTP both ways (SIPp streams PCMU with
``rtp_stream``; our server plays a looped 1 kHz tone back). A rate *passes* when every
call attempted in the run succeeded; each rate is a separate trial against a freshly
started server. The rate is raised step by step; the figure is the
highest passing rate. SIPp's own UAS (``sipp -sn uas -rtp_echo``) is measured the same
way in the same run as the ceiling of what this machine can drive, and our rate is
printed as a fraction of it. CPU per call = server process CPU time / calls.

**Session capacity** (RFC 7502 §5.4 spirit): N calls are set up and held while the
server sends 20 ms RTP on every one; the RTP goes to a receiver in a separate process
that timestamps each packet in the kernel (SO_TIMESTAMPNS, shared with bench/media.py)
and measures lateness against each stream's own 20 ms cadence. N is raised until more
than 1 % of packets arrive more than 5 ms late.

**Registration rate**: calls ``bench/sip_register.py``'s ``run(quick)`` (SIP-C: ours vs
Kamailio) when that file exists.

    python bench/sip_load.py            # 30 s establishment runs (RFC 7502), full ramps
    python bench/sip_load.py --quick    # < 1 minute, short runs, coarse ramps

Everything runs on 127.0.0.1; load is bounded in count and time. The machine has 2 cores
shared with SIPp, the receiver and other work: read the figures as lower bounds.
Results: bench/results/sip_load.json (quick: sip_load_quick.json); with ``--media-workers N``
(media in N worker processes, as ``rtp.workers: N``) sip_load_media<N>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

# bench/ is not a package: make loopback.py importable however this file is loaded
# (as a script, or by path from the tests)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from loopback import call_counts, free_udp_port, last_stat, limits, proc_cpu, sipp, stats

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
CALL_HOLD_MS = 2000

UAC_RTP = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="UAC with RTP both ways">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [RTP_PORT] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  [RTP_START]
  <pause/>
  [RTP_STOP]
  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
"""


def scenario(path: Path, *, rtp_port: str, stream: Path | None) -> Path:
    text = UAC_RTP.replace("[RTP_PORT]", rtp_port)
    if stream is not None:
        text = text.replace("[RTP_START]", f'<nop><action><exec rtp_stream="{stream},-1,0"/></action></nop>')
        text = text.replace("[RTP_STOP]", '<nop><action><exec rtp_stream="pause"/></action></nop>')
    else:
        text = text.replace("[RTP_START]", "").replace("[RTP_STOP]", "")
    path.write_text(text)
    return path


def write_ulaw_tone(path: Path, seconds: float = 4.0) -> None:
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from callcenter.media import g711

    t = np.arange(int(8000 * seconds)) / 8000
    pcm = (6000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
    path.write_bytes(g711.encode("PCMU", pcm))


# --------------------------------------------------------------------------- our server


async def serve(port: int, rtp_lo: int, rtp_hi: int, media_workers: int = 1) -> None:
    """The server under test: transport + UA core + media engine in ONE asyncio process,
    or with ``media_workers`` > 1 the media in that many worker processes (``rtp.workers``).

    Each call is answered and gets a looped 1 kHz tone. SIGTERM prints stats as JSON.
    """
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from callcenter.media.engine import MediaEngine
    from callcenter.media.session import RtpSession
    from callcenter.media.worker import MediaPool
    from callcenter.server import settle_gc
    from callcenter.sip.calls import Call, CallError
    from callcenter.sip.transport import SipTransportLayer
    from callcenter.sip.ua import UserAgent

    t = np.arange(16000) / 8000
    pcm = (6000 * np.sin(2 * np.pi * 1000 * t)).astype("<i2").tobytes()
    # A WAV path, not bytes: the engine encodes a file prompt once and caches it, as the
    # server does with its TTS prompts; bytes would be re-encoded for every call.
    tone_dir = tempfile.mkdtemp(prefix="sip_load_tone_")
    tone = os.path.join(tone_dir, "tone.wav")
    with wave.open(tone, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm)
    engine: MediaEngine | MediaPool = (
        MediaPool("127.0.0.1", rtp_lo, rtp_hi, media_workers) if media_workers > 1
        else MediaEngine("127.0.0.1", rtp_lo, rtp_hi)
    )
    await engine.start()
    rx_packets = [0]

    async def on_call(call: Call) -> None:
        try:
            await call.answer()
        except CallError:
            return
        media = call.media
        with contextlib.suppress(ValueError):
            await media.play(tone, loop=True)
        if isinstance(media, RtpSession):  # in process: counters survive the close
            rx_packets[0] += media.stats.rx_packets

    ua = UserAgent(engine, on_call=on_call, media_timeout=0)
    layer = SipTransportLayer([("udp", "127.0.0.1", port)], ua.on_message)
    await layer.start()
    ua.attach(layer)
    await ua.start()
    settle_gc()  # as `callcenter serve` does after start-up
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("READY", flush=True)
    await stop.wait()
    stats = {
        "ua": dict(ua.stats),
        "active_calls": len(ua.calls),
        "rx_packets_ended_calls": rx_packets[0] if media_workers == 1 else None,
        "tx_late": sum(s.stats.tx_late for s in engine.sessions)
        if isinstance(engine, MediaEngine) else None,
        "engine": engine.stats() if isinstance(engine, MediaEngine) else await engine.stats(),
    }
    print(json.dumps(stats, default=str), flush=True)
    await ua.stop(timeout=0.5)
    await layer.stop()
    await engine.stop()
    shutil.rmtree(tone_dir, ignore_errors=True)


class Server:
    def __init__(self, kind: str, workdir: Path, media_workers: int = 1) -> None:
        self.kind = kind
        self.port = free_udp_port()
        if kind == "callcenter":
            # 4,000 RTP ports from an even base in 20000-25998; the engine skips ports that
            # another process (a demo server, a test) holds
            lo = random.randrange(20000, 26000) & ~1
            spec = f"{self.port},{lo},{lo + 7999},{media_workers}"
            args = [sys.executable, str(Path(__file__).resolve()), "--serve", spec]
        else:
            args = [*sipp(port=self.port), "-sn", "uas", "-rtp_echo",
                    "-trace_err", "-error_file", str(workdir / "uas_err.log")]  # fmt: skip
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=workdir, text=True
        )
        if kind == "callcenter":
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
            if "READY" not in line:
                raise RuntimeError(f"our server did not start: {line!r}")
        else:
            time.sleep(0.5)  # bench only: give SIPp's UAS a moment to bind

    def cpu(self) -> float:
        return proc_cpu(self.proc.pid)

    def stop(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self.proc.send_signal(signal.SIGTERM)
        try:
            text, _ = self.proc.communicate(timeout=10)
            for line in (text or "").splitlines():
                if line.startswith("{"):
                    out = json.loads(line)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
        return out


def run_sipp(
    target_port: int, scen: Path, *, rate: float, calls: int, limit: int, workdir: Path, timeout_s: int
) -> dict[str, Any]:
    stat = workdir / f"stat-{time.monotonic_ns()}.csv"
    args = [*sipp(), f"127.0.0.1:{target_port}", "-sf", str(scen),
            "-r", str(rate), "-m", str(calls), "-l", str(limit), "-d", str(CALL_HOLD_MS), "-s", "600",
            *limits(timeout_s), *stats(stat)]  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.run(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=workdir,
        timeout=timeout_s + 20,
        check=False,
    )
    wall = time.monotonic() - t0
    return {**call_counts(last_stat(stat), proc.returncode), "wall_s": round(wall, 2)}


def establishment(kind: str, rates: list[int], seconds: float, workdir: Path, stream: Path,
                  media_workers: int = 1) -> dict[str, Any]:
    """One 30 s trial per rate, each against a freshly started server (ours or SIPp's UAS),
    so a trial does not inherit the previous one's load: the last 2 s of its calls and
    32 s of completed transactions waiting out Timer J/L."""
    scen = scenario(workdir / f"uac_rtp_{kind}.xml", rtp_port="[media_port]", stream=stream)
    steps: list[dict[str, Any]] = []
    for rate in rates:
        calls = int(rate * seconds)
        server = Server(kind, workdir, media_workers)
        try:
            cpu0 = server.cpu()
            res = run_sipp(
                server.port,
                scen,
                rate=rate,
                calls=calls,
                limit=calls,
                workdir=workdir,
                timeout_s=int(seconds + CALL_HOLD_MS / 1000 + 30),
            )
            cpu = server.cpu() - cpu0
        finally:
            final = server.stop()
        res.update(
            rate=rate,
            attempted=calls,
            server_cpu_s=round(cpu, 3),
            cpu_ms_per_call=round(1000 * cpu / max(1, res["successful"]), 3),
            passed=res["failed"] == 0 and res["successful"] == calls,
            server_stats=final,
        )
        steps.append(res)
        print(
            f"  {kind:<11} {rate:>5} calls/s  {res['successful']:>6}/{calls:<6} ok "
            f"{res['failed']:>4} failed  {res['retransmissions']:>5} retrans  "
            f"CPU {res['cpu_ms_per_call']:.2f} ms/call",
            flush=True,
        )
        if not res["passed"]:
            break
    best = max((s["rate"] for s in steps if s["passed"]), default=0)
    return {"steps": steps, "max_rate_zero_failures": best}


def capacity(levels: list[int], window: float, workdir: Path, media_workers: int = 1) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(ROOT))
    import media as media_bench  # bench/media.py: the kernel-timestamping receiver

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    port_q: Any = ctx.Queue()
    rx_args: tuple[Any, ...] = (child, port_q)
    if "realtime" in inspect.signature(media_bench.receiver).parameters:
        rx_args += (False,)  # normal scheduling, like our server
    rx = ctx.Process(target=media_bench.receiver, args=rx_args, daemon=True)
    rx.start()
    rx_port = port_q.get(timeout=30)
    scen = scenario(workdir / "uac_capacity.xml", rtp_port=str(rx_port), stream=None)
    server = Server("callcenter", workdir, media_workers)
    rows: list[dict[str, Any]] = []
    setup_rate = 200
    try:
        for n in levels:
            ramp = n / setup_rate
            hold = ramp + 1.5 + window + 1.0
            args = [*sipp(), f"127.0.0.1:{server.port}", "-sf", str(scen),
                    "-r", str(setup_rate), "-m", str(n), "-l", str(n), "-d", str(int(hold * 1000)),
                    "-s", "600", *limits(hold + 30)]  # fmt: skip
            uac = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir)
            time.sleep(ramp + 1.5)  # bench sequencing: all calls up, media settled
            cpu0, t0 = server.cpu(), time.monotonic()
            parent.send("start")
            time.sleep(window)
            parent.send("stop")
            res = parent.recv()
            cpu = server.cpu() - cpu0
            wall = time.monotonic() - t0
            uac.wait(timeout=hold + 40)
            row = {
                "calls": n,
                "rx_packets": res["packets"],
                "streams_seen": res.get("streams", 0),
                "late_fraction": round(res["late_fraction"], 5),
                "p99_late_ms": round(res.get("p99_ms", 0.0), 2),
                "max_late_ms": round(res["max_ms"], 2),
                "loss": round(res["loss"], 5),
                "server_cpu_core_fraction": round(cpu / wall, 3),
                "sipp_rc": uac.returncode,
            }
            rows.append(row)
            print(
                f"  {n:>6} calls  {row['streams_seen']:>6} streams  {row['rx_packets']:>8} pkts  "
                f"late>5ms {100 * row['late_fraction']:6.2f}%  p99 {row['p99_late_ms']:6.2f} ms  "
                f"loss {100 * row['loss']:5.2f}%  server CPU {100 * row['server_cpu_core_fraction']:5.1f}%",
                flush=True,
            )
            if row["late_fraction"] > 0.01 or row["streams_seen"] < n:
                break
    finally:
        server.stop()
        parent.send("quit")
        rx.join(5)
    ok = [r["calls"] for r in rows if r["late_fraction"] <= 0.01 and r["streams_seen"] >= r["calls"]]
    return {
        "levels": rows,
        "capacity_calls": max(ok, default=0),
        "criterion": "receiver-side: >1 % of packets more than 5 ms late vs the stream cadence",
    }


def registration(quick: bool) -> dict[str, Any] | None:
    path = HERE / "sip_register.py"
    if not path.exists():
        return None
    sys.path.insert(0, str(HERE))
    import sip_register

    try:
        return sip_register.run(quick)
    except Exception as exc:  # report, do not lose the other figures
        return {"error": repr(exc)}


def capacity_only(levels: list[int], window: float, quick: bool, started: float,
                  media_workers: int = 1) -> None:
    """The capacity ramp alone: a re-check on a quiet machine without the 10-minute run."""
    print(f"Session capacity (server sends 20 ms RTP on every call, {window:.0f} s window)")
    with tempfile.TemporaryDirectory(prefix="sip_load_") as tmp:
        cap = capacity(levels, window, Path(tmp), media_workers)
    wall = round(time.monotonic() - started, 1)
    result = {"benchmark": "sip_load", "part": "capacity", "quick": quick, "capacity": cap,
              "media_workers": media_workers, "machine": {"cpus": os.cpu_count()},
              "wall_s": wall}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"sip_load_capacity{suffix(quick, media_workers)}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"{'session capacity (calls, ≤1 % late >5 ms)':<44} {cap['capacity_calls']:>12}")
    print(f"results written to {out} ({result['wall_s']} s)")


def suffix(quick: bool, media_workers: int) -> str:
    return ("_quick" if quick else "") + (f"_media{media_workers}" if media_workers > 1 else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short runs, finishes in < 1 minute")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--skip-register", action="store_true", help="do not run bench/sip_register.py")
    ap.add_argument("--media-workers", type=int, default=1,
                    help="rtp.workers for our server: >1 runs media in worker processes; "
                         "results go to *_media<N>.json")  # fmt: skip
    ap.add_argument("--establishment-only", action="store_true",
                    help="only the establishment ramps, ours and SIPp's "
                         "(bench/results/sip_load_establishment*.json)")  # fmt: skip
    ap.add_argument("--capacity-only", action="store_true",
                    help="only the session-capacity ramp (bench/results/sip_load_capacity.json)")  # fmt: skip
    args = ap.parse_args()
    if args.serve:
        port, lo, hi, workers = (int(x) for x in args.serve.split(","))
        asyncio.run(serve(port, lo, hi, workers))
        return
    if shutil.which("sipp") is None:
        sys.exit("sipp not installed (apt-get install sip-tester)")
    quick = args.quick
    if quick:
        seconds, ceiling_rates, our_rates = 3.0, [150], [50, 150]
        cap_levels, window = [50, 200], 2.0
    else:
        # a ramp stops at its first failure, so the high rates cost nothing where they fail
        seconds, ceiling_rates = 30.0, [100, 200, 300, 400, 500, 600, 700, 800]
        our_rates = [50, 100, 150, 200, 250, 300, 350, 400, 500, 600, 700, 800]
        cap_levels, window = [50, 100, 250, 500, 750, 1000, 1250, 1500], 5.0
        if args.media_workers > 1:
            cap_levels += [2000, 2500]
    started = time.monotonic()
    if args.capacity_only:
        capacity_only(cap_levels, window, quick, started, args.media_workers)
        return
    with tempfile.TemporaryDirectory(prefix="sip_load_") as tmp:
        workdir = Path(tmp)
        stream = workdir / "tone.ulaw"
        write_ulaw_tone(stream)
        print(
            f"Session establishment rate ({seconds:.0f} s runs, calls held {CALL_HOLD_MS} ms, RTP both ways)"
        )
        ceiling = establishment("sipp-uas", ceiling_rates, seconds, workdir, stream)
        ours = establishment("callcenter", our_rates, seconds, workdir, stream, args.media_workers)
        cap = None
        if not args.establishment_only:
            print(f"Session capacity (server sends 20 ms RTP on every call, {window:.0f} s window)")
            cap = capacity(cap_levels, window, workdir, args.media_workers)
    reg = None if args.skip_register or args.establishment_only else registration(quick)
    our_best = ours["max_rate_zero_failures"]
    ceiling_best = ceiling["max_rate_zero_failures"]
    passed = [s for s in ours["steps"] if s["passed"]]
    cpu_per_call = passed[-1]["cpu_ms_per_call"] if passed else None
    result = {
        "benchmark": "sip_load",
        "quick": quick,
        "rfc": "RFC 7502 terms: session establishment rate, session capacity",
        "media_workers": args.media_workers,
        "machine": {
            "cpus": os.cpu_count(),
            "note": "2 cores shared by server, SIPp, RTP receiver and other work",
        },
        "establishment": {
            "seconds_per_run": seconds,
            "call_hold_ms": CALL_HOLD_MS,
            "callcenter": ours,
            "sipp_uas_ceiling": ceiling,
            "fraction_of_ceiling": round(our_best / ceiling_best, 3) if ceiling_best else None,
            "cpu_ms_per_call_at_best_rate": cpu_per_call,
            "ceiling_note": ("the ceiling only shows the highest rate tried when it never failed"),
        },
        "capacity": cap,
        "registration": reg,
        "wall_s": round(time.monotonic() - started, 1),
    }
    RESULTS.mkdir(exist_ok=True)
    part = "_establishment" if args.establishment_only else ""
    out = RESULTS / f"sip_load{part}{suffix(quick, args.media_workers)}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print()
    print(f"{'figure':<44} {'value':>12}")
    print(f"{'establishment rate, ours (calls/s, 0 fail)':<44} {our_best:>12}")
    print(f"{'establishment rate, SIPp UAS ceiling':<44} {ceiling_best:>12}")
    frac = result["establishment"]["fraction_of_ceiling"]
    print(f"{'ours / ceiling':<44} {frac if frac is not None else '-':>12}")
    cpu_text = cpu_per_call if cpu_per_call is not None else "-"
    print(f"{'CPU ms per call (ours, best passing rate)':<44} {cpu_text:>12}")
    if cap is not None:
        print(f"{'session capacity (calls, ≤1 % late >5 ms)':<44} {cap['capacity_calls']:>12}")
    if reg and "error" not in reg:
        ratio = reg.get("ratio_vs_kamailio_1_worker")
        print(
            f"{'registration rate ours / Kamailio (1 worker)':<44} {ratio if ratio is not None else '-':>12}"
        )
    elif reg:
        print(f"registration bench failed: {reg['error']}")
    print(f"results written to {out} ({result['wall_s']} s)")


if __name__ == "__main__":
    main()
