"""The bus across nodes: every local event is published on one Redis pub/sub channel,
and every other node's events are published into the local bus.

Why pub/sub and not a stream: the bridge feeds live views (desks, supervisor boards,
today's figures) and each node writes its own events to PostgreSQL, so nothing depends
on a remote event being replayed after a gap; a stream would add trimming and consumer
offsets for no reader that needs them. What a node misses while Redis is away is in
PostgreSQL (the records) and comes back to the views with the next events.

A remote event is remembered by id: the bridge does not send it back out, and
``remote(event)`` lets the CRM writer skip it (its own node has written it already).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from callcenter.bus import EventBus
from callcenter.events import Event

log = logging.getLogger(__name__)

REMEMBERED = 50_000  # remote event ids kept (a few minutes of a busy deployment)
RETRY_S = 0.5  # first reconnect delay after Redis went away; doubles up to 5 s


class EventBridge:
    def __init__(self, redis: Redis, channel: str, node: str, bus: EventBus) -> None:
        self.redis = redis
        self.channel = channel
        self.node = node
        self.bus = bus
        self._remote_ids: dict[str, str] = {}  # event id -> the node that published it
        self._remote_order: deque[str] = deque()
        self._reader: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()  # set while the reader listens (tests wait on it)
        self.stats = {"sent": 0, "received": 0, "send_failed": 0, "malformed": 0, "reconnects": 0}

    def remote(self, event: Event) -> bool:
        """True for an event another node published (already in PostgreSQL by that node)."""
        return event.event_id in self._remote_ids

    def origin(self, event: Event) -> str | None:
        """The node that published a remote event (None for this node's own)."""
        return self._remote_ids.get(event.event_id)

    def start(self) -> None:
        self.bus.subscribe("cluster-bridge", self._send)
        self._reader = asyncio.create_task(self._read(), name="cluster-bridge-read")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _send(self, event: Event) -> None:
        if event.event_id in self._remote_ids:
            return  # it came from another node: never echo it back
        data = json.dumps({"node": self.node, "event": event.as_dict()}, default=str)
        try:
            await self.redis.publish(self.channel, data)
            self.stats["sent"] += 1
        except (RedisError, OSError) as exc:
            # The local node goes on (its CRM writes do not pass here); other nodes' views
            # miss this event. Counted and logged once per failure burst.
            if self.stats["send_failed"] == 0 or self.stats["sent"] > 0:
                log.warning("cluster bridge: cannot publish to Redis: %s", exc)
            self.stats["send_failed"] += 1
            self.stats["sent"] = 0

    def _remember(self, event_id: str, node: str) -> None:
        self._remote_ids[event_id] = node
        self._remote_order.append(event_id)
        if len(self._remote_order) > REMEMBERED:
            self._remote_ids.pop(self._remote_order.popleft(), None)

    def _deliver(self, raw: Any) -> None:
        try:
            payload = json.loads(raw)
            if payload.get("node") == self.node:
                return
            event = Event.from_dict(payload["event"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # Another version's event, or garbage on the channel: counted and logged, never a crash.
            self.stats["malformed"] += 1
            log.warning("cluster bridge: unreadable message skipped (%s): %.200r", exc, raw)
            return
        self._remember(event.event_id, str(payload.get("node") or ""))
        self.stats["received"] += 1
        self.bus.publish(event)

    async def _read(self) -> None:
        delay = RETRY_S
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.subscribed.set()
                delay = RETRY_S
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._deliver(message["data"])
            except (RedisError, OSError) as exc:
                self.subscribed.clear()
                self.stats["reconnects"] += 1
                log.warning("cluster bridge: Redis subscription lost (%s); retrying in %.1f s", exc, delay)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(5.0, delay * 2)
