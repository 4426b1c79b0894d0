"""Whether this node reaches Redis and PostgreSQL, checked in the background so
/healthz (synchronous, cheap) and the SIP OPTIONS answer Kamailio probes with can
read it without I/O."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)


class Reachability:
    def __init__(self, redis: Redis, engine: AsyncEngine | None, every_s: float) -> None:
        self.redis = redis
        self.engine = engine
        self.every_s = every_s
        self.redis_ok = False
        self.postgres_ok = False
        self.checked_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self.checked = asyncio.Event()  # set after the first round

    @property
    def ok(self) -> bool:
        return self.redis_ok and self.postgres_ok

    def as_dict(self) -> dict[str, Any]:
        return {"redis": self.redis_ok, "postgres": self.postgres_ok,
                "checked_s_ago": round(time.time() - self.checked_at, 1)}  # fmt: skip

    async def check(self) -> None:
        timeout = max(0.2, self.every_s)
        redis_ok = postgres_ok = False
        try:
            redis_ok = bool(await asyncio.wait_for(self.redis.ping(), timeout))
        except Exception as exc:  # refused, reset, timed out: all mean "not reachable now"
            log.debug("redis unreachable: %s", exc)
        if self.engine is not None:
            try:
                async with asyncio.timeout(timeout), self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                postgres_ok = True
            except Exception as exc:
                log.debug("database unreachable: %s", exc)
        pairs = (("redis", self.redis_ok, redis_ok), ("postgres", self.postgres_ok, postgres_ok))
        for name, old, new in pairs:
            if old != new and self.checked.is_set():
                log.warning("%s %s", name, "reachable again" if new else "unreachable")
        self.redis_ok, self.postgres_ok, self.checked_at = redis_ok, postgres_ok, time.time()
        self.checked.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cluster-reach")

    async def _run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.every_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
