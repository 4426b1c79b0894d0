"""Per-call mixing on the media clock: stereo recording and supervisor listen/whisper/barge.

A ``CallMixer`` belongs to the engine (the worker) that carries the call and is anchored
on the customer's leg. The agent side is whatever leg the customer's leg is bridged to
*at that tick* — so a recording follows transfers and holds without being told: after a
transfer the new agent's leg is the right channel, while the customer is held there is
none (silence, and the hold is marked by the recording service).

Every 20 ms, once per call, at the start of the engine's tick (``MediaEngine._mix``):

1. one frame is taken from each tapped leg's receive buffer (``LegTap``: customer C,
   agent A, supervisor S), or silence where nothing arrived;
2. the mixes the current mode needs are computed once each, as saturating int16 sums
   (int32 add, clip, back to int16 — a wrapped sum would click loudly):
   ``C+A`` for the supervisor (every mode), ``C+S`` for the agent (whisper, barge),
   ``A+S`` for the customer (barge);
3. each fed leg gets its frame, encoded for its codec, which that leg's own tick sends
   (``RtpSession._feed``); a fed leg's bridge relay is suppressed meanwhile, so it hears
   the mix instead of the relay, never both;
4. the recorder gets C left and A right (A+S in barge: what the customer heard from the
   center's side; a whisper is not on the recording, the customer never heard it).

Legs nobody feeds keep the direct relay (no added latency): listening changes nothing
for customer or agent. A fed leg hears its mix up to one tick (20 ms) later than a
relay would deliver it.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from callcenter.media import g711
from callcenter.media.recorder import StereoRecorder

if TYPE_CHECKING:
    from callcenter.media.session import RtpSession

MODES = ("listen", "whisper", "barge")
FRAME = 160
FRAME_BYTES = 2 * FRAME
PRIME_FRAMES = 2  # frames buffered before a tap starts (or restarts) giving audio: jitter room
MAX_FRAMES = 6  # more than this (a burst after a stall): the oldest are dropped, latency stays bounded
KEEP_FRAMES = 3


def saturating_sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a + b for int16 audio, clipped to int16 instead of wrapping around."""
    out = a.astype(np.int32)
    out += b
    np.clip(out, -32768, 32767, out=out)
    return out.astype(np.int16)


class LegTap:
    """A leg's received audio, decoded, waiting for the next tick (a small jitter buffer)."""

    __slots__ = ("buf", "primed")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.primed = False

    def push(self, pcm: bytes) -> None:
        self.buf += pcm

    def pop(self) -> np.ndarray | None:
        buf = self.buf
        n = len(buf)
        if not self.primed:
            if n < PRIME_FRAMES * FRAME_BYTES:
                return None
            self.primed = True
        if n < FRAME_BYTES:
            self.primed = False  # ran dry: wait for a little margin again
            return None
        frame = np.frombuffer(bytes(buf[:FRAME_BYTES]), dtype=np.int16)
        del buf[:FRAME_BYTES]
        if len(buf) > MAX_FRAMES * FRAME_BYTES:
            del buf[: len(buf) - KEEP_FRAMES * FRAME_BYTES]
        return frame


def _tap(session: RtpSession | None) -> np.ndarray | None:
    tap = session._tap if session is not None else None
    return tap.pop() if tap is not None else None


def _set_tap(session: RtpSession | None, on: bool) -> None:
    if session is not None:
        session._tap = LegTap() if on else None


def _set_fed(session: RtpSession | None, on: bool) -> None:
    if session is not None:
        session._fed = on
        session._feed = None


def _give(session: RtpSession | None, pcm: np.ndarray | None) -> None:
    if session is not None and pcm is not None:
        session._feed = g711.encode(session.codec, pcm.tobytes())


