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


async def _main(cfg: AppConfig, flows_dir: Path | None) -> None:
    from callcenter.center import Center

    center = Center(cfg, flows_dir=flows_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await center.start()
    # Everything allocated at start-up is long-lived: move it out of the GC's
    # generations so collections stay short and never stall the media clock.
    gc.collect()
    gc.freeze()
    try:
        await stop.wait()
    finally:
        await center.stop()


def run_server(cfg: AppConfig, flows_dir: Path | None = None) -> int:
    setup_logging(cfg.server.logging.level, cfg.server.logging.format)
    try:
        asyncio.run(_main(cfg, flows_dir))
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0
