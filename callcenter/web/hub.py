"""Fan-out of live messages to WebSocket connections.

Each connection has a bounded queue drained by its own sender task, so one
slow desktop never delays another or the event loop. A connection whose queue
overflows is closed (it will reconnect and fetch a fresh snapshot) rather than
silently losing messages in the middle of a stream. What goes out is decided
by the desk feed (desk_feed.py), which maps the bus's events to messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

QUEUE_LIMIT = 1000


class Connection:
    __slots__ = ("closed", "queue", "role", "subject")

    def __init__(self, subject: str, role: str) -> None:
        self.subject = subject
        self.role = role
        self.queue: asyncio.Queue[tuple[dict[str, Any], asyncio.Future[None] | None] | None] = (
            asyncio.Queue(QUEUE_LIMIT)
        )
        self.closed = False

    def put(self, message: dict[str, Any], sent: asyncio.Future[None] | None = None) -> None:
        """Queue ``message``; ``sent`` (if given) resolves once it is written to the socket."""
        if self.closed:
            return
        try:
            self.queue.put_nowait((message, sent))
        except asyncio.QueueFull:
            log.warning("websocket too slow, closing", extra={"subject": self.subject})
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)


class Hub:
    def __init__(self) -> None:
        self._agents: dict[str, set[Connection]] = defaultdict(set)
        self._supervisors: set[Connection] = set()
        self.on_desks: Callable[[str, int], None] | None = None  # (agent, open desks) after a change

    def add(self, conn: Connection) -> None:
        if conn.role == "supervisor":
            self._supervisors.add(conn)
        else:
            self._agents[conn.subject].add(conn)
            if self.on_desks is not None:
                self.on_desks(conn.subject, len(self._agents[conn.subject]))

    def remove(self, conn: Connection) -> None:
        self._supervisors.discard(conn)
        conns = self._agents.get(conn.subject)
        if conns is not None and conn in conns:
            conns.discard(conn)
            if not conns:
                del self._agents[conn.subject]
            if self.on_desks is not None:
                self.on_desks(conn.subject, len(conns))

    def to_agent(self, agent_id: str, message: dict[str, Any]) -> int:
        conns = self._agents.get(agent_id, ())
        for c in conns:
            c.put(message)
        return len(conns)

    def deliver_to_agent(self, agent_id: str, message: dict[str, Any]) -> list[asyncio.Future[None]]:
        """Like :meth:`to_agent`, with one future per connection that resolves when the
        message has been written to that desktop's socket (the screen-pop waits on it)."""
        loop = asyncio.get_running_loop()
        futures = []
        for c in self._agents.get(agent_id, ()):
            fut: asyncio.Future[None] = loop.create_future()
            c.put(message, fut)
            futures.append(fut)
        return futures

    def to_supervisors(self, message: dict[str, Any]) -> None:
        for c in self._supervisors:
            c.put(message)

    def close_all(self) -> None:
        """Server shutdown: end every stream so the HTTP server can stop."""
        for conn in [*self._supervisors, *(c for cs in self._agents.values() for c in cs)]:
            conn.close()
