"""Fax on a call leg's media: CNG detection, T.30 over G.711, T.38 over UDPTL.

``FaxPort`` lives next to the ``RtpSession`` it serves (in the SIP process, or in a media
worker) and is driven by that session's receive path and the engine's 20 ms clock, like
every other call's audio. The session calls it at three points (``session._fax``):

- every datagram first, while in T.38 mode (``raw``): the socket then carries UDPTL;
- every decoded RTP payload (``on_audio``): CNG detection listens and lets the audio go
  on to the IVR; a fax leg consumes it, so nothing else (bridge, recorder, DTMF, speech)
  sees fax audio;
- every tick while a terminal runs (``sending``): the terminal's next 20 ms, or the T.38
  packets it produced.

A fax leg is sample-exact: each received packet goes to SpanDSP as it arrives (the media
engine has no jitter buffer, VAD, comfort noise or PLC on any leg), an RTP sequence gap
is told to SpanDSP as missing samples (``fax_rx_fillin``) so its modem timing holds, and
a packet arriving after its gap was filled is dropped.

The functions at the bottom are what the channel code calls with a leg's
``MediaSession``: they act on an in-process ``RtpSession`` directly and send a command to
the worker for a ``ProxySession``; either way results come back on the caller's loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from callcenter.fax.terminal import AudioFax, CngDetector, FaxJob, FaxResult, T38Fax
from callcenter.fax.udptl import REDUNDANCY, UdptlReceiver, UdptlSender
from callcenter.media import g711

log = logging.getLogger(__name__)
FRAME = 160
MAX_FILL = 8000  # samples told missing for one gap at most (1 s): beyond, the peer restarted
Emit = Callable[[str, Any], None]  # ("tone", "CNG") | ("done", FaxResult.as_dict())


class FaxPort:
    __slots__ = ("_emit", "_next_seq", "_out", "cng", "redundancy", "t38_remote", "terminal",
                 "udptl_rx", "udptl_tx")

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self.cng: CngDetector | None = None
        self.terminal: AudioFax | T38Fax | None = None
        self.t38_remote: tuple[str, int] | None = None
        self.udptl_tx: UdptlSender | None = None
        self.udptl_rx: UdptlReceiver | None = None
        self.redundancy = REDUNDANCY
        self._next_seq: int | None = None
        self._out: list[bytes] = []

    # ------------------------------------------------------------------ control
    def detect(self, on: bool) -> None:
        if on and self.cng is None and self.terminal is None:
            self.cng = CngDetector()
        elif not on and self.cng is not None:
            self.cng.close()
            self.cng = None

    def start(self, job: FaxJob, t38_remote: tuple[str, int] | None) -> None:
        """Run a terminal on this leg; a second start switches transport (audio → T.38
        after a re-INVITE) and the first terminal is dropped without reporting."""
        self.detect(False)
        old, self.terminal = self.terminal, None
        if old is not None:
            old.on_done = None
            old.close()
        if t38_remote is None:
            term: AudioFax | T38Fax = AudioFax(job)
            self.t38_remote = None
        else:
            self.t38_remote = (t38_remote[0], int(t38_remote[1]))
            self.udptl_tx = UdptlSender(self.redundancy)
            self.udptl_rx = UdptlReceiver()
            term = T38Fax(job, self._queue_ifp)
        term.on_done = self._done
        self.terminal = term
        self._next_seq = None

    def _done(self, result: FaxResult) -> None:
        data = result.as_dict()
        if self.udptl_rx is not None:
            data["extra"].update(udptl_recovered=self.udptl_rx.recovered,
                                 udptl_lost=self.udptl_rx.lost)
        self._emit("done", data)

    def stop(self) -> None:
        """End the terminal now (the call is ending): it reports its result (partial if
        pages arrived) through ``done``."""
        term = self.terminal
        if term is not None:
            term.close()

    def close(self) -> None:
        self.detect(False)
        self.stop()
        self.terminal = None
        self._out.clear()

    # ------------------------------------------------------------------ session hooks
    @property
    def raw(self) -> bool:
        return self.t38_remote is not None and self.terminal is not None

    @property
    def sending(self) -> bool:
        return self.terminal is not None

    def on_audio(self, seq: int, pcm: bytes) -> bool:
        """A received RTP payload, decoded; True when the fax consumed it."""
        term = self.terminal
        if term is None:
            cng = self.cng
            if cng is not None and cng.push(pcm):
                self.detect(False)
                self._emit("tone", "CNG")
            return False
        if isinstance(term, AudioFax):
            expected = self._next_seq
            if expected is not None:
                gap = (seq - expected) & 0xFFFF
                if gap >= 0x8000:
                    return True  # late: its place was already filled
                if gap:
                    term.rx_missing(min(gap * FRAME, MAX_FILL))
            self._next_seq = (seq + 1) & 0xFFFF
            term.rx(pcm)
        return True

    def on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        term, remote = self.terminal, self.t38_remote
        if not isinstance(term, T38Fax) or remote is None or self.udptl_rx is None:
            return
        if addr[0] != remote[0]:
            return  # UDPTL only from the peer the SDP named
        for seq, ifp in self.udptl_rx.feed(data):
            term.rx_ifp(ifp, seq)

    def _queue_ifp(self, ifp: bytes, count: int) -> None:
        assert self.udptl_tx is not None
        # redundancy already repeats each IFP in the next packets; without it honour count
        for _ in range(1 if self.redundancy else max(count, 1)):
            self._out.append(self.udptl_tx.frame(ifp))

    def tick(self, session: Any, ts: int) -> None:
        """The clock's 20 ms for this leg (``session`` is the ``RtpSession``)."""
        term = self.terminal
        if isinstance(term, T38Fax):
            term.tick(FRAME)
            out, self._out = self._out, []
            sock, remote = session._sock, self.t38_remote
            for pkt in out:
                try:
                    sock.sendto(pkt, remote)
                except OSError:
                    session.stats.tx_dropped += 1
                else:
                    session.stats.tx_packets += 1
            return
        if term is None:
            return
        pcm = term.tx()
        if session._send_ok and session.remote is not None:
            marker, session._marker_next = session._marker_next, False
            session._send(session.payload_type, ts, g711.encode(session.codec, pcm), marker)


