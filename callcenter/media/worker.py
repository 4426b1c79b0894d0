"""Media in worker processes, for when one core is not enough (``rtp.workers: N``).

Each worker process owns one ``MediaEngine`` with its own slice of the RTP port range and
its own shared clock. The SIP process keeps everything else, and a call leg's media there
is a ``ProxySession``: the same API as ``RtpSession``, so the SIP layer, the switchboard
and the IVR cannot tell them apart.

What stays in the SIP process, so that the SIP layer can answer an INVITE at once:

- port allocation: the SIP process binds the RTP socket in the worker's range (errors are
  immediate, as in-process) and passes the bound socket to the worker (SCM_RIGHTS);
- offer/answer: ``SdpNegotiator`` builds our SDP; the worker receives only the outcome.

Everything else is a command down a pipe, fire-and-forget, in order (the pipe keeps
order, so "bridge" after "adopt", "close" after "stop_recording", always). Answers come
back as events: DTMF digits, a prompt finished, a recording's result, the audio frames an
IVR speech step listens to (batched: one message per clock slot for every listening call),
and once a second the time each call last received RTP (the SIP layer's media timeout).

Protocol (pickled tuples over a ``multiprocessing`` pipe, a Unix socket pair):

    parent → worker   (req_id, method, args)      req_id 0: no reply wanted
    worker → parent   (req_id, True, result) | (req_id, False, "ErrorType: message")
    worker → parent   (0, "event", (kind, data))   kind: dtmf, play_done, audio, rx, error

Session ids are the RTP port (unique within a worker). A call's two legs must share a
worker to be bridged (``MediaPool.allocate(near=...)``): the bridge is a local relay.
The worker ignores SIGINT/SIGTERM: it lives as long as its pipe, so a Ctrl-C or a
SIGTERM to the process group lets the server end its calls with BYE before media stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing as mp
import os
import signal
import socket
import weakref
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.reduction import recvfds, sendfds
from typing import Any

from callcenter.media.audio_files import AudioFormatError
from callcenter.media.engine import MediaEngine
from callcenter.media.interface import AudioCallback, DtmfCallback, PlaySource, Recording
from callcenter.media.negotiation import OfferAnswerMixin, SdpNegotiator
from callcenter.media.ports import NoFreePortError, PortRange
from callcenter.media.sdp import Negotiated
from callcenter.media.session import RtpSession, hold_callback

log = logging.getLogger(__name__)
RX_REPORT_S = 1.0  # how often the worker reports each call's last received RTP


class WorkerError(RuntimeError):
    """A command failed inside the worker, or the worker is gone."""


def _raised_again(kind: str, message: str) -> Exception:
    """A prompt the worker cannot play fails as it does in process (AudioFormatError, a
    ValueError, which callers catch); anything else is a WorkerError naming the type."""
    if kind == AudioFormatError.__name__:
        return AudioFormatError(message)
    return WorkerError(f"{kind}: {message}")


# ----------------------------------------------------------------------------- worker side
class _Server:
    def __init__(self, conn: Connection, engine: MediaEngine) -> None:
        self.conn = conn
        self.fds = socket.socket(fileno=os.dup(conn.fileno()))  # for SCM_RIGHTS only
        self.engine = engine
        self.sessions: dict[int, RtpSession] = {}
        self.done = asyncio.Event()
        self._audio: list[tuple[int, bytes]] = []
        self._reported_rx: dict[int, float] = {}

    def emit(self, kind: str, data: Any) -> None:
        with contextlib.suppress(OSError):
            self.conn.send((0, "event", (kind, data)))

    def on_readable(self) -> None:
        try:
            while self.conn.poll():
                req_id, method, args = self.conn.recv()
                self.handle(req_id, method, args)
        except (EOFError, OSError):
            self.done.set()  # the SIP process went away: shut down

    def handle(self, req_id: int, method: str, args: tuple[Any, ...]) -> None:
        try:
            if method == "shutdown":
                self.done.set()
                value = None
            else:
                handler = getattr(self, "do_" + method, None)
                if handler is None:
                    raise ValueError(f"unknown command {method!r}")
                value = handler(*args)
        except Exception as exc:  # reported to the SIP process, never fatal for the worker
            message = f"{type(exc).__name__}: {exc}"
            if req_id:
                self.conn.send((req_id, False, message))
            else:
                self.emit("error", (method, args[:1], message))
            return
        if req_id:
            self.conn.send((req_id, True, value))

    # commands -----------------------------------------------------------------------
    def do_adopt(self, port: int) -> None:
        (fd,) = recvfds(self.fds, 1)  # sent right behind this command
        s = self.engine.adopt(socket.socket(fileno=fd), port)
        self.sessions[port] = s
        emit = self.emit
        s.on_dtmf = lambda digit, source: emit("dtmf", (port, digit, source))

    def do_adopt_ice(self, port: int, ssrc: int, ice_ufrag: str, ice_password: str) -> None:
        (fd,) = recvfds(self.fds, 1)  # sent right behind this command
        s = self.engine.adopt_ice(socket.socket(fileno=fd), ssrc, ice_ufrag, ice_password)
        self.sessions[port] = s

    def do_apply(self, sid: int, neg: Negotiated, send: bool) -> None:
        self.sessions[sid].apply(neg, send)

    def do_play(self, sid: int, play_id: int, source: PlaySource, interrupt: bool, loop: bool) -> None:
        task = asyncio.ensure_future(
            self.sessions[sid].play(source, interrupt_on_dtmf=interrupt, loop=loop)
        )

        def finished(t: asyncio.Task[bool]) -> None:
            exc = None if t.cancelled() else t.exception()
            if exc is not None:  # e.g. AudioFormatError: raised again in the SIP process
                self.emit("play_done", (sid, play_id, (type(exc).__name__, str(exc))))
            else:
                self.emit("play_done", (sid, play_id, (not t.cancelled()) and t.result()))

        task.add_done_callback(finished)

    def do_stop_playing(self, sid: int) -> None:
        self.sessions[sid].stop_playing()

    def do_send_dtmf(self, sid: int, digits: str) -> None:
        self.sessions[sid].send_dtmf(digits)

    def do_feed_info_dtmf(self, sid: int, digit: str) -> None:
        self.sessions[sid].feed_info_dtmf(digit)

    def do_start_recording(self, sid: int, path: str) -> None:
        self.sessions[sid].start_recording(path)

    def do_stop_recording(self, sid: int) -> Recording | None:
        return self.sessions[sid].stop_recording()

    def do_bridge(self, sid: int, other: int) -> None:
        self.sessions[sid].bridge(self.sessions[other])

    def do_unbridge(self, sid: int) -> None:
        self.sessions[sid].unbridge()

    def do_mute(self, sid: int, on: bool) -> None:
        self.sessions[sid].set_muted(on)

    def do_tap(self, sid: int, on: bool) -> None:
        """Forward the received audio (20 ms PCM frames) to the SIP process's listener."""
        out = self._audio

        def frame(pcm: bytes) -> None:
            if not out:  # first frame of this clock slot: flush once the slot's work is done
                asyncio.get_running_loop().call_soon(self._flush_audio)
            out.append((sid, pcm))

        self.sessions[sid].on_audio = frame if on else None

    def _flush_audio(self) -> None:
        batch = self._audio.copy()
        self._audio.clear()
        if batch:
            self.emit("audio", batch)

    def do_fax(self, sid: int, action: str, args: tuple[Any, ...]) -> None:
        """Fax on a leg (callcenter.fax.media_port): detect CNG, start or stop a terminal;
        its tone and result come back as "fax" events."""
        from callcenter.fax.media_port import worker_command

        emit = self.emit
        worker_command(self.sessions[sid], lambda kind, data: emit("fax", (sid, kind, data)),
                       action, args)

    def do_mix(self, sid: int, action: str, args: tuple[Any, ...]) -> Any:
        """A call's mixer (callcenter.media.mixer): recording, monitoring; "finish" also
        answers for a call already closed (its result was kept by recording id)."""
        from callcenter.media.mixer import run_command

        anchor = self.sessions.get(sid)
        if anchor is None:
            if action == "finish":
                return self.engine.finished_recordings.pop(args[0], None)
            raise ValueError(f"no media session on port {sid}")
        return run_command(self.engine, anchor, action, args, self.sessions.__getitem__)

    def do_close(self, sid: int) -> None:
        self._reported_rx.pop(sid, None)
        s = self.sessions.pop(sid, None)
        if s is not None:
            s.close()

    def do_stats(self, sid: int) -> dict[str, Any]:
        return self.sessions[sid].snapshot()

    def do_engine_stats(self) -> dict[str, Any]:
        return self.engine.stats()

    def report_rx(self) -> None:
        """The calls whose last received RTP moved since the last report (monotonic clock:
        the same on both sides of the pipe, it is the host's)."""
        seen = self._reported_rx
        changed = {}
        for sid, s in self.sessions.items():
            if s.last_rx is not None and seen.get(sid) != s.last_rx:
                changed[sid] = seen[sid] = s.last_rx
        if changed:
            self.emit("rx", changed)
        if not self.done.is_set():
            asyncio.get_running_loop().call_later(RX_REPORT_S, self.report_rx)


