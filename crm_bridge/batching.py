"""EventBatcher: turn a stream of single events into apply_events batches.

The bus hands events one at a time; committing one transaction per event would
cap ingest at a few hundred per second. The batcher collects up to
``max_batch`` events or ``max_delay`` seconds, whichever comes first, and
applies them in one transaction; under a backlog batches grow by themselves.
With ``writers`` > 1 (useful on PostgreSQL) events are partitioned by contact
over that many flush loops, so one loop's database round trips overlap another's
Python work, and two loops never wait on each other's per-contact locks.

A failed batch (database down longer than the store's own retry window) is kept
and retried — events are never dropped; the queues are unbounded for the same
reason, and their length is exposed as ``backlog`` for metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Mapping
from typing import Any

from crm_bridge.store import CrmStore

log = logging.getLogger(__name__)


class EventBatcher:
    def __init__(
        self, store: CrmStore, *, max_batch: int = 2000, max_delay: float = 0.05, writers: int = 1
    ) -> None:
        if writers < 1 or max_batch < 1 or max_delay < 0:
            raise ValueError("EventBatcher: writers and max_batch must be >= 1, max_delay >= 0")
        self.store = store
        self.max_batch = max_batch
        self.max_delay = max_delay
        self._queues: list[asyncio.Queue[Mapping[str, Any]]] = [asyncio.Queue() for _ in range(writers)]
        self._tasks: list[asyncio.Task[None]] = []
        self.applied = 0  # events handed to the store (metrics)

    @property
    def backlog(self) -> int:
        return sum(q.qsize() for q in self._queues)

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(q), name=f"crm-event-batcher-{i}")
                for i, q in enumerate(self._queues)
            ]

    def put(self, event: Mapping[str, Any]) -> None:
        """Queue one event dict (``Event.as_dict()``); never blocks."""
        contact = event.get("contact_id") if isinstance(event, Mapping) else None
        # crc32, not hash(): stable across processes, so a contact always maps to one loop
        i = zlib.crc32(str(contact or "").encode()) % len(self._queues)
        self._queues[i].put_nowait(event)

    async def flush(self) -> None:
        """Wait until everything queued so far has been committed."""
        for q in self._queues:
            await q.join()

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        await self.flush()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _run(self, queue: asyncio.Queue[Mapping[str, Any]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + self.max_delay
            while len(batch) < self.max_batch:
                if not queue.empty():
                    batch.append(queue.get_nowait())
                    continue
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), timeout))
                except TimeoutError:
                    break
            delay = 0.5
            while True:
                try:
                    await self.store.apply_events(batch)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("CRM batch of %d events failed; keeping it, retrying", len(batch))
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
            self.applied += len(batch)
            for _ in batch:
                queue.task_done()
