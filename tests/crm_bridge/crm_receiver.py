"""A real webhook receiver for the outbox tests: uvicorn + Starlette on 127.0.0.1.

It verifies each signature, applies each Idempotency-Key once (as a real
receiver must with at-least-once delivery) and counts everything, so tests can
prove zero loss (every key applied) and zero duplicates (applied exactly once)
while also seeing the redeliveries that made it necessary. It can be stopped and
started again on the same port (a sink that is down, then up), and can hold its
responses (a delivery in flight when the sender is killed).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import socket
from collections.abc import Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crm_bridge.signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


class WebhookReceiver:
    def __init__(self, secret: str, status: int = 200) -> None:
        self.secret = secret
        self.status = status  # what to answer (set to 500/400 to simulate trouble)
        self.port = 0
        self.requests: list[str] = []  # every accepted request's key, in order
        self.applied: dict[str, dict[str, Any]] = {}  # key -> payload, first time only
        self.apply_count: collections.Counter[str] = collections.Counter()
        self.bad_signatures = 0
        self.held = 0
        self.release = asyncio.Event()
        self.release.set()  # not holding by default
        self.hold_after: int | None = None  # start holding once this many were applied
        self._changed = asyncio.Condition()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _hook(self, request: Request) -> JSONResponse:
        body = await request.body()
        ok = verify(
            self.secret,
            request.headers.get(TIMESTAMP_HEADER, ""),
            body,
            request.headers.get(SIGNATURE_HEADER, ""),
        )
        key = request.headers.get(IDEMPOTENCY_HEADER, "")
        async with self._changed:
            if not ok or not key:
                self.bad_signatures += 1
                self._changed.notify_all()
                return JSONResponse({"error": "bad signature"}, status_code=401)
            if self.status >= 300:
                self.requests.append(key)
                self._changed.notify_all()
                return JSONResponse({"error": "simulated"}, status_code=self.status)
            self.requests.append(key)
            if key not in self.applied:  # the receiver-side dedup by idempotency key
                self.applied[key] = json.loads(body)
                self.apply_count[key] += 1
            hold = self.hold_after is not None and len(self.applied) > self.hold_after
            if hold:
                self.release.clear()
                self.held += 1
            self._changed.notify_all()
        if hold:
            await self.release.wait()
        return JSONResponse({"ok": True})

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        async def _wait() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(_wait(), timeout)

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(128)  # accepting (into the backlog) from here on
        self.port = sock.getsockname()[1]
        app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])
        # No log_config or log_level: uvicorn would apply them to the process-wide "uvicorn"
        # loggers (no propagation, level ERROR) for the rest of the test session, and later
        # tests read those loggers through caplog.
        config = uvicorn.Config(app, log_config=None, lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        # The test runner owns SIGINT/SIGTERM, not this embedded server.
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))

    async def stop(self) -> None:
        """Close the port: senders now get 'connection refused'."""
        self.release.set()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
            for s in self._server.servers:
                for sock in s.sockets:
                    sock.close()
        self._server = None
        self._task = None
