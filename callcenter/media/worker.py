"""Media in a separate worker process, for when one core is not enough.

Each worker process owns one ``MediaEngine`` with its own RTP port range and its own
shared clock; the SIP process keeps signalling and drives the worker over a pipe with a
small command protocol. Several workers (e.g. one per core, ports 20000-24999 and
25000-29999) scale media across cores; a call's two legs are allocated on the same worker
so a bridge stays a local relay.

Protocol (pickled tuples over a ``multiprocessing`` pipe, one request in flight per id):

    parent → worker   (req_id, method, args)          methods: see ``_Server.METHODS``
    worker → parent   (req_id, True, result) | (req_id, False, "ErrorType: message")
    worker → parent   (0, "event", (kind, session_id, data))   kind: "dtmf" | "play_done"

Session ids are the RTP port (unique within a worker). ``play`` returns at once with a
play id; its result (True finished / False interrupted) arrives as a ``play_done`` event,
which ``RemoteSession.play`` turns back into an awaitable. The ASR audio tap (``on_audio``)
is not forwarded across processes: speech recognition for a call should run in the
worker that carries its media (20 ms frames would cost a pipe message each).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing as mp
import os
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from callcenter.media.engine import MediaEngine
from callcenter.media.session import RtpSession

log = logging.getLogger(__name__)


class WorkerError(RuntimeError):
    """A command failed inside the worker (message carries the worker's error)."""


# ----------------------------------------------------------------------------- worker side
class _Server:
    METHODS = frozenset({
        "allocate", "answer", "update", "offer", "apply_answer", "set_hold", "play",
        "stop_playing", "start_recording", "stop_recording", "send_dtmf", "feed_info_dtmf",
        "bridge", "unbridge", "close", "stats", "engine_stats",
    })

    def __init__(self, conn: Connection, engine: MediaEngine) -> None:
        self.conn = conn
        self.engine = engine
        self.sessions: dict[int, RtpSession] = {}
        self.play_ids = itertools.count(1)
        self.done = asyncio.Event()

    def emit(self, kind: str, sid: int, data: Any) -> None:
        with contextlib.suppress(OSError):
            self.conn.send((0, "event", (kind, sid, data)))

    def on_readable(self) -> None:
        try:
            while self.conn.poll():
                req_id, method, args = self.conn.recv()
                self.handle(req_id, method, args)
        except (EOFError, OSError):
            self.done.set()  # parent went away: shut down

    def handle(self, req_id: int, method: str, args: tuple[Any, ...]) -> None:
        try:
            if method == "shutdown":
                self.conn.send((req_id, True, None))
                self.done.set()
                return
            if method not in self.METHODS:
                raise ValueError(f"unknown command {method!r}")
            result = getattr(self, "do_" + method, None)
            value = result(*args) if result else self.forward(method, *args)
            self.conn.send((req_id, True, value))
        except Exception as exc:  # reported to the caller, never fatal for the worker
            self.conn.send((req_id, False, f"{type(exc).__name__}: {exc}"))

    def forward(self, method: str, sid: int, *args: Any) -> Any:
        return getattr(self.sessions[sid], method)(*args)

    def do_allocate(self) -> int:
        s = self.engine.allocate()
        sid = s.local_port
        self.sessions[sid] = s
        emit = self.emit
        s.on_dtmf = lambda digit, source: emit("dtmf", sid, (digit, source))
        return sid

    def do_play(self, sid: int, source: Any, interrupt_on_dtmf: bool, loop: bool) -> int:
        play_id = next(self.play_ids)
        coro = self.sessions[sid].play(source, interrupt_on_dtmf=interrupt_on_dtmf, loop=loop)
        task = asyncio.ensure_future(coro)

        def finished(t: asyncio.Task[bool]) -> None:
            exc = None if t.cancelled() else t.exception()
            if exc is not None:  # e.g. AudioFormatError: raised again in the parent
                self.emit("play_done", sid, (play_id, f"{type(exc).__name__}: {exc}"))
            else:
                self.emit("play_done", sid, (play_id, (not t.cancelled()) and t.result()))

        task.add_done_callback(finished)
        return play_id

    def do_bridge(self, sid: int, other: int) -> None:
        self.sessions[sid].bridge(self.sessions[other])

    def do_close(self, sid: int) -> None:
        s = self.sessions.pop(sid, None)
        if s is not None:
            s.close()

    def do_stats(self, sid: int) -> dict[str, Any]:
        s = self.sessions[sid]
        d: dict[str, Any] = dict(s.stats.as_dict())
        d.update(last_rx=s.last_rx, codec=s.codec, remote=s.remote, local_port=s.local_port)
        return d

    def do_engine_stats(self) -> dict[str, Any]:
        return self.engine.stats()


def _set_realtime(priority: int) -> None:
    """SCHED_RR for the media process (what Asterisk -p / FreeSWITCH -rp do): the clock
    then preempts ordinary work on a busy host. Refused without CAP_SYS_NICE: logged."""
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(priority))
    except (AttributeError, OSError) as exc:
        log.warning("media worker: real-time scheduling refused (%s); running normally", exc)


