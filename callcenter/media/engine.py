"""The media engine: RTP port allocation and the one shared 20 ms clock.

Everything is instance state — no module globals — so several engines can live in one
process (tests do this) or one per worker process, each with its own port range
(see ``callcenter.media.worker``).

The clock is a single asyncio task. Each tick it calls ``_tick`` on the sessions that have
something to send (a dict kept up to date by the sessions), so the cost is one Python call
and one ``sendto`` per packet, with no task, future or timer handle per call or packet.
It is drift-corrected: tick *n* is due at ``start + n·20 ms`` on ``loop.time()`` (the
monotonic clock), never "20 ms after the last one finished". Each session is given one of
``phases`` (default 4) fixed offsets inside the 20 ms period, and the clock wakes at every
offset (every 5 ms) to send for that quarter of the sessions: every session still sends
exactly every 20 ms, but the work — and the packets on the wire — are spread over the
period instead of one burst, so a packet's position in its burst (and the variation of
that position, which receivers see as jitter) is four times smaller. When the loop was blocked it
catches up by running missed ticks back to back, but at most ``max_catchup`` of them
(a bounded burst, which a phone's jitter buffer absorbs); beyond that it skips the missed
ticks — RTP timestamps still advance with real time, prompts resume where they were —
instead of flooding the network with a burst of stale audio.

Receiving is paced by the same clock. The sessions' sockets are not registered with the
event loop (that costs a loop wake-up, a selector key, a callback handle and a dispatch per
readable socket — about as much as the packet's own work when packets arrive one by one);
they sit in one ``epoll`` set owned by the engine, and at every phase (every 5 ms) the
clock asks the set which sockets have data and reads what they hold (``_receive``). One
wake-up then serves every packet that arrived in the last 5 ms; the cost is up to 5 ms of
extra latency on received audio, which a phone's jitter buffer (20–60 ms) never notices.

In-band DTMF detection (Goertzel, for peers without telephone-event) is batched across
calls: the receive path only buffers decoded audio, and every slot the clock runs
``dtmf_inband.detect_many`` over one of ``phases · INBAND_EVERY`` (16) groups of sessions,
each group's pending blocks in one numpy pass, so every session is judged every 80 ms.
numpy's fixed cost is then paid once per group, not once per call and packet (on loud
audio it was the largest single item of the per-packet cost: now ~2.5 µs per packet, was
20–60 µs), and the work is spread over the slots instead of stalling one of them; the
price is up to 80 ms more before a digit is reported, which no caller notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import socket
import time
from collections import OrderedDict, deque

from callcenter.media.audio_files import load_for_codec
from callcenter.media.dtmf_inband import detect_many
from callcenter.media.ice_consent import IceResponder
from callcenter.media.mixer import CallMixer
from callcenter.media.ports import PortRange
from callcenter.media.session import RtpSession

PERIOD = 0.020
RECEIVE_ROUNDS = 4  # datagrams read per socket per phase, at most (800/s at 4 phases)
INBAND_EVERY = 4  # ticks between in-band DTMF passes (80 ms: detection latency, not accuracy)
log = logging.getLogger(__name__)


class MediaEngine:
    def __init__(
        self,
        host: str,
        port_min: int,
        port_max: int,
        codecs: tuple[str, ...] = ("PCMU", "PCMA"),
        *,
        advertise: str | None = None,
        comedia: bool = False,
        inband_dtmf: str = "auto",
        srtp: str = "off",
        max_catchup: int = 2,
        phases: int = 4,
        rcvbuf: int = 256 * 1024,
        prompt_cache_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        bad = [c for c in codecs if c not in ("PCMU", "PCMA")]
        if bad or not codecs:
            raise ValueError(f"unsupported codecs {bad or codecs}; use PCMU and/or PCMA")
        self.host = host
        self.advertise = advertise or host
        self.ports = PortRange(host, port_min, port_max)
        self.port_min, self.port_max = self.ports.port_min, self.ports.port_max
        self.codecs = tuple(codecs)
        self.comedia = comedia  # see callcenter.media.session: the NAT trade-off
        self.inband_dtmf = inband_dtmf
        self.srtp = srtp  # SRTP policy for new sessions (callcenter.media.srtp)
        self.max_catchup = max_catchup
        if not 1 <= phases <= 20:
            raise ValueError("phases must be between 1 and 20")
        self.phases = phases
        self.rcvbuf = rcvbuf
        # prompts encoded once per (file, codec): bytes are immutable, so calls share them
        self._prompts: OrderedDict[tuple[str, int, int, str], bytes] = OrderedDict()
        self.prompt_cache_bytes = prompt_cache_bytes
        self._sessions: dict[int, RtpSession] = {}  # by local port
        self._by_fd: dict[int, RtpSession] = {}  # the same sessions, by socket fd
        self._poller: select.epoll | None = None
        # sessions with an in-band DTMF detector, in groups judged one per clock slot
        self._inband: list[dict[int, RtpSession]] = [{} for _ in range(phases * INBAND_EVERY)]
        self._active: dict[int, RtpSession] = {}  # sessions the clock must tick
        self._phase_active: list[dict[int, RtpSession]] = [{} for _ in range(phases)]
        self._slots_skipped = 0
        # recorded or monitored calls (callcenter.media.mixer), by the customer leg's port;
        # results of recordings whose call ended before they were collected, by recording id
        self._mixers: dict[int, CallMixer] = {}
        self.finished_recordings: dict[str, dict[str, object] | None] = {}
        self._clock: asyncio.Task[None] | None = None
        self.tick_no = 0
        self.ticks_run = 0
        self.ticks_caught_up = 0
        self.max_tick_late = 0.0

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._clock is not None:
            return
        self._clock = asyncio.get_running_loop().create_task(self._run_clock(), name="media-clock")

    async def stop(self) -> None:
        for port in list(self._mixers):
            self._close_mixer(port)
        for s in list(self._sessions.values()):
            s.close()
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.close()
        clock, self._clock = self._clock, None
        if clock is not None:
            clock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await clock

    @property
    def sessions(self) -> list[RtpSession]:
        return list(self._sessions.values())

    @property
    def ports_total(self) -> int:
        return self.ports.total

    @property
    def ports_free(self) -> int:
        """Even ports of the range no session holds (another process may hold some)."""
        return self.ports.total - len(self._sessions)

    def load_prompt(self, path: str | os.PathLike[str], codec: str) -> bytes:
        """Encoded prompt from the cache (keyed by path, mtime and size, so edits show)."""
        try:
            st = os.stat(path)
        except OSError:
            return load_for_codec(path, codec)  # raises AudioFormatError with the reason
        key = (os.fspath(path), st.st_mtime_ns, st.st_size, codec)
        data = self._prompts.get(key)
        if data is not None:
            self._prompts.move_to_end(key)
            return data
        data = load_for_codec(path, codec)
        self._prompts[key] = data
        total = sum(len(v) for v in self._prompts.values())
        while total > self.prompt_cache_bytes and len(self._prompts) > 1:
            _, old = self._prompts.popitem(last=False)
            total -= len(old)
        return data

    # ------------------------------------------------------------------ ports
    def allocate(self, near: object = None) -> RtpSession:
        """Bind the next free even port of the range and return a new session on it.
        ``near`` (the leg this one will be bridged to) matters only to a ``MediaPool``:
        one engine carries every session anyway."""
        sock, port = self.ports.bind(self._sessions)
        return self.adopt(sock, port)

    def adopt(self, sock: socket.socket, port: int) -> RtpSession:
        """A new session on a socket already bound to ``port`` (a media worker receives
        its sockets from the SIP process, which binds them)."""
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        session = RtpSession(
            self, sock, self.host, port, advertise=self.advertise,
            comedia=self.comedia, codecs=self.codecs, inband_dtmf=self.inband_dtmf,
            srtp=self.srtp,
        )
        self._sessions[port] = session
        self._by_fd[session._fd] = session
        if self._poller is None:
            self._poller = select.epoll()
        self._poller.register(session._fd, select.EPOLLIN)
        return session

    def adopt_ice(self, sock: socket.socket, ssrc: int, ice_ufrag: str, ice_password: str) -> RtpSession:
        """A WebRTC leg's session on the socket ICE selected (callcenter/webrtc/lean.py): it
        sends as ``ssrc`` (the one the browser was told), answers the browser's STUN consent
        checks and has no in-band DTMF detector (the desk sends digits on the caller's leg).
        Keyed by the socket's own port, which lies outside the range."""
        port = sock.getsockname()[1]
        if port in self._sessions:
            raise ValueError(f"port {port} already carries a session")
        session = self.adopt(sock, port)
        session.ssrc = ssrc & 0xFFFFFFFF
        session._inband_mode = "off"
        session._ice = IceResponder(ice_ufrag, ice_password)
        session._paced = deque()
        return session

    def _receive(self) -> None:
        """Read what every session's socket holds: each round reads one datagram from each
        ready socket (no EAGAIN exception per socket). The rounds are bounded, so a flooded
        socket cannot starve the clock: the rest of its flood waits in (and overflows) its
        own socket buffer."""
        poller = self._poller
        if poller is None:
            return
        by_fd = self._by_fd
        for _ in range(RECEIVE_ROUNDS):
            ready = poller.poll(0)
            if not ready:
                return
            for fd, _ev in ready:
                session = by_fd.get(fd)
                if session is None:
                    continue
                try:
                    data, addr = session._sock.recvfrom(2048)  # type: ignore[union-attr]
                except (OSError, AttributeError):
                    continue  # ICMP error queued on the socket, or closed meanwhile
                try:
                    session._on_datagram(data, addr)
                except Exception:  # a callback's bug must not stop every call's receive path
                    log.exception("media session on port %d: receive failed", session.local_port)

    def _inband_group(self, session: RtpSession) -> dict[int, RtpSession]:
        return self._inband[(session.local_port >> 1) % len(self._inband)]

    def _set_inband(self, session: RtpSession, on: bool) -> None:
        if on:
            self._inband_group(session)[session.local_port] = session
        else:
            self._inband_group(session).pop(session.local_port, None)

    def _detect_inband(self, group: dict[int, RtpSession]) -> None:
        sessions = list(group.values())
        found = detect_many([s._inband for s in sessions])  # type: ignore[misc]
        for session, digits in zip(sessions, found, strict=True):
            for digit in digits:  # usually none
                if session.closed:
                    break
                try:
                    session._emit_dtmf(digit, "inband")
                except Exception:  # the clock must survive a broken DTMF callback
                    log.exception("media session on port %d: DTMF callback failed",
                                  session.local_port)

    def _phase_of(self, session: RtpSession) -> int:
        return (session.local_port >> 1) % self.phases

    # ------------------------------------------------------------------ mixing
    def mixer(self, anchor: RtpSession) -> CallMixer:
        """The call's mixer, anchored on the customer's leg (created on first use)."""
        mixer = self._mixers.get(anchor.local_port)
        if mixer is None or mixer.anchor is not anchor:
            mixer = self._mixers[anchor.local_port] = CallMixer(anchor)
        return mixer

    def drop_mixer_if_idle(self, anchor: RtpSession) -> None:
        mixer = self._mixers.get(anchor.local_port)
        if mixer is not None and mixer.idle:
            del self._mixers[anchor.local_port]
            mixer.close()

    def _mix(self) -> None:
        """Once per 20 ms tick, before any phase sends: every mixer's step."""
        for port, mixer in list(self._mixers.items()):
            try:
                alive = mixer.tick()
            except Exception:  # one call's mixing must not stop every call's audio
                log.exception("mixer of the call on port %d failed; it stops", port)
                alive = False
            if not alive:
                self._close_mixer(port)

    def _close_mixer(self, port: int) -> None:
        mixer = self._mixers.pop(port, None)
        if mixer is None:
            return
        try:
            rec_id, result = mixer.close()
        except OSError:
            log.exception("recording of the call on port %d could not be finished", port)
            return
        if rec_id:
            self.finished_recordings[rec_id] = result  # collected by finish_recording(rec_id)

    def _release(self, session: RtpSession) -> None:
        mixer = self._mixers.get(session.local_port)
        if mixer is not None and mixer.anchor is session:
            self._close_mixer(session.local_port)
        self._deactivate(session)
        group = self._inband_group(session)
        if group.get(session.local_port) is session:
            del group[session.local_port]
        if self._sessions.get(session.local_port) is session:
            del self._sessions[session.local_port]
        if self._by_fd.get(session._fd) is session:
            del self._by_fd[session._fd]
            if self._poller is not None:
                with contextlib.suppress(ValueError, OSError):
                    self._poller.unregister(session._fd)

    def _activate(self, session: RtpSession) -> None:
        self._active[session.local_port] = session
        self._phase_active[self._phase_of(session)][session.local_port] = session

    def _deactivate(self, session: RtpSession) -> None:
        self._active.pop(session.local_port, None)
        self._phase_active[self._phase_of(session)].pop(session.local_port, None)

    @property
    def ticks_skipped(self) -> int:
        """Whole 20 ms periods skipped after stalls (summed over phases)."""
        return self._slots_skipped // self.phases

    # ------------------------------------------------------------------ clock
    async def _run_clock(self) -> None:
        loop = asyncio.get_running_loop()
        phases = self.phases
        step = PERIOD / phases
        slot = 0  # sub-tick counter: slot // phases is the 20 ms tick, slot % phases the phase
        due = loop.time() + step
        while True:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            behind = loop.time() - due
            if behind > self.max_catchup * PERIOD:
                skip = int(behind / step)
                self._slots_skipped += skip
                slot += skip
                due += skip * step
            elif behind > PERIOD:
                self.ticks_caught_up += 1
            if behind > self.max_tick_late:
                self.max_tick_late = behind
            self.tick_no = slot // phases
            # Send first: this phase's packets leave on time; what arrived is read right after
            # (a bridged leg's audio is relayed as it is read, so it waits for no tick).
            if self._mixers and slot % phases == 0:
                self._mix()
            self._tick(self._phase_active[slot % phases], self.tick_no, due)
            self._receive()
            group = self._inband[slot % len(self._inband)]
            if group:
                self._detect_inband(group)
            slot += 1
            self.ticks_run = slot // phases
            due += step
            if delay <= 0:
                await asyncio.sleep(0)  # catching up: still let the receive path run

    def _tick(self, sessions: dict[int, RtpSession], tick_no: int, due: float) -> None:
        for session in list(sessions.values()):
            try:
                session._tick(tick_no, due)
            except Exception:  # one broken session must never stop every call's audio
                log.exception("media session on port %d failed; it stops sending",
                              session.local_port)
                self._deactivate(session)

    def stats(self) -> dict[str, float | int]:
        return {
            "sessions": len(self._sessions),
            "active": len(self._active),
            "ticks_run": self.ticks_run,
            "ticks_skipped": self.ticks_skipped,
            "ticks_caught_up": self.ticks_caught_up,
            "max_tick_late_ms": self.max_tick_late * 1000,
            "cpu_seconds": time.process_time(),
        }
