"""HTTP resource limits: request body size per route, and password hashes in flight.

Without them one unauthenticated client could make the server read and parse a 100 MB
login body (over 1 GB at peak), or start any number of argon2 verifications at 64 MiB each.

* :class:`BodyLimit` (ASGI middleware) answers **413** as soon as a request declares, or
  has streamed, more than its route's limit: a declared ``Content-Length`` is refused before
  a byte of the body is read, and a chunked body is counted as it arrives and cut off at the
  limit, so the rest is never read.
* :class:`HashingSlots` runs at most ``concurrent`` password verifications at once, lets at
  most ``queue`` more wait, and refuses the rest at once (the login answers **429**).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit", "HashingBusy", "HashingSlots"]

log = logging.getLogger("callcenter.web.limits")

T = TypeVar("T")


class BodyLimit:
    """Per-route request body limits: ``routes`` maps an exact path to its limit in bytes;
    every other path gets ``default``."""

    def __init__(self, app: ASGIApp, *, default: int, routes: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.default = default
        self.routes = dict(routes or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.routes.get(scope["path"], self.default)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(send, limit)
            return
        seen = 0
        refused = False  # our 413 went out (or the app had already answered): stop the app
        started = False

        async def counted() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    refused = True
                    if not started:
                        await _too_large(send, limit)
                    return {"type": "http.disconnect"}  # the app stops reading; nothing more is
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 is the answer; the app's own is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not refused:
                raise
            # The app saw the body end early and gave up (e.g. ClientDisconnect): expected.
            log.debug("request body over the limit cut off", extra={"path": scope["path"]})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP server rejects a malformed one before we run
    return None


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body larger than {limit} bytes"}).encode()
    await send({
        "type": "http.response.start",
        "status": 413,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close")],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class HashingBusy(Exception):
    """Every hashing slot is taken and the queue is full."""


class HashingSlots:
    """A bounded pool for slow password hashing in worker threads."""

    def __init__(self, concurrent: int = 2, queue: int = 16) -> None:
        if concurrent < 1 or queue < 0:
            raise ValueError("need concurrent >= 1 and queue >= 0")
        self.concurrent = concurrent
        self.queue = queue
        self._running = asyncio.Semaphore(concurrent)
        self.in_flight = 0  # running + waiting

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self.in_flight >= self.concurrent + self.queue:
            raise HashingBusy
        self.in_flight += 1
        try:
            async with self._running:
                return await asyncio.to_thread(fn, *args)
        finally:
            self.in_flight -= 1
