"""What SRTP costs: per packet, and for concurrent sessions, plain vs SRTP in one run.

1. ``packet``: protect + unprotect of a 20 ms G.711 packet (172 bytes of RTP) through
   callcenter.media.srtp (libsrtp2 via pylibsrtp, AES_CM_128_HMAC_SHA1_80), in µs,
   beside building the same packet's header, the work the plain path does per packet.
2. ``sessions``: N pairs of RtpSessions in one MediaEngine (this process), each pair
   talking to itself over 127.0.0.1 (every session sends and receives 50 packets/s, so
   the process does both sides), for ``--window`` seconds; the process's CPU time per
   second of wall clock, plain and then with SRTP (``srtp=mandatory``), at each N.
   Also the share of packets sent more than 5 ms after their tick, and SRTP drops.

    python bench/srtp.py            # 50/100/200 pairs, 10 s windows → results/srtp.json
    python bench/srtp.py --quick    # < 1 minute → results/srtp_quick.json

The machine is shared (2 cores, other work): CPU shares are of one core and vary with
the neighbours; the ratio SRTP/plain in the same run is the figure to read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import struct
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callcenter.media import MediaEngine
from callcenter.media.srtp import SrtpContext, SrtpKeys, new_key


def packet_cost(count: int) -> dict[str, float]:
    key = new_key()
    tx = SrtpContext(SrtpKeys("AES_CM_128_HMAC_SHA1_80", key, key))
    rx = SrtpContext(SrtpKeys("AES_CM_128_HMAC_SHA1_80", key, key))  # the far end, same key
    hdr = struct.Struct("!BBHII")
    payload = bytes(160)
    t0 = time.perf_counter()
    plain = [hdr.pack(0x80, 0, i & 0xFFFF, i * 160 & 0xFFFFFFFF, 1234) + payload for i in range(count)]
    t1 = time.perf_counter()
    protected = [tx.protect(p) for p in plain]
    t2 = time.perf_counter()
    for p in protected:
        rx.unprotect(p)
    t3 = time.perf_counter()
    return {
        "packets": count,
        "build_header_us": (t1 - t0) / count * 1e6,
        "protect_us": (t2 - t1) / count * 1e6,
        "unprotect_us": (t3 - t2) / count * 1e6,
        "srtp_overhead_bytes": len(protected[0]) - len(plain[0]),
    }


async def session_cost(pairs: int, window: float, warmup: float, srtp: str) -> dict[str, Any]:
    width = 8 * pairs + 200  # room for ports other processes hold (the engine skips them)
    base = random.randrange(30000, 60000 - width) & ~1
    engine = MediaEngine("127.0.0.1", base, base + width - 1, srtp=srtp)
    await engine.start()
    sessions = []
    try:
        for _ in range(pairs):
            a, b = engine.allocate(), engine.allocate()
            answer = b.answer(a.offer())
            assert answer is not None and a.apply_answer(answer)
            sessions += [a, b]
        await asyncio.sleep(warmup)  # a benchmark window, not synchronisation
        before = {id(s): (s.stats.rx_packets, s.stats.tx_packets, s.stats.tx_late) for s in sessions}
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(window)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        rx = sum(s.stats.rx_packets - before[id(s)][0] for s in sessions)
        tx = sum(s.stats.tx_packets - before[id(s)][1] for s in sessions)
        late = sum(s.stats.tx_late - before[id(s)][2] for s in sessions)
        return {
            "mode": "srtp" if srtp != "off" else "plain",
            "pairs": pairs,
            "sessions": len(sessions),
            "cpu_share": cpu / wall,  # of one core
            "cpu_us_per_packet": cpu / max(1, rx + tx) * 1e6,  # send + receive, everything included
            "rx_packets_per_s": rx / wall,
            "expected_per_s": 50 * len(sessions),
            "late_fraction": late / max(1, tx),
            "srtp_failed": sum(s.stats.rx_srtp_failed for s in sessions),
        }
    finally:
        for s in sessions:
            s.close()
        await engine.stop()


async def run(levels: list[int], window: float, warmup: float) -> list[dict[str, Any]]:
    rows = []
    for pairs in levels:
        for srtp in ("off", "mandatory"):  # plain first, then SRTP, at each level
            row = await session_cost(pairs, window, warmup, srtp)
            rows.append(row)
            print(f"{row['mode']:>5} pairs={pairs:4d} cpu={row['cpu_share'] * 100:5.1f}% "
                  f"µs/pkt={row['cpu_us_per_packet']:5.1f} rx/s={row['rx_packets_per_s']:7.0f}"
                  f"/{row['expected_per_s']} late={row['late_fraction'] * 100:4.1f}% "
                  f"srtp_failed={row['srtp_failed']}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="finishes in < 1 minute")
    ap.add_argument("--levels", default="", help="comma-separated numbers of session pairs")
    ap.add_argument("--window", type=float, default=0.0, help="seconds measured per level")
    args = ap.parse_args()
    default = [50, 150] if args.quick else [50, 100, 200, 300]
    levels = [int(x) for x in args.levels.split(",") if x] or default
    window = args.window or (5.0 if args.quick else 10.0)
    warmup = 1.0 if args.quick else 2.0
    packet = packet_cost(50_000 if args.quick else 500_000)
    print(f"per packet: header {packet['build_header_us']:.2f} µs, protect {packet['protect_us']:.2f} µs, "
          f"unprotect {packet['unprotect_us']:.2f} µs, +{packet['srtp_overhead_bytes']} bytes", flush=True)
    rows = asyncio.run(run(levels, window, warmup))
    name = "srtp_quick.json" if args.quick else "srtp.json"
    out = Path(__file__).resolve().parent / "results" / name
    out.write_text(json.dumps({
        "benchmark": "srtp",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average_at_start": os.getloadavg(),
        "packet": packet,
        "window_s": window,
        "levels": rows,
    }, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
