"""What the SIP benchmarks (sip_load, call_path, sip_register) share: free loopback ports
and the SIPp arguments every run of theirs repeats.

Ports come from 32000-39990: away from the demo RTP range (20000-29999), the ranges the
benchmarks give our media engine, and the kernel's ephemeral range (where SIPp's and the
servers' own unbound sockets land).
"""

from __future__ import annotations

import csv
import os
import random
import socket
import struct
from pathlib import Path

HOST = "127.0.0.1"
PORTS = (32000, 39990)


def free_udp_port(
    *, even: bool = False, span: int = 1, tcp: bool = False, ports: tuple[int, int] = PORTS
) -> int:
    """The first of ``span`` consecutive ports in ``ports`` free now on 127.0.0.1 for UDP
    (and TCP too when ``tcp``: a SIP server listens on both). Free *now*: another process
    may still take it before the caller binds, so callers bind promptly and runs are short.
    The tests' peers use it too (tests/support/ports.py)."""
    for _ in range(500):
        base = random.randrange(*ports)
        if even:
            base &= ~1
        socks: list[socket.socket] = []
        try:
            for p in range(base, base + span):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM) if tcp else (socket.SOCK_DGRAM,):
                    s = socket.socket(socket.AF_INET, kind)
                    socks.append(s)
                    s.bind((HOST, p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no free port in {ports[0]}-{ports[1]} on {HOST}")


def sipp(*, port: int | None = None, media: bool = True, loops: int = 10000) -> list[str]:
    """``sipp`` on loopback with its signalling port (a free one unless given) and, with
    ``media``, four free media ports from an even one (RTP/RTCP for audio and video), no
    keyboard, and ``loops`` messages received/scheduled per cycle (its default of 1000
    throttles SIPp itself at high rates)."""
    port = free_udp_port() if port is None else port
    args = ["sipp", "-i", HOST, "-p", str(port), "-nostdin",
            "-max_recv_loops", str(loops), "-max_sched_loops", str(loops)]  # fmt: skip
    if media:
        args += ["-mi", HOST, "-mp", str(free_udp_port(even=True, span=4))]
    return args


def limits(timeout_s: float) -> list[str]:
    """Stop after ``timeout_s`` and count that as an error (non-zero exit status)."""
    return ["-timeout", f"{int(timeout_s)}s", "-timeout_error"]


def stats(path: Path, every_s: int = 60) -> list[str]:
    """Write SIPp's cumulative counters to ``path`` (read them with ``last_stat``)."""
    return ["-trace_stat", "-stf", str(path), "-fd", str(every_s)]


def last_stat(path: Path) -> dict[str, str]:
    """The final row of SIPp's -trace_stat CSV (cumulative counters); {} when none."""
    if not path.exists():
        return {}
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    return rows[-1] if rows else {}


def call_counts(last: dict[str, str], rc: int) -> dict[str, int]:
    """SIPp's exit status and cumulative call counters from a ``last_stat`` row."""
    return {
        "sipp_rc": rc,
        "successful": int(last.get("SuccessfulCall(C)", 0) or 0),
        "failed": int(last.get("FailedCall(C)", 0) or 0),
        "retransmissions": int(last.get("Retransmissions(C)", 0) or 0),
    }


def proc_cpu(pid: int, *, children: bool = True) -> float:
    """User + system CPU seconds of a process so far (0 once it is gone), plus its live
    children's (the server's media worker processes) unless ``children=False``."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2 :].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    if children:
        try:
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            kids = []
        total += sum(proc_cpu(int(k), children=False) for k in kids)
    return total


def write_dtmf_pcap(path: Path, digit_event: int = 4) -> Path:
    """A capture SIPp can replay: 5 PCMU silence packets, then RFC 4733 digit ``4``.

    Silence first so the server's RTP session has latched before the event starts; the
    event is 8 updates 20 ms apart (160 ms) and three end packets, as RFC 4733 §2.5.1.4
    sends them. SIPp takes the RTP payloads and timing; it rewrites addresses and ports.
    """
    ssrc, seq, ts = 0x0BE4C4A1, 1000, 16000
    packets: list[tuple[float, bytes]] = []
    t = 0.0
    for _ in range(5):
        packets.append((t, struct.pack("!BBHII", 0x80, 0, seq, ts, ssrc) + b"\xff" * 160))
        seq, ts, t = seq + 1, ts + 160, t + 0.02
    start_ts = ts
    for i in range(8):
        marker = 0x80 if i == 0 else 0
        payload = struct.pack("!BBH", digit_event, 10, 160 * (i + 1))
        packets.append((t, struct.pack("!BBHII", 0x80, marker | 101, seq, start_ts, ssrc) + payload))
        seq, t = seq + 1, t + 0.02
    for _ in range(3):
        payload = struct.pack("!BBH", digit_event, 0x80 | 10, 160 * 9)
        packets.append((t, struct.pack("!BBHII", 0x80, 101, seq, start_ts, ssrc) + payload))
        seq, t = seq + 1, t + 0.001
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]  # Ethernet link type
    for when, rtp in packets:
        udp = struct.pack("!HHHH", 40000, 40000, 8 + len(rtp), 0) + rtp
        ip_header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                                socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.1"))  # fmt: skip
        frame = b"\x00" * 12 + b"\x08\x00" + ip_header + udp
        sec = int(1_700_000_000 + when)
        usec = round((when % 1) * 1e6)
        out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))
    return path
