"""``callcenter serve``: one asyncio loop for SIP, media, IVR, routing, CRM and HTTP.

SIGTERM and SIGINT stop the server cleanly: active calls get a BYE, pending
CRM events are committed, then the process exits 0.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from pathlib import Path

from callcenter.config import AppConfig
from callcenter.logs import setup_logging

log = logging.getLogger(__name__)

#: full collections only after this many young-generation ones (CPython's default is 10)
FULL_GC_EVERY = 100


def settle_gc() -> None:
    """Call once start-up is done. Everything allocated so far is long-lived: move it out
    of the GC's generations so collections never rescan it. Then make full collections
    rarer: every call leaves its completed SIP transactions for Timer J/L (32 s), so at
    300 calls/s about half a million objects are alive, and a full collection of them
    stalls the loop — media clock included — for ~0.2 s. With CPython's default they ran
    every ~2 s (8 % of the CPU, and the stalls made SIPp retransmit until the server
    collapsed, bench/sip_load.py); every ~15 s they cost ~1 %. Per-call objects hold no
    reference cycles (docs/sip.md), so nothing waits on these collections to be freed."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_GC_EVERY)


async def _main(cfg: AppConfig, flows_dir: Path | None) -> None:
    from callcenter.center import Center

    center = Center(cfg, flows_dir=flows_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await center.start()
    settle_gc()
    try:
        await stop.wait()
    finally:
        await center.stop()


def run_server(cfg: AppConfig, flows_dir: Path | None = None) -> int:
    from callcenter.cluster.node import resolve_node_id

    cluster = cfg.server.cluster  # a cluster node's id on every log line (docs/cluster.md)
    setup_logging(cfg.server.logging.level, cfg.server.logging.format,
                  node=resolve_node_id(cluster.node_id) if cluster.enabled else "")  # fmt: skip
    try:
        asyncio.run(_main(cfg, flows_dir))
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0
