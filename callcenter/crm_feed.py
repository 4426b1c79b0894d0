"""Feeds the event bus into the CRM store in batches.

Events are applied in batches (whatever accumulated while the previous batch
was being written) because one transaction per event would cap the call rate
at the database's commit rate. The store applies events idempotently, so a
batch that failed part-way is simply retried whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from callcenter.bus import EventBus
from callcenter.events import Event

log = logging.getLogger(__name__)

MAX_BATCH = 500
RETRY_S = 1.0


class CrmFeed:
    def __init__(self, store: Any) -> None:
        self.store = store
        self._pending: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.applied = 0

    @property
    def backlog(self) -> int:
        return len(self._pending)

    def start(self, bus: EventBus) -> None:
        bus.subscribe("crm", self._on_event)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="crm-feed")

    def _on_event(self, event: Event) -> None:
        self._pending.append(event.as_dict())
        self._idle.clear()
        self._wake.set()

    async def flushed(self) -> None:
        """Wait until every event received so far is committed (tests, shutdown)."""
        await self._idle.wait()

    async def _run(self) -> None:
        while True:
            if not self._pending:
                self._idle.set()
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = self._pending[:MAX_BATCH]
            try:
                await self.store.apply_events(batch)
            except Exception:
                log.exception("CRM write failed; retrying %d events", len(batch))
                await asyncio.sleep(RETRY_S)  # back off; the events stay queued in order
                continue
            del self._pending[: len(batch)]
            self.applied += len(batch)

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 30.0)