class CallMixer:
    """Recording and monitoring of one call, anchored on the customer's leg."""

    __slots__ = ("_anchor", "_peer", "_supervisor", "mode", "rec_id", "recorder")

    def __init__(self, anchor: RtpSession) -> None:
        self._anchor: weakref.ref[RtpSession] = weakref.ref(anchor)
        self._peer: weakref.ref[RtpSession] | None = None
        self._supervisor: weakref.ref[RtpSession] | None = None
        self.mode = "listen"
        self.recorder: StereoRecorder | None = None
        self.rec_id = ""
        _set_tap(anchor, True)

    @property
    def anchor(self) -> RtpSession | None:
        return self._anchor()

    @property
    def supervisor(self) -> RtpSession | None:
        return self._supervisor() if self._supervisor is not None else None

    @property
    def peer(self) -> RtpSession | None:
        return self._peer() if self._peer is not None else None

    @property
    def idle(self) -> bool:
        return self.recorder is None and self._supervisor is None

    # recording ------------------------------------------------------------------------
    def start_recording(self, rec_id: str, path: str) -> None:
        if self.recorder is not None:
            raise ValueError(f"call on port {self._port()} is already recording")
        self.recorder = StereoRecorder(path)
        self.rec_id = rec_id

    def stop_recording(self) -> tuple[str, dict[str, Any] | None]:
        rec, self.recorder = self.recorder, None
        rec_id, self.rec_id = self.rec_id, ""
        return rec_id, (rec.close() if rec is not None else None)

    # monitoring -----------------------------------------------------------------------
    def monitor(self, supervisor: RtpSession, mode: str) -> None:
        if self._supervisor is not None:
            raise ValueError(f"call on port {self._port()} is already monitored")
        self._supervisor = weakref.ref(supervisor)
        _set_tap(supervisor, True)
        _set_fed(supervisor, True)  # what the supervisor hears is always a mix
        self.set_mode(mode)

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown monitor mode {mode!r}; one of {', '.join(MODES)}")
        self.mode = mode
        monitored = self._supervisor is not None
        _set_fed(self.peer, monitored and mode != "listen")
        _set_fed(self.anchor, monitored and mode == "barge")

    def unmonitor(self) -> None:
        sup, self._supervisor = self.supervisor, None
        _set_tap(sup, False)
        _set_fed(sup, False)
        self.mode = "listen"
        _set_fed(self.peer, False)
        _set_fed(self.anchor, False)

    def _port(self) -> int:
        a = self.anchor
        return a.local_port if a is not None else 0

    # the tick ---------------------------------------------------------------------------
    def _follow_peer(self, anchor: RtpSession) -> RtpSession | None:
        """Retap when the customer's leg is bridged elsewhere (transfer, hold, unhold)."""
        peer = anchor.bridged_to
        old = self.peer
        if peer is not old:
            _set_tap(old, False)
            _set_fed(old, False)
            self._peer = weakref.ref(peer) if peer is not None else None
            _set_tap(peer, True)
            _set_fed(peer, self._supervisor is not None and self.mode != "listen")
        return peer

    def tick(self) -> bool:
        """One 20 ms step; False when the anchor is gone (the engine then drops the mixer)."""
        anchor = self.anchor
        if anchor is None or anchor.closed:
            return False
        peer = self._follow_peer(anchor)
        sup = self.supervisor
        if sup is not None and sup.closed:
            self.unmonitor()
            sup = None
        c = _tap(anchor)
        a = _tap(peer)
        if sup is not None:
            s = _tap(sup)
            mode = self.mode
            _give(sup, _mix(c, a))
            if mode != "listen":
                _give(peer, _mix(c, s))
            if mode == "barge":
                center = _mix(a, s)
                _give(anchor, center)
                a = center
        if self.recorder is not None:
            self.recorder.write(c, a)
        return True

    def close(self) -> tuple[str, dict[str, Any] | None]:
        """Drop every tap and feed; the recording's result if one was running."""
        self.unmonitor()
        _set_tap(self.peer, False)
        _set_tap(self.anchor, False)
        self._peer = None
        return self.stop_recording()


def _mix(x: np.ndarray | None, y: np.ndarray | None) -> np.ndarray | None:
    if x is None:
        return y
    if y is None:
        return x
    return saturating_sum(x, y)


# ----------------------------------------------------------------------------- commands
# One entry point for what the server asks of a call's mixer, run where the legs live:
# directly for an in-process engine, in the worker for a ProxySession (the "mix" command).
def run_command(engine: Any, anchor: RtpSession, action: str, args: tuple[Any, ...],
                resolve: Any) -> Any:
    """``resolve(port)`` finds a leg of the same engine (the supervisor's)."""
    if action == "finish":  # the result even if the call ended (and the mixer went) first
        (rec_id,) = args
        mixer = engine._mixers.get(anchor.local_port) if not anchor.closed else None
        if mixer is not None and mixer.rec_id == rec_id:
            _, result = mixer.stop_recording()
            engine.drop_mixer_if_idle(anchor)
            return result
        return engine.finished_recordings.pop(rec_id, None)
    if anchor.closed:
        raise ValueError(f"the call on port {anchor.local_port} has ended")
    mixer = engine.mixer(anchor)
    try:
        if action == "record":
            mixer.start_recording(*args)
        elif action == "pause":
            if mixer.recorder is not None:
                mixer.recorder.pause(bool(args[0]))
        elif action == "mark":
            if mixer.recorder is not None:
                mixer.recorder.mark(str(args[0]), bool(args[1]))
        elif action == "monitor":
            mixer.monitor(resolve(args[0]), str(args[1]))
        elif action == "mode":
            mixer.set_mode(str(args[0]))
        elif action == "unmonitor":
            mixer.unmonitor()
        else:
            raise ValueError(f"unknown mixer command {action!r}")
    finally:
        engine.drop_mixer_if_idle(anchor)
    return None


class MixControl:
    """The server's handle on one call's mixer, for either kind of leg: ``RtpSession``
    (in process) or ``ProxySession`` (in a media worker; commands go down its pipe in
    order, so "record" always precedes "pause" and "finish")."""

    def __init__(self, anchor: Any) -> None:
        self.anchor = anchor

    def _send(self, action: str, *args: Any) -> None:
        a = self.anchor
        if hasattr(a, "worker"):  # ProxySession
            a.worker.post("mix", a.local_port, action, args)
        else:
            engine = a._engine()
            if engine is not None:
                run_command(engine, a, action, args, lambda s: s)

    def start_recording(self, rec_id: str, path: str) -> None:
        self._send("record", rec_id, path)

    def pause(self, on: bool) -> None:
        self._send("pause", on)

    def mark(self, kind: str, on: bool) -> None:
        self._send("mark", kind, on)

    async def finish(self, rec_id: str) -> dict[str, Any] | None:
        """Stop the recording; its file's details (None when it never started)."""
        a = self.anchor
        if hasattr(a, "worker"):
            if not a.worker.alive:
                return None
            return await a.worker.request("mix", a.local_port, "finish", (rec_id,))
        engine = a._engine()
        return run_command(engine, a, "finish", (rec_id,), None) if engine is not None else None

    def monitor(self, supervisor: Any, mode: str) -> None:
        """Mix ``supervisor`` (a leg of the same engine or worker) into the call."""
        if hasattr(self.anchor, "worker"):
            if supervisor.worker is not self.anchor.worker:
                raise ValueError("the supervisor's leg must live on the call's media worker")
            self._send("monitor", supervisor.local_port, mode)
        else:
            self._send("monitor", supervisor, mode)

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown monitor mode {mode!r}; one of {', '.join(MODES)}")
        self._send("mode", mode)

    def unmonitor(self) -> None:
        self._send("unmonitor")