def _set_realtime(priority: int) -> None:
    """SCHED_RR for the media process (what Asterisk -p / FreeSWITCH -rp do): the clock
    then preempts ordinary work on a busy host. Refused without CAP_SYS_NICE: logged."""
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(priority))
    except (AttributeError, OSError) as exc:
        log.warning("media worker: real-time scheduling refused (%s); running normally", exc)


def _serve(conn: Connection, host: str, port_min: int, port_max: int,
           options: dict[str, Any]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
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
        loop.call_later(RX_REPORT_S, server.report_rx)
        conn.send((0, "ready", None))
        try:
            await server.done.wait()
        finally:
            loop.remove_reader(conn.fileno())
            await engine.stop()
            server.fds.close()

    asyncio.run(main())


# ----------------------------------------------------------------------------- SIP side
class MediaWorker:
    """Handle on one media worker process; used from the SIP process's event loop.

    ``options`` go to ``MediaEngine``, plus ``realtime_priority=N`` (1-99) to run the
    worker with SCHED_RR — measured in bench/media.py, it is what keeps 20 ms pacing
    within 5 ms on a host whose cores are busy with other work.
    """

    def __init__(self, host: str, port_min: int, port_max: int, *,
                 codecs: tuple[str, ...] = ("PCMU", "PCMA"), **options: Any) -> None:
        self.ports = PortRange(host, port_min, port_max)
        self.host = host
        self.codecs = tuple(codecs)
        self.advertise: str = options.get("advertise") or host
        self.srtp: str = options.get("srtp") or "off"  # negotiated here, applied in the worker
        self.options = {**options, "codecs": self.codecs}
        self.sessions: dict[int, ProxySession] = {}
        self._conn: Connection | None = None
        self._fds: socket.socket | None = None
        self._proc: mp.process.BaseProcess | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ready: asyncio.Future[None] | None = None
        self._failed = False
        # Told the sessions that lost their media when the process dies (MediaPool sets it).
        self.on_died: Callable[[list[ProxySession]], None] | None = None
        self._stopping = False  # stop() asked it to exit: its end of the pipe closing is expected

    @property
    def alive(self) -> bool:
        return self._conn is not None and not self._failed

    def _died(self) -> None:
        """The process is gone (EOF on the pipe, a failed send, or found dead at allocation):
        logged once, avoided from now on, and the calls it carried are handed to ``on_died``
        (soon, not from inside the caller's own send or read)."""
        if self._failed:
            return
        self._failed = True
        if self._stopping:  # it exits because it was told to: the end of a shutdown, not a death
            return
        lost = list(self.sessions.values())
        log.critical("media worker %s died: its %d calls have no media", self.ports.port_min, len(lost))
        self._disconnect("media worker died")
        if self.on_died is not None and lost:
            asyncio.get_running_loop().call_soon(self.on_died, lost)

    def _process_alive(self) -> bool:
        """A cheap look at the process itself (waitpid WNOHANG): a SIGKILLed worker is seen
        here before its pipe's EOF has reached the event loop."""
        if self._proc is not None and not self._proc.is_alive():
            self._died()
        return self.alive

    async def start(self) -> None:
        ctx = mp.get_context("spawn")  # never fork a process that runs an event loop
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve,
            args=(child, self.host, self.ports.port_min, self.ports.port_max, self.options),
            name=f"media-worker-{self.ports.port_min}", daemon=True,
        )
        self._proc.start()
        child.close()
        self._conn = parent
        self._fds = socket.socket(fileno=os.dup(parent.fileno()))
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        loop.add_reader(parent.fileno(), self._on_readable)
        await asyncio.wait_for(self._ready, 30)

    async def stop(self) -> None:
        if self._conn is None:
            return
        self._stopping = True
        with contextlib.suppress(WorkerError, OSError, asyncio.TimeoutError):
            await asyncio.wait_for(self.call("shutdown"), 5)
        for s in list(self.sessions.values()):
            s._gone()
        self._disconnect("media worker stopped")
        if self._proc is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._proc.join, 5)
            if self._proc.is_alive():
                self._proc.kill()

    def _disconnect(self, reason: str) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(conn.fileno())
            conn.close()
        if self._fds is not None:
            self._fds.close()
            self._fds = None
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(WorkerError(reason))
        self._pending.clear()
        for s in list(self.sessions.values()):
            s._fail_plays(reason)

    def _on_readable(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            while conn.poll():
                req_id, status, value = conn.recv()
                self._dispatch(req_id, status, value)
        except (EOFError, OSError):
            self._died()

    def _dispatch(self, req_id: int, status: Any, value: Any) -> None:
        if status == "ready":
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
        elif status == "event":
            kind, data = value
            sessions = self.sessions
            if kind == "audio":
                for sid, frame in data:
                    s = sessions.get(sid)
                    cb = s.on_audio if s is not None else None
                    if cb is not None:
                        cb(frame)
            elif kind == "dtmf":
                s = sessions.get(data[0])
                cb = s.on_dtmf if s is not None else None
                if cb is not None:
                    cb(data[1], data[2])
            elif kind == "play_done":
                s = sessions.get(data[0])
                if s is not None:
                    s._play_done(data[1], data[2])
            elif kind == "rx":
                for sid, at in data.items():
                    s = sessions.get(sid)
                    if s is not None:
                        s.last_rx = at
            elif kind == "fax":
                from callcenter.fax.media_port import worker_event

                worker_event(self, *data)
            elif kind == "error":
                log.error("media worker %s: %s%s failed: %s", self.ports.port_min, *data)
        else:
            fut = self._pending.pop(req_id, None)
            if fut is None or fut.done():
                return
            if status:
                fut.set_result(value)
            else:
                fut.set_exception(WorkerError(value))

    def post(self, method: str, *args: Any) -> None:
        """Send a command and want no reply (errors come back as logged events)."""
        if self._conn is None:
            return  # worker gone: the calls on it were told; nothing to do
        try:
            self._conn.send((0, method, args))
        except OSError:
            self._died()

    def request(self, method: str, *args: Any) -> asyncio.Future[Any]:
        """Send a command now; its result is the returned future."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self._conn is None:
            fut.set_exception(WorkerError("media worker not running"))
            return fut
        req_id = next(self._ids)
        self._pending[req_id] = fut
        self._conn.send((req_id, method, args))
        return fut

    async def call(self, method: str, *args: Any) -> Any:
        return await self.request(method, *args)

    @property
    def ports_free(self) -> int:
        return self.ports.total - len(self.sessions)

    def allocate(self) -> ProxySession:
        """Bind a port of this worker's range here and hand the socket to the worker."""
        if not self._process_alive() or self._conn is None or self._fds is None:
            raise WorkerError("media worker not running")
        sock, port = self.ports.bind(self.sessions)
        try:
            self._conn.send((0, "adopt", (port,)))
            sendfds(self._fds, [sock.fileno()])
        except OSError as exc:  # died between the look above and the send
            self._died()
            raise WorkerError("media worker died") from exc
        finally:
            sock.close()  # the worker holds its own descriptor now
        session = ProxySession(self, port)
        self.sessions[port] = session
        return session

    def adopt_ice(self, sock: socket.socket, ssrc: int, ice_ufrag: str, ice_password: str) -> ProxySession:
        """A WebRTC leg on the socket ICE selected (``MediaEngine.adopt_ice``), moved here:
        the worker gets its own descriptor and ``sock`` is closed, as by ``allocate``."""
        if not self._process_alive() or self._conn is None or self._fds is None:
            raise WorkerError("media worker not running")
        port = sock.getsockname()[1]
        if port in self.sessions:
            raise WorkerError(f"port {port} already carries a session")
        try:
            self._conn.send((0, "adopt_ice", (port, ssrc, ice_ufrag, ice_password)))
            sendfds(self._fds, [sock.fileno()])
        except OSError as exc:
            self._died()
            raise WorkerError("media worker died") from exc
        finally:
            sock.close()
        session = ProxySession(self, port)
        self.sessions[port] = session
        return session

    async def engine_stats(self) -> dict[str, Any]:
        return await self.call("engine_stats")


class ProxySession(OfferAnswerMixin):
    """A call leg's media living in a worker: ``RtpSession``'s API, driven over the pipe.

    SDP is negotiated here (``SdpNegotiator``) and only its outcome is sent; commands are
    fire-and-forget, so nothing here waits on the worker except what must: ``play``
    (until the prompt ends), ``finish_recording`` (the file's details) and ``fetch_stats``.
    """

    __slots__ = (
        "__weakref__", "_closed", "_muted", "_on_audio", "_on_dtmf", "_peer", "_plays", "_worker",
        "last_rx", "local_port", "negotiator",
    )

    def __init__(self, worker: MediaWorker, port: int) -> None:
        self._worker = worker
        self.local_port = port
        self.negotiator = SdpNegotiator(worker.advertise, port, worker.codecs, worker.srtp)
        self._closed = False
        self._on_dtmf: Any = None  # held as RtpSession holds them (hold_callback)
        self._on_audio: Any = None
        self._plays: dict[int, asyncio.Future[bool]] = {}
        self._peer: weakref.ref[ProxySession] | None = None  # mirrors the worker's bridge
        self._muted = False  # mirrors the worker's session
        self.last_rx: float | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def worker(self) -> MediaWorker:
        return self._worker

    @property
    def on_dtmf(self) -> DtmfCallback | None:
        return self._on_dtmf() if self._on_dtmf is not None else None

    @on_dtmf.setter
    def on_dtmf(self, cb: DtmfCallback | None) -> None:
        self._on_dtmf = hold_callback(cb)

    @property
    def on_audio(self) -> AudioCallback | None:
        return self._on_audio() if self._on_audio is not None else None

    @on_audio.setter
    def on_audio(self, cb: AudioCallback | None) -> None:
        if (cb is None) != (self._on_audio is None) and not self._closed:
            self._worker.post("tap", self.local_port, cb is not None)  # frames cost a message
        self._on_audio = hold_callback(cb)

    def apply(self, neg: Negotiated, send: bool) -> None:
        """The SDP methods (``OfferAnswerMixin``) negotiate here; the worker applies."""
        if not self._closed:
            self._worker.post("apply", self.local_port, neg, send)

    # audio --------------------------------------------------------------------------
    async def play(self, source: PlaySource, *,
                   interrupt_on_dtmf: bool = False, loop: bool = False) -> bool:
        if self._closed or not self._worker.alive:
            return False  # as a prompt cut short: nobody would report its end
        if isinstance(source, bytearray | memoryview):
            source = bytes(source)
        elif not isinstance(source, bytes):
            source = os.fspath(source)  # the worker opens the file: same host, same paths
        play_id = next(self._worker._ids)
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        # a new play stops the previous one in the worker, which reports it interrupted
        self._plays[play_id] = fut
        self._worker.post("play", self.local_port, play_id, source, interrupt_on_dtmf, loop)
        return await fut

    def _play_done(self, play_id: int, result: bool | str) -> None:
        fut = self._plays.pop(play_id, None)
        if fut is None or fut.done():
            return
        if isinstance(result, tuple):
            fut.set_exception(_raised_again(*result))
        else:
            fut.set_result(result)

    def _fail_plays(self, reason: str) -> None:
        plays, self._plays = self._plays, {}
        for fut in plays.values():
            if not fut.done():
                fut.set_result(False)  # as an interrupted prompt: the call ends on its own

    @property
    def playing(self) -> bool:
        """A prompt was sent and has not been reported finished."""
        return bool(self._plays)

    def stop_playing(self) -> None:
        if not self._closed:
            self._worker.post("stop_playing", self.local_port)

    def send_dtmf(self, digits: str) -> None:
        if not self._closed:
            self._worker.post("send_dtmf", self.local_port, digits)

    def feed_info_dtmf(self, digit: str) -> None:
        if not self._closed:
            self._worker.post("feed_info_dtmf", self.local_port, digit)

    def start_recording(self, path: str | os.PathLike[str]) -> None:
        if not self._closed:
            self._worker.post("start_recording", self.local_port, os.fspath(path))

    def finish_recording(self) -> asyncio.Future[Recording | None]:
        if self._closed:
            fut: asyncio.Future[Recording | None] = asyncio.get_running_loop().create_future()
            fut.set_result(None)
            return fut
        return self._worker.request("stop_recording", self.local_port)

    def bridge(self, other: ProxySession) -> None:
        if other is self:
            raise ValueError("cannot bridge a session to itself")
        if other._worker is not self._worker:
            raise ValueError("bridged legs must live on the same media worker "
                             "(allocate the second with near=the first)")
        self._drop_bridge()
        other._drop_bridge()
        self._peer, other._peer = weakref.ref(other), weakref.ref(self)
        self._worker.post("bridge", self.local_port, other.local_port)

    def unbridge(self) -> None:
        self._drop_bridge()
        if not self._closed:
            self._worker.post("unbridge", self.local_port)

    def set_muted(self, on: bool) -> None:
        self._muted = on
        if not self._closed:
            self._worker.post("mute", self.local_port, on)

    @property
    def muted(self) -> bool:
        return self._muted

    @property
    def bridged_to(self) -> ProxySession | None:
        return self._peer() if self._peer is not None else None

    def _drop_bridge(self) -> None:
        peer, self._peer = self.bridged_to, None
        if peer is not None and peer.bridged_to is self:
            peer._peer = None

    async def fetch_stats(self) -> dict[str, Any]:
        """``RtpSession.snapshot()`` of this leg, from the worker."""
        return await self._worker.call("stats", self.local_port)

    def close(self) -> None:
        """Free the port (in the worker) and every reference; idempotent."""
        if self._closed:
            return
        self._gone()
        self._worker.post("close", self.local_port)

    def _gone(self) -> None:
        self._closed = True
        self._on_dtmf = self._on_audio = None
        self._drop_bridge()
        self._fail_plays("closed")
        if self._worker.sessions.get(self.local_port) is self:
            del self._worker.sessions[self.local_port]

    def __repr__(self) -> str:
        return (f"<ProxySession {self._worker.host}:{self.local_port} "
                f"{'closed' if self._closed else 'open'}>")


class MediaPool:
    """N media worker processes behind the media engine's interface (``allocate``,
    ``start``, ``stop``), each with an equal slice of the RTP port range. A new call goes
    to the worker carrying the fewest calls; a leg that will be bridged goes ``near`` the
    other leg's worker. A worker that dies is logged and no longer given calls, and its
    calls are handed to ``on_worker_died`` (the SIP layer ends them: their media is gone)."""

    def __init__(self, host: str, port_min: int, port_max: int, workers: int, *,
                 codecs: tuple[str, ...] = ("PCMU", "PCMA"), **options: Any) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        full = PortRange(host, port_min, port_max)
        per = full.total // workers
        if per < 1:
            raise ValueError(f"RTP range {port_min}-{port_max} is too small for {workers} workers")
        self.codecs = tuple(codecs)
        self.workers = [
            MediaWorker(host, full.port_min + 2 * per * i,
                        full.port_max if i == workers - 1 else full.port_min + 2 * per * (i + 1) - 1,
                        codecs=self.codecs, **options)
            for i in range(workers)
        ]
        self.on_worker_died: Callable[[list[ProxySession]], None] | None = None
        for w in self.workers:
            w.on_died = self._worker_died

    def _worker_died(self, sessions: list[ProxySession]) -> None:
        if self.on_worker_died is not None:
            self.on_worker_died(sessions)

    async def start(self) -> None:
        await asyncio.gather(*(w.start() for w in self.workers))

    async def stop(self) -> None:
        await asyncio.gather(*(w.stop() for w in self.workers))

    def allocate(self, near: object = None) -> ProxySession:
        if isinstance(near, ProxySession):
            if not near.worker._process_alive():
                # The leg to bridge to has no media: a leg elsewhere could never be bridged to it.
                raise WorkerError("the media worker of the leg to bridge to died")
            return near.worker.allocate()
        for worker in sorted((w for w in self.workers if w.alive), key=lambda w: len(w.sessions)):
            try:
                return worker.allocate()
            except (NoFreePortError, WorkerError):  # full, or found dead just now: the next one
                continue
        raise NoFreePortError("no media worker has a free RTP port")

    def adopt_ice(self, sock: socket.socket, ssrc: int, ice_ufrag: str, ice_password: str) -> ProxySession:
        """A WebRTC leg (``MediaEngine.adopt_ice``) on the worker carrying the fewest calls."""
        for worker in sorted((w for w in self.workers if w.alive), key=lambda w: len(w.sessions)):
            return worker.adopt_ice(sock, ssrc, ice_ufrag, ice_password)
        raise WorkerError("no media worker running")

    @property
    def ports_free(self) -> int:
        """Even ports no session holds, over every worker's slice (as ``MediaEngine``)."""
        return sum(w.ports_free for w in self.workers)

    async def stats(self) -> list[dict[str, Any]]:
        return [await w.engine_stats() for w in self.workers if w.alive]
