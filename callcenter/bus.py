"""The event bus: publish never waits on a consumer.

Each subscriber gets its own unbounded asyncio queue and task, so a slow
consumer (a database write) delays only itself, and a crashing handler is
logged without taking the bus down.

An *inline* subscriber (``subscribe_inline``) is instead called inside
``publish``, in publish order. It is for consumers that only hand the event on
without waiting (the desk feed puts a message on WebSocket queues): they see
every event in the same step as the state change it announces, and may return
futures that resolve when the event has been delivered. ``publish`` returns
those futures, so a producer that must know (the screen-pop before the phone
rings) can wait on them; everyone else ignores the return value.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable

from callcenter.events import Event

log = logging.getLogger(__name__)

Handler = Callable[[Event], Awaitable[None] | None]
# An inline handler must not block; it returns the futures of deliveries the
# publisher may wait for (none for most events).
InlineHandler = Callable[[Event], list[asyncio.Future[None]] | None]


class _Subscription:
    __slots__ = ("handler", "name", "queue", "task", "types")

    def __init__(self, name: str, handler: Handler, types: frozenset[str] | None) -> None:
        self.name = name
        self.handler = handler
        self.types = types
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None


class EventBus:
    """In-process bus for a single node."""

    def __init__(self) -> None:
        self._subs: list[_Subscription] = []
        self._inline: list[tuple[str, InlineHandler, frozenset[str] | None]] = []
        self._closed = False

    def subscribe(
        self, name: str, handler: Handler, types: Iterable[type[Event]] | None = None
    ) -> None:
        """Register ``handler``; it is called in publish order, one event at a time."""
        wanted = frozenset(t.__name__ for t in types) if types is not None else None
        sub = _Subscription(name, handler, wanted)
        sub.task = asyncio.get_running_loop().create_task(self._pump(sub), name=f"bus:{name}")
        self._subs.append(sub)

    def subscribe_inline(
        self, name: str, handler: InlineHandler, types: Iterable[type[Event]] | None = None
    ) -> None:
        """Register ``handler`` to be called inside ``publish`` (see the module docstring)."""
        wanted = frozenset(t.__name__ for t in types) if types is not None else None
        self._inline.append((name, handler, wanted))

    def publish(self, event: Event) -> list[asyncio.Future[None]]:
        """Hand ``event`` to every subscriber; returns the delivery futures of inline ones."""
        if self._closed:
            log.warning("event after bus close dropped from delivery: %s", event.type)
            return []
        delivered: list[asyncio.Future[None]] = []
        for name, handler, types in self._inline:
            if types is None or event.type in types:
                try:
                    delivered.extend(handler(event) or ())
                except Exception:
                    log.exception("inline subscriber %s failed on %s", name, event.type)
        for sub in self._subs:
            if sub.types is None or event.type in sub.types:
                sub.queue.put_nowait(event)
        return delivered

    async def drain(self) -> None:
        """Wait until every subscriber has handled everything published so far."""
        for sub in self._subs:
            await sub.queue.join()

    async def close(self) -> None:
        await self.drain()
        self._closed = True
        for sub in self._subs:
            sub.queue.put_nowait(None)
        for sub in self._subs:
            if sub.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await sub.task

    async def _pump(self, sub: _Subscription) -> None:
        while True:
            event = await sub.queue.get()
            try:
                if event is None:
                    return
                result = sub.handler(event)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("subscriber %s failed on %s", sub.name, getattr(event, "type", "?"))
            finally:
                sub.queue.task_done()