def _serve(conn: Connection, host: str, port_min: int, port_max: int,
           options: dict[str, Any]) -> None:
    options = dict(options)
    rt_priority = int(options.pop("realtime_priority", 0) or 0)
    if rt_priority > 0:
        _set_realtime(rt_priority)

    async def main() -> None:
        engine = MediaEngine(host, port_min, port_max, **options)
        await engine.start()
        server = _Server(conn, engine)
        loop = asyncio.get_running_loop()
        loop.add_reader(conn.fileno(), server.on_readable)
        conn.send((0, "ready", None))
        try:
            await server.done.wait()
        finally:
            loop.remove_reader(conn.fileno())
            await engine.stop()

    asyncio.run(main())


# ----------------------------------------------------------------------------- parent side
class MediaWorker:
    """Handle on one media worker process; all methods are called from the parent's loop.

    ``options`` go to ``MediaEngine``, plus ``realtime_priority=N`` (1-99) to run the
    worker with SCHED_RR — measured in bench/media.py, it is what keeps 20 ms pacing
    within 5 ms on a host whose cores are busy with other work.
    """

    def __init__(self, host: str, port_min: int, port_max: int, **options: Any) -> None:
        self.host, self.port_min, self.port_max = host, port_min, port_max
        self.options = options
        self._conn: Connection | None = None
        self._proc: mp.process.BaseProcess | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ready: asyncio.Future[None] | None = None
        self._plays: dict[tuple[int, int], asyncio.Future[bool]] = {}
        # a play_done can be read in the same batch as the reply to "play", before the
        # awaiting coroutine has registered its future: keep it until it does
        self._early_plays: dict[tuple[int, int], bool | str] = {}
        self._dtmf: dict[int, Callable[[str, str], Any]] = {}

    async def start(self) -> None:
        ctx = mp.get_context("spawn")  # never fork a process that runs an event loop
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve, args=(child, self.host, self.port_min, self.port_max, self.options),
            name=f"media-worker-{self.port_min}", daemon=True,
        )
        self._proc.start()
        child.close()
        self._conn = parent
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        loop.add_reader(parent.fileno(), self._on_readable)
        await asyncio.wait_for(self._ready, 30)

    async def stop(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(WorkerError, OSError, asyncio.TimeoutError):
            await asyncio.wait_for(self.call("shutdown"), 5)
        asyncio.get_running_loop().remove_reader(self._conn.fileno())
        self._conn.close()
        self._conn = None
        if self._proc is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._proc.join, 5)
            if self._proc.is_alive():
                self._proc.kill()
        for fut in [*self._pending.values(), *self._plays.values()]:
            if not fut.done():
                fut.set_exception(WorkerError("media worker stopped"))
        self._pending.clear()
        self._plays.clear()

    def _on_readable(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            while conn.poll():
                req_id, status, value = conn.recv()
                self._dispatch(req_id, status, value)
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(conn.fileno())
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(WorkerError("media worker died"))

    def _dispatch(self, req_id: int, status: Any, value: Any) -> None:
        if status == "ready":
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
        elif status == "event":
            kind, sid, data = value
            if kind == "dtmf":
                cb = self._dtmf.get(sid)
                if cb is not None:
                    cb(*data)
            elif kind == "play_done":
                fut = self._plays.pop((sid, data[0]), None)
                if fut is None:
                    self._early_plays[(sid, data[0])] = data[1]
                elif not fut.done():
                    if isinstance(data[1], str):
                        fut.set_exception(WorkerError(data[1]))
                    else:
                        fut.set_result(data[1])
        else:
            fut = self._pending.pop(req_id, None)
            if fut is None or fut.done():
                return
            if status:
                fut.set_result(value)
            else:
                fut.set_exception(WorkerError(value))

    async def call(self, method: str, *args: Any) -> Any:
        if self._conn is None:
            raise WorkerError("media worker not running")
        req_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        self._conn.send((req_id, method, args))
        return await fut

    async def allocate(self) -> RemoteSession:
        sid = await self.call("allocate")
        return RemoteSession(self, sid)


class RemoteSession:
    """The ``RtpSession`` API, asynchronous, for a session living in a worker process."""

    __slots__ = ("_worker", "sid")

    def __init__(self, worker: MediaWorker, sid: int) -> None:
        self._worker = worker
        self.sid = sid

    @property
    def local_port(self) -> int:
        return self.sid

    @property
    def on_dtmf(self) -> Callable[[str, str], Any] | None:
        return self._worker._dtmf.get(self.sid)

    @on_dtmf.setter
    def on_dtmf(self, cb: Callable[[str, str], Any] | None) -> None:
        if cb is None:
            self._worker._dtmf.pop(self.sid, None)
        else:
            self._worker._dtmf[self.sid] = cb

    async def answer(self, offer_sdp: str) -> str | None:
        return await self._worker.call("answer", self.sid, offer_sdp)

    async def update(self, offer_sdp: str) -> str | None:
        return await self._worker.call("update", self.sid, offer_sdp)

    async def offer(self) -> str:
        return await self._worker.call("offer", self.sid)

    async def apply_answer(self, answer_sdp: str) -> bool:
        return await self._worker.call("apply_answer", self.sid, answer_sdp)

    async def set_hold(self, on: bool) -> None:
        await self._worker.call("set_hold", self.sid, on)

    async def play(self, source: Any, *, interrupt_on_dtmf: bool = False,
                   loop: bool = False) -> bool:
        play_id = await self._worker.call("play", self.sid, source, interrupt_on_dtmf, loop)
        key = (self.sid, play_id)
        if key in self._worker._early_plays:
            result = self._worker._early_plays.pop(key)
            if isinstance(result, str):
                raise WorkerError(result)
            return result
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._worker._plays[key] = fut
        return await fut

    async def stop_playing(self) -> None:
        await self._worker.call("stop_playing", self.sid)

    async def start_recording(self, path: str) -> None:
        await self._worker.call("start_recording", self.sid, str(path))

    async def stop_recording(self) -> tuple[str, int, str, float] | None:
        return await self._worker.call("stop_recording", self.sid)

    async def send_dtmf(self, digits: str) -> None:
        await self._worker.call("send_dtmf", self.sid, digits)

    async def feed_info_dtmf(self, digit: str) -> None:
        await self._worker.call("feed_info_dtmf", self.sid, digit)

    async def bridge(self, other: RemoteSession) -> None:
        if other._worker is not self._worker:
            raise ValueError("bridged legs must live on the same media worker")
        await self._worker.call("bridge", self.sid, other.sid)

    async def unbridge(self) -> None:
        await self._worker.call("unbridge", self.sid)

    async def stats(self) -> dict[str, Any]:
        """Counters plus ``last_rx`` (the worker's monotonic clock — same host clock)."""
        return await self._worker.call("stats", self.sid)

    async def close(self) -> None:
        self._worker._dtmf.pop(self.sid, None)
        await self._worker.call("close", self.sid)
