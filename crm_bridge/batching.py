"""EventBatcher: turn a stream of single events into apply_events batches.

The bus hands events one at a time; committing one transaction per event would
cap ingest at a few hundred per second. The batcher collects up to
``max_batch`` events or ``max_delay`` seconds, whichever comes first, and
applies them in one transaction. A failed batch (database down longer than the
store's own retry window) is kept and retried — events are never dropped; the
queue is unbounded for the same reason, and its length is exposed for metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from crm_bridge.store import CrmStore

log = logging.getLogger(__name__)


class EventBatcher:
    def __init__(self, store: CrmStore, *, max_batch: int = 1000, max_delay: float = 0.05) -> None:
        self.store = store
        self.max_batch = max_batch
        self.max_delay = max_delay
        self._queue: asyncio.Queue[Mapping[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.applied = 0  # events handed to the store (metrics)

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="crm-event-batcher")

    def put(self, event: Mapping[str, Any]) -> None:
        """Queue one event dict (``Event.as_dict()``); never blocks."""
        self._queue.put_nowait(event)

    async def flush(self) -> None:
        """Wait until everything queued so far has been committed."""
        await self._queue.join()

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        self._closing = True
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_delay
            while len(batch) < self.max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), timeout))
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
                self._queue.task_done()