# ----------------------------------------------------------------------------- caller side
class _Waiter:
    """The caller-side half: the result future and the CNG callback of one leg."""

    __slots__ = ("future", "on_tone")

    def __init__(self) -> None:
        self.future: asyncio.Future[FaxResult] | None = None
        self.on_tone: Callable[[], Any] | None = None

    def event(self, kind: str, data: Any) -> None:
        if kind == "tone":
            cb = self.on_tone
            if cb is not None:
                try:
                    cb()
                except Exception:
                    log.exception("fax tone callback failed")
        elif kind == "done":
            fut = self.future
            if fut is not None and not fut.done():
                extra = data.pop("extra", {})
                data.pop("partial", None)
                fut.set_result(FaxResult(**data, extra=extra))


# (id(worker), port) -> waiter, for legs in media workers; events arrive by port
_remote: dict[tuple[int, int], _Waiter] = {}
_local: dict[int, _Waiter] = {}  # id(RtpSession) -> waiter


def _is_proxy(session: Any) -> bool:
    return hasattr(session, "worker") and not hasattr(session, "_fax")


def _waiter(session: Any) -> _Waiter:
    if _is_proxy(session):
        key = (id(session.worker), session.local_port)
        return _remote.setdefault(key, _Waiter())
    w = _local.get(id(session))
    if w is None:
        w = _local[id(session)] = _Waiter()
    if session._fax is None:
        session._fax = FaxPort(w.event)
    return w


def local_port(session: Any, emit: Emit) -> FaxPort:
    """The ``FaxPort`` of an in-process session (the worker's side uses this too)."""
    port = session._fax
    if port is None:
        port = session._fax = FaxPort(emit)
    return port


def detect_cng(session: Any, on_tone: Callable[[], Any] | None) -> None:
    """Listen for CNG on a leg (``on_tone()`` once, then detection stops); None stops."""
    w = _waiter(session)
    w.on_tone = on_tone
    if _is_proxy(session):
        session.worker.post("fax", session.local_port, "detect", (on_tone is not None,))
    else:
        session._fax.detect(on_tone is not None)


def start_fax(session: Any, job: FaxJob,
              t38_remote: tuple[str, int] | None = None) -> asyncio.Future[FaxResult]:
    """Run a fax terminal on the leg; the future gets the T.30 result (phase E), also
    when the leg closes first (call dropped, pages so far kept). Starting again on the
    same leg (the T.38 switch) keeps the same future."""
    w = _waiter(session)
    if w.future is None or w.future.done():
        w.future = asyncio.get_running_loop().create_future()
    if _is_proxy(session):
        session.worker.post("fax", session.local_port, "start", (job, t38_remote))
    else:
        session._fax.start(job, t38_remote)
        session._update_active()
    return w.future


def stop_fax(session: Any) -> None:
    """End the leg's terminal now; its result arrives on the ``start_fax`` future."""
    if _is_proxy(session):
        if not session.closed:
            session.worker.post("fax", session.local_port, "stop", ())
    elif session._fax is not None:
        session._fax.stop()


def forget(session: Any) -> None:
    """Drop the caller-side state of a leg that is gone (after its result arrived)."""
    if _is_proxy(session):
        _remote.pop((id(session.worker), session.local_port), None)
    else:
        _local.pop(id(session), None)


def worker_event(worker: Any, port: int, kind: str, data: Any) -> None:
    """A fax event from a media worker (``MediaWorker._dispatch``)."""
    w = _remote.get((id(worker), port))
    if w is not None:
        w.event(kind, data)


def worker_command(session: Any, emit: Emit, action: str, args: tuple[Any, ...]) -> None:
    """A fax command inside a media worker, on its ``RtpSession``."""
    port = local_port(session, emit)
    if action == "detect":
        port.detect(*args)
    elif action == "start":
        port.start(*args)
        session._update_active()
    elif action == "stop":
        port.stop()
    else:
        raise ValueError(f"unknown fax action {action!r}")
