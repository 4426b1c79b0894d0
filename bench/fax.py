"""Fax capacity: concurrent fax receptions over G.711 on one server, until a session fails.

The server side is ours, as ``callcenter serve`` runs it: the SIP user agent and the
media in worker processes (``rtp.workers: 2``), each call answered by the fax reception
(T.30 over PCMU, SpanDSP in the worker). The senders are SpanDSP fax machines with their
own SIP and RTP (tests/fax/sender.py) in a SEPARATE process, all calling at once (spread
over one second), each sending the same 1-page TIFF G4. A level passes when every fax
ends T.30 OK on both sides and every received page equals the page sent; the ramp stops
at the first level with a failure.

Printed per level: sessions, failures, wall time, and CPU per fax-second — the server's
CPU (SIP process plus media workers) over the seconds of fax audio received. Side by
side in the same run, the peer: the same level with media in the SIP process
(``rtp.workers: 1``), and the ratio of the two CPU figures.

    python bench/fax.py            # levels 10, 25, 50, 75, 100 → results/fax.json
    python bench/fax.py --quick    # 50 with workers, then the in-process peer → results/fax_quick.json

All traffic is 127.0.0.1. The machine's 2 cores are shared with the senders (and with
other work): figures are a lower bound; the load average at start is printed and saved.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callcenter.fax.reception import ReceiveOptions, receive
from callcenter.media.engine import MediaEngine
from callcenter.media.worker import MediaPool
from callcenter.sip.calls import Call
from callcenter.sip.transport import SipTransportLayer
from callcenter.sip.ua import UserAgent
from tests.fax.documents import differing_pages, make_document


# ----------------------------------------------------------------------------- senders
def _senders(target: tuple[str, int], doc: str, count: int, out: Any) -> None:
    from tests.fax.sender import FaxSender

    async def one(i: int) -> dict[str, Any]:
        await asyncio.sleep(i / max(count, 1))  # all within a second
        try:
            r = await FaxSender(doc, ani=f"4416329{i:05d}", max_seconds=180).send(target, "7000")
            return {"ok": r.ok, "pages": r.pages, "reason": r.reason}
        except Exception as exc:  # a sender that could not even call is a failed session
            return {"ok": False, "pages": 0, "reason": f"{type(exc).__name__}: {exc}"}

    async def main() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(one(i) for i in range(count))))

    t0 = time.process_time()
    results = asyncio.run(main())
    out.send({"results": results, "cpu_s": time.process_time() - t0})


# ----------------------------------------------------------------------------- one level
async def run_level(count: int, workers: int, doc: Path, work: Path) -> dict[str, Any]:
    base = 30000 + (os.getpid() % 500) * 20
    lo, hi = base, base + 4 * max(count, 50) + 1
    engine: MediaEngine | MediaPool = (MediaPool("127.0.0.1", lo, hi, workers) if workers > 1
                                       else MediaEngine("127.0.0.1", lo, hi))
    await engine.start()
    received: list[tuple[Any, Path, float]] = []

    async def on_call(call: Call) -> None:
        path = work / f"rx-{workers}-{count}-{len(received)}-{call.call_id[:8]}.tif"
        t = time.monotonic()
        result = await receive(call, str(path), ReceiveOptions(ident="BENCH"))
        received.append((result, path, time.monotonic() - t))

    ua = UserAgent(engine, on_call=on_call, max_calls=None)
    layer = SipTransportLayer([("udp", "127.0.0.1", 0)], ua.on_message)
    await layer.start()
    ua.attach(layer)
    await ua.start()
    port = layer.get("udp").local[1]
    cpu0 = time.process_time()
    worker_cpu0 = [s["cpu_seconds"] for s in await engine.stats()] if workers > 1 else []
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_senders, args=(("127.0.0.1", port), str(doc), count, child))
    t0 = time.monotonic()
    proc.start()
    sent = await asyncio.get_running_loop().run_in_executor(None, parent.recv)
    proc.join()
    deadline = time.monotonic() + 30
    while len(received) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    wall = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    if workers > 1:
        cpu += sum(s["cpu_seconds"] for s in await engine.stats()) - sum(worker_cpu0)
    await ua.stop()
    await layer.stop()
    await engine.stop()
    fax_seconds = sum(d for _r, _p, d in received)
    bad = [r for r, p, _d in received if not r.ok or r.pages != 1 or differing_pages(doc, p)]
    failures = (count - len(received)) + len(bad) + sum(1 for s in sent["results"] if not s["ok"])
    reasons = sorted({r.reason for r in bad} | {s["reason"] for s in sent["results"] if not s["ok"]})
    for _r, p, _d in received:
        p.unlink(missing_ok=True)
    return {
        "mode": "workers" if workers > 1 else "in_process",
        "sessions": count,
        "failures": failures,
        "reasons": reasons[:5],
        "wall_s": round(wall, 1),
        "fax_seconds": round(fax_seconds, 1),
        "server_cpu_s": round(cpu, 2),
        "cpu_ms_per_fax_s": round(1000 * cpu / fax_seconds, 2) if fax_seconds else None,
        "sender_cpu_s": round(sent["cpu_s"], 2),
    }


HEAD = f"{'mode':<11} {'sessions':>8} {'failures':>8} {'wall s':>7} {'fax s':>8} {'cpu ms/fax-s':>13}"


def row(r: dict[str, Any]) -> str:
    return (f"{r['mode']:<11} {r['sessions']:>8} {r['failures']:>8} {r['wall_s']:>7} "
            f"{r['fax_seconds']:>8} {r['cpu_ms_per_fax_s']!s:>13}")


async def run(levels: list[int], peer: int | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-fax-") as tmp:
        work = Path(tmp)
        doc = make_document(work / "page.tif", pages=1)
        for n in levels:
            r = await run_level(n, 2, doc, work)
            print(row(r), flush=True)
            out.append(r)
            if r["failures"]:
                print(f"  failures: {r['reasons']}")
                break
        if peer:
            r = await run_level(peer, 1, doc, work)
            print(row(r), flush=True)
            out.append(r)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="50 sessions and the peer, < 1 minute")
    ap.add_argument("--levels", type=str, default="", help="comma-separated session counts")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",") if x] or ([50] if args.quick else [10, 25, 50, 75, 100])
    peer = 50  # the in-process peer at the target level
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(HEAD)
    results = asyncio.run(run(levels, peer))
    held = max((r["sessions"] for r in results if r["mode"] == "workers" and not r["failures"]), default=0)
    ours = next((r for r in results if r["mode"] == "workers" and r["sessions"] == peer), None)
    theirs = next((r for r in results if r["mode"] == "in_process"), None)
    ratio = None
    if ours and theirs and ours["cpu_ms_per_fax_s"] and theirs["cpu_ms_per_fax_s"]:
        ratio = round(ours["cpu_ms_per_fax_s"] / theirs["cpu_ms_per_fax_s"], 2)
    print(f"sessions held with zero failures (media workers): {held}  (target >= 50)")
    print(f"CPU per fax-second, workers / in-process at {peer}: {ratio}")
    name = "fax_quick.json" if args.quick else "fax.json"
    out = Path(__file__).resolve().parent / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = {"bench": "fax", "quick": args.quick, "load_average": load, "cpu_count": os.cpu_count(),
               "held": held, "cpu_ratio_workers_vs_in_process": ratio, "levels": results}
    out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
