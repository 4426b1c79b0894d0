"""One RTP session (one call leg): socket, negotiation state, send and receive paths.

Sessions never run their own timers. The engine's shared 20 ms clock calls ``_tick`` on
every session that has something to send, and every 5 ms it reads the sockets that hold
data (``MediaEngine._receive``, one epoll set for all) and hands each datagram to
``_on_datagram``; an engine that was not started neither sends nor receives.
Both use the raw non-blocking socket directly (no asyncio transport/protocol objects per
call), which is what lets one core carry ~1,000 calls.

Reference-cycle freedom (so the garbage collector never has to pause the media clock):
the session holds its engine and its bridge peer by ``weakref``; callbacks that are bound
methods (``on_dtmf = call.handle_dtmf``) are held by ``WeakMethod``, so an owner that holds
the session does not form a cycle through it; ``close()`` drops every reference it made.

Latching (symmetric RTP, RFC 4961): we send to where the peer's RTP really comes from,
and once latched ignore every other source (no "RTP bleed" injection). Strict, the
default: only a packet from the address *and port* the SDP named latches; anything else
is ignored (and logged once per session at INFO), so a host that shares the caller's IP
(another phone behind the same NAT, a process on the caller's machine) cannot capture
the stream before the caller's first packet. ``comedia`` (the name Asterisk and
FreeSWITCH use) trades that away for callers behind NAT: when the SDP names an address
that cannot be reached (private, loopback, link-local, CGNAT — the phone wrote its LAN
address), the first source to send LATCH_PROBATION packets in sequence with one SSRC is
latched, whatever its address, because the real one is unknowable. Anybody who reaches
the port first with a plausible stream then gets the call's audio, so enable it only for
peers that need it (phones behind NAT without an SBC); an SDP with a routable address is
latched strictly either way.

Comfort: when there is nothing to play we keep sending G.711 silence every 20 ms. Many
phones and SBCs hang up or mark the stream dead on an RTP gap (their own media timeouts),
NAT bindings and the far end's symmetric-RTP latch need our packets, and jitter buffers
resynchronise poorly after a silent gap; comfort-noise payload (RFC 3389) is not universally
negotiated. Silence costs the same as audio, and it is what the capacity bench measures.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import struct
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from callcenter.media import g711, sdp
from callcenter.media.audio_files import WavRecorder, load_for_codec
from callcenter.media.dtmf_inband import DtmfDetector, generate_digits
from callcenter.media.ice_consent import IceResponder, is_stun
from callcenter.media.interface import AudioCallback, DtmfCallback, PlaySource, Recording
from callcenter.media.negotiation import OfferAnswerMixin, SdpNegotiator
from callcenter.media.rtp import RtpParseError, parse
from callcenter.media.srtp import SrtpContext, SrtpError
from callcenter.media.stats import SessionStats
from callcenter.media.telephone_event import (
    EVENT_OF_DIGIT,
    TelephoneEventReceiver,
    TelephoneEventSender,
)

if TYPE_CHECKING:
    from callcenter.media.engine import MediaEngine

_HDR = struct.Struct("!BBHII")
_RX = struct.Struct("!HII")
ENERGY_BATCH = 1600  # bytes of G.711 (200 ms) per energy update
LATCH_PROBATION = 3  # in-sequence packets before latching to an address the SDP did not name
FRAME = 160  # samples (= G.711 bytes) per 20 ms
PCM_FRAME = 2 * FRAME
LATE = 0.005  # a send more than 5 ms after its tick counts as late
PACED_FRAMES = 3  # frames a paced leg queues at most (60 ms)
RELAY_IDLE_TICKS = 3  # bridged leg with nothing relayed for 60 ms gets comfort silence
DTMF_GAP_TICKS = 3  # 60 ms between RFC 4733 digits
_monotonic = time.monotonic
log = logging.getLogger(__name__)


def routable(ip: str) -> bool:
    """Whether an SDP address can be reached from the internet at large; a phone behind
    NAT writes its private (or CGNAT, link-local, loopback) address instead."""
    return ipaddress.ip_address(ip).is_global



def hold_callback(cb: Callable[..., Any] | None) -> Any:
    """Bound methods by WeakMethod (no owner↔session cycle), other callables as they are."""
    if cb is None:
        return None
    if hasattr(cb, "__self__") and hasattr(cb, "__func__"):
        return weakref.WeakMethod(cb)
    return lambda: cb  # plain function/closure: the caller owns its captures


class RtpSession(OfferAnswerMixin):
    __slots__ = (
        "__weakref__",
        "_bridge",
        "_closed",
        "_comedia_open",
        "_dtmf_gap",
        "_dtmf_queue",
        "_energy_buf",
        "_energy_codec",
        "_engine",
        "_fax",
        "_fd",
        "_fed",
        "_feed",
        "_ice",
        "_inband",
        "_inband_mode",
        "_jitter_transit",
        "_latch_candidate",
        "_latched",
        "_marker_next",
        "_on_audio",
        "_on_dtmf",
        "_paced",
        "_pending_pcm",
        "_play_buf",
        "_play_future",
        "_play_interrupt",
        "_play_loop",
        "_play_pos",
        "_recorder",
        "_relay_last_tick",
        "_relay_offset",
        "_relay_run",
        "_rx_muted",
        "_rx_ssrc",
        "_sdp_remote",
        "_send_ok",
        "_silence",
        "_sock",
        "_srtp",
        "_stray_logged",
        "_tap",
        "_te_rx",
        "_te_tx",
        "_tick_no",
        "_tone_buf",
        "_tone_pos",
        "_ts_base",
        "advertise",
        "codec",
        "comedia",
        "dtmf_pt",
        "host",
        "last_rx",
        "local_port",
        "negotiator",
        "payload_type",
        "remote",
        "seq",
        "ssrc",
        "stats",
    )

    def __init__(
        self,
        engine: MediaEngine,
        sock: socket.socket,
        host: str,
        port: int,
        *,
        advertise: str | None = None,
        comedia: bool = False,
        codecs: tuple[str, ...] = ("PCMU", "PCMA"),
        inband_dtmf: str = "auto",
        srtp: str = "off",
    ) -> None:
        self._engine: weakref.ref[MediaEngine] = weakref.ref(engine)
        self._sock: socket.socket | None = sock
        self._fd = sock.fileno()
        self.host = host
        self.advertise = advertise or host
        self.local_port = port
        self.comedia = comedia
        rnd = int.from_bytes(os.urandom(10), "big")
        self.ssrc = rnd & 0xFFFFFFFF
        self.seq = (rnd >> 32) & 0xFFFF
        self._ts_base = (rnd >> 48) & 0xFFFFFFFF
        self.negotiator = SdpNegotiator(self.advertise, port, codecs, srtp)
        self._srtp: SrtpContext | None = None  # set while the negotiated leg is SRTP
        self.codec = codecs[0]
        self.payload_type = g711.STATIC_PT[self.codec]
        self.dtmf_pt: int | None = None
        self._silence = bytes([g711.SILENCE_BYTE[self.codec]]) * FRAME
        self.remote: tuple[str, int] | None = None
        self._sdp_remote: tuple[str, int] | None = None
        self._latched = False
        self._comedia_open = False  # comedia applies to the SDP address in force
        self._stray_logged = False
        self._latch_candidate: tuple[tuple[str, int], int, int, int] | None = None
        self._send_ok = False
        self._marker_next = True
        self._tick_no = 0
        self.stats = SessionStats()
        self.last_rx: float | None = None
        self._rx_ssrc: int | None = None
        self._jitter_transit: float | None = None
        self._energy_buf = bytearray()
        self._energy_codec = self.codec
        self._te_rx = TelephoneEventReceiver()
        self._te_tx: TelephoneEventSender | None = None
        self._dtmf_queue: deque[str] = deque()
        self._dtmf_gap = 0
        self._inband_mode = inband_dtmf  # "auto" (only without telephone-event), "on", "off"
        self._inband: DtmfDetector | None = None
        self._tone_buf = b""
        self._tone_pos = 0
        self._play_buf = b""
        self._play_pos = 0
        self._play_future: asyncio.Future[bool] | None = None
        self._play_interrupt = False
        self._play_loop = False
        self._recorder: WavRecorder | None = None
        self._on_dtmf: Any = None
        self._on_audio: Any = None
        self._pending_pcm = b""
        self._bridge: weakref.ref[RtpSession] | None = None
        self._fax: Any = None  # callcenter.fax.media_port.FaxPort, on a fax leg or listening for CNG
        # a WebRTC leg on the socket ICE selected (MediaEngine.adopt_ice): answers the browser's
        # STUN consent checks; RTCP and DTLS on the muxed port are dropped
        self._ice: IceResponder | None = None
        # a paced leg sends what the bridge relays on its own clock ticks (a frame queue)
        # instead of as each packet arrives: the WebRTC leg, whose relayed audio has crossed
        # two engine hops, each adding up to a receive slot (5 ms) of jitter
        self._paced: deque[bytes] | None = None
        # callcenter.media.mixer: a recorded or monitored call's legs keep their received audio
        # for the mixer (_tap); a leg the mixer feeds (_fed) sends its frame (_feed), not the relay
        self._tap: Any = None
        self._fed = False
        self._feed: bytes | None = None
        # muted: what this leg receives reaches nobody (relay, mixer, recorder) as anything but
        # silence; the agent's mute, done here so it works for any phone
        self._rx_muted = False
        self._relay_offset = 0
        self._relay_run = False
        self._relay_last_tick = -(10**9)
        self._closed = False

    # ------------------------------------------------------------------ callbacks
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
        self._on_audio = hold_callback(cb)
        self._pending_pcm = b""

    # ------------------------------------------------------------------ SDP
    @property
    def closed(self) -> bool:
        return self._closed

    def apply(self, neg: sdp.Negotiated, send: bool) -> None:
        """Put a negotiation's outcome into effect (the worker does this for a proxy)."""
        if self._closed:
            return
        self._apply(neg)
        self._set_send(send)

    def _apply(self, neg: sdp.Negotiated) -> None:
        if neg.codec != self.codec:
            # a re-INVITE may switch PCMU↔PCMA mid-prompt: carry queued audio across
            old, self.codec = self.codec, neg.codec
            self._silence = bytes([g711.SILENCE_BYTE[self.codec]]) * FRAME
            self._play_buf = g711.transcode(self._play_buf, old, self.codec)
            self._tone_buf = g711.transcode(self._tone_buf, old, self.codec)
        self.payload_type = neg.payload_type
        self.dtmf_pt = neg.dtmf_payload_type
        if neg.srtp is None:
            self._srtp = None
        elif self._srtp is None:
            self._srtp = SrtpContext(neg.srtp)
        elif self._srtp.keys != neg.srtp:
            self._srtp.rekey(neg.srtp)  # the same keys again (a re-offer) change nothing
        if neg.remote_addr is not None and (
            not self._latched or neg.remote_addr != self._sdp_remote or self.remote is None
        ):
            # a new address in the SDP (or none latched yet): send there and latch again
            # to whatever really sends from that peer; an unchanged re-offer keeps the latch
            self.remote = neg.remote_addr
            self._latched = False
        self._sdp_remote = neg.remote_addr
        self._comedia_open = (
            self.comedia and neg.remote_addr is not None and not routable(neg.remote_addr[0])
        )
        want_inband = self._inband_mode == "on" or (
            self._inband_mode == "auto" and self.dtmf_pt is None
        )
        if want_inband and self._inband is None:
            self._inband = DtmfDetector()
        elif not want_inband:
            self._inband = None
        engine = self._engine()
        if engine is not None:
            engine._set_inband(self, self._inband is not None)

    def _set_send(self, ok: bool) -> None:
        self._send_ok = ok
        self._update_active()

    def _update_active(self) -> None:
        engine = self._engine()
        if engine is None:
            return
        busy = bool(self._play_buf or self._tone_buf or self._te_tx or self._dtmf_queue)
        if not self._closed and (busy or (self._send_ok and self.remote is not None)):
            engine._activate(self)
        else:
            engine._deactivate(self)

    # ------------------------------------------------------------------ playing
    async def play(
        self,
        source: PlaySource,
        *,
        interrupt_on_dtmf: bool = False,
        loop: bool = False,
    ) -> bool:
        """Play a prompt with 20 ms timing; True when finished, False when interrupted.

        ``loop=True`` repeats it (music on hold) until ``stop_playing()``/``close()``.
        Files are encoded once per engine and codec (``MediaEngine.load_prompt``).
        Raises AudioFormatError (a ValueError) for files we cannot play.
        """
        if self._closed:
            return False
        engine = self._engine()
        if engine is not None and not isinstance(source, bytes | bytearray | memoryview):
            data = engine.load_prompt(source, self.codec)
        else:
            data = load_for_codec(source, self.codec)
        self.stop_playing()
        if not data:
            return True
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._play_buf, self._play_pos = data, 0
        self._play_future = fut
        self._play_interrupt = interrupt_on_dtmf
        self._play_loop = loop
        self._update_active()
        return await fut

    @property
    def playing(self) -> bool:
        return bool(self._play_buf)

    def stop_playing(self) -> None:
        self._finish_play(False)

    def _finish_play(self, completed: bool) -> None:
        fut, self._play_future = self._play_future, None
        self._play_buf, self._play_pos = b"", 0
        if fut is not None and not fut.done():
            fut.set_result(completed)

    # ------------------------------------------------------------------ DTMF
    def send_dtmf(self, digits: str) -> None:
        """RFC 4733 events when the peer negotiated telephone-event, else in-band tones."""
        digits = "".join(d for d in digits if d in EVENT_OF_DIGIT)
        if not digits:
            return
        if self.dtmf_pt is not None:
            self._dtmf_queue.extend(digits)
        else:
            tones = g711.encode(self.codec, generate_digits(digits))
            self._tone_buf = self._tone_buf[self._tone_pos :] + tones
            self._tone_pos = 0
        self._update_active()

    def feed_info_dtmf(self, digit: str) -> None:
        """A digit from SIP INFO (application/dtmf-relay), handed over by the SIP layer."""
        if digit in EVENT_OF_DIGIT:
            self._emit_dtmf(digit.upper(), "info")

    def _emit_dtmf(self, digit: str, source: str) -> None:
        if self._play_interrupt and self._play_buf:
            self._finish_play(False)
        cb = self.on_dtmf
        if cb is not None:
            cb(digit, source)

    # ------------------------------------------------------------------ recording
    def start_recording(self, path: str | os.PathLike[str]) -> None:
        self.stop_recording()
        self._recorder = WavRecorder(path)

    def stop_recording(self) -> Recording | None:
        rec, self._recorder = self._recorder, None
        return rec.close() if rec is not None else None

    def finish_recording(self) -> asyncio.Future[Recording | None]:
        """Stop recording now; (path, size, sha256, seconds) as an awaitable, which is how
        a ``ProxySession`` must answer (its recorder lives in a worker process)."""
        fut: asyncio.Future[Recording | None] = asyncio.get_running_loop().create_future()
        fut.set_result(self.stop_recording())
        return fut

    # ------------------------------------------------------------------ mute
    def set_muted(self, on: bool) -> None:
        """Replace what this leg receives by silence before it is relayed, mixed or recorded
        (the agent's mute); digits (RFC 4733) still pass."""
        self._rx_muted = on

    @property
    def muted(self) -> bool:
        return self._rx_muted

    # ------------------------------------------------------------------ bridging
    def bridge(self, other: RtpSession) -> None:
        """Relay each leg's received RTP to the other (transcoding PCMU↔PCMA as needed)."""
        if other is self:
            raise ValueError("cannot bridge a session to itself")
        self.unbridge()
        other.unbridge()
        self._bridge = weakref.ref(other)
        other._bridge = weakref.ref(self)
        self._relay_run = other._relay_run = False

    def unbridge(self) -> None:
        peer = self._bridge() if self._bridge is not None else None
        self._bridge = None
        self._relay_run = False
        if self._paced:
            self._paced.clear()  # the last call's audio is not the next one's
        if peer is not None and peer._bridge is not None and peer._bridge() is self:
            peer._bridge = None
            peer._relay_run = False
            if peer._paced:
                peer._paced.clear()

    @property
    def bridged_to(self) -> RtpSession | None:
        return self._bridge() if self._bridge is not None else None

    def _relay(self, payload: bytes, src_codec: str | None, src_ts: int, event: bool) -> None:
        """Send a packet received on the bridged leg, re-stamped into our own stream."""
        if self._closed or not self._send_ok or self.remote is None or self._fed:
            return
        if self._play_buf or self._tone_buf or self._te_tx or self._dtmf_queue:
            self._relay_run = False  # our own media has the floor
            return
        if event:
            if self.dtmf_pt is None:
                return  # the digit was still reported by the source leg's on_dtmf
            pt = self.dtmf_pt
        else:
            if src_codec != self.codec and src_codec is not None:
                payload = g711.transcode(payload, src_codec, self.codec)
            pt = self.payload_type
            paced = self._paced
            if paced is not None and len(payload) == FRAME:
                paced.append(payload)
                if len(paced) > PACED_FRAMES:
                    paced.popleft()  # a burst after a stall: keep the latency bounded
                self._relay_last_tick = self._tick_no
                return
        marker = False
        if not self._relay_run:
            # continue after this tick's frame, which the clock may already have sent
            now_ts = self._ts_base + FRAME * (self._tick_no + 1)
            self._relay_offset = (now_ts - src_ts) & 0xFFFFFFFF
            self._relay_run = True
            marker = True
        self._relay_last_tick = self._tick_no
        self._send(pt, (src_ts + self._relay_offset) & 0xFFFFFFFF, payload, marker)

    # ------------------------------------------------------------------ send path
    def _send(self, pt: int, ts: int, payload: bytes, marker: bool) -> None:
        seq = self.seq
        self.seq = (seq + 1) & 0xFFFF
        pkt = _HDR.pack(0x80, pt | 0x80 if marker else pt, seq, ts, self.ssrc) + payload
        if self._srtp is not None:
            pkt = self._srtp.protect(pkt)
        try:
            self._sock.sendto(pkt, self.remote)  # type: ignore[union-attr,arg-type]
        except OSError:  # buffer full (BlockingIOError) or unreachable: drop, count
            self.stats.tx_dropped += 1
            return
        st = self.stats
        st.tx_packets += 1
        st.tx_bytes += len(payload)

    def _ice_media(self, data: bytes, addr: tuple[str, int]) -> bool:
        """A WebRTC leg's port carries STUN, DTLS, SRTCP and SRTP (RFC 5764 §5.1.2, RFC 5761):
        answer STUN, let only SRTP through. RTCP is not needed to carry the call (our
        sender's reports stay aiortc's), so it is dropped before the SRTP check."""
        if is_stun(data):
            reply = self._ice.respond(data, addr)  # type: ignore[union-attr]
            if reply is not None:
                try:
                    self._sock.sendto(reply, addr)  # type: ignore[union-attr]
                except OSError:
                    self.stats.tx_dropped += 1
            return False
        return len(data) >= 12 and 127 < data[0] < 192 and not 192 <= data[1] <= 223

    def _tick(self, tick_no: int, due: float) -> None:
        """Called by the shared clock once per 20 ms tick."""
        self._tick_no = tick_no
        ts = (self._ts_base + FRAME * tick_no) & 0xFFFFFFFF
        if self._fax is not None and self._fax.sending:
            self._fax.tick(self, ts)  # a fax leg: the terminal has the floor, every 20 ms
            return
        can_send = self._send_ok and self.remote is not None
        pt = self.payload_type
        if self._dtmf_gap:
            self._dtmf_gap -= 1  # a pause between digits, so no gateway merges "11" into one
            starting = False
        else:
            starting = bool(self._dtmf_queue) and self.dtmf_pt is not None
        if self._te_tx is not None or starting:
            if self._te_tx is None:
                self._te_tx = TelephoneEventSender(self._dtmf_queue.popleft(), ts)
            payload, marker, last = self._te_tx.next()
            ts = self._te_tx.start_ts
            if last:
                self._te_tx = None
                self._dtmf_gap = DTMF_GAP_TICKS
                self._marker_next = True  # audio after an event starts a new talkspurt
            pt = self.dtmf_pt if self.dtmf_pt is not None else pt
        elif self._tone_buf:
            pos = self._tone_pos
            payload = self._tone_buf[pos : pos + FRAME]
            self._tone_pos = pos + FRAME
            if self._tone_pos >= len(self._tone_buf):
                self._tone_buf, self._tone_pos = b"", 0
            marker, self._marker_next = self._marker_next, False
        elif self._play_buf:
            pos = self._play_pos
            payload = self._play_buf[pos : pos + FRAME]
            self._play_pos = pos + FRAME
            if self._play_pos >= len(self._play_buf):
                if self._play_loop:
                    self._play_pos = 0
                else:
                    self._finish_play(True)
            marker, self._marker_next = self._marker_next, False
        else:
            if not can_send:
                self._update_active()  # idle and nowhere to send: leave the clock's list
                return
            if self._fed:  # the mixer's frame for this tick (silence if it had none)
                payload, self._feed = self._feed or self._silence, None
                self._relay_run = False
                marker, self._marker_next = self._marker_next, False
            elif self._paced:
                payload = self._paced.popleft()  # the relayed audio, on our own cadence
                marker, self._marker_next = self._marker_next, False
            elif (self._paced is None and self._bridge is not None
                  and tick_no - self._relay_last_tick <= RELAY_IDLE_TICKS):
                return  # the relay is feeding this leg
            else:
                self._relay_run = False
                payload = self._silence
                marker, self._marker_next = self._marker_next, False
        if not can_send:
            return  # time passes (prompts keep their timing) but the peer gets nothing
        if len(payload) < FRAME and pt == self.payload_type:
            payload += self._silence[: FRAME - len(payload)]
        self._send(pt, ts, payload, marker)
        late = _monotonic() - due
        if late > LATE:
            st = self.stats
            st.tx_late += 1
            if late > st.tx_max_late:
                st.tx_max_late = late

    # ------------------------------------------------------------------ receive path
    def _on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        st = self.stats
        fax = self._fax
        if fax is not None and fax.raw:  # switched to T.38: the port carries UDPTL now
            self.last_rx = _monotonic()
            fax.on_datagram(data, addr)
            return
        if self._ice is not None and not self._ice_media(data, addr):
            return
        if self._srtp is not None:
            # authenticated before anything else: a forged or replayed packet neither
            # plays nor counts towards latching
            try:
                data = self._srtp.unprotect(data)
            except SrtpError:
                st.rx_srtp_failed += 1
                return
            if self._ice is not None and self.remote != (addr[0], addr[1]) and self._ice.checked(addr):
                # authentic SRTP from a pair the browser's ICE checked: it switched pairs
                self.remote = (addr[0], addr[1])
        # fast path for the usual packet (V=2, no padding/extension/CSRC); rtp.parse
        # handles and validates everything else
        if len(data) >= 12 and data[0] == 0x80 and not 72 <= (data[1] & 0x7F) <= 76:
            b1 = data[1]
            pt = b1 & 0x7F
            marker = b1 > 0x7F
            seq, ts, ssrc = _RX.unpack_from(data, 2)
            payload = data[12:]
        else:
            try:
                pkt = parse(data)
            except RtpParseError:
                st.rx_malformed += 1
                return
            pt, marker, ts, ssrc, payload, seq = (
                pkt.payload_type, pkt.marker, pkt.timestamp, pkt.ssrc, pkt.payload, pkt.sequence,
            )
        remote = self.remote
        if not self._latched:
            if not self._may_latch(addr, ssrc, seq):
                st.rx_ignored += 1
                return
            # symmetric RTP: send back to where the peer really sends from
            self._latched = True
            self.remote = (addr[0], addr[1])
            self._update_active()
        elif remote is None or addr[0] != remote[0] or addr[1] != remote[1]:
            st.rx_ignored += 1  # stay latched: no RTP injection ("RTP bleed") from elsewhere
            if not self._stray_logged:
                self._log_stray(addr)
            return
        now = _monotonic()
        self.last_rx = now
        st.rx_packets += 1
        st.rx_bytes += len(payload)
        bridge = self._bridge() if self._bridge is not None else None
        if pt == self.dtmf_pt and pt is not None:
            digit = self._te_rx.feed(payload, ts, marker)
            if bridge is not None:
                bridge._relay(payload, None, ts, True)
            if digit is not None:
                self._emit_dtmf(digit, "rfc4733")
            return
        codec = self.codec if pt == self.payload_type else g711.PT_CODEC.get(pt)
        if codec is None or not payload:
            st.rx_ignored += 1  # comfort noise, unknown codecs
            return
        if fax is not None and fax.on_audio(seq, g711.decode(codec, payload)):
            return  # a fax leg: sample-exact to the fax terminal, to nothing else
        # RFC 3550 A.8 interarrival jitter, in timestamp units
        transit = now * 8000.0 - ts
        if self._rx_ssrc != ssrc:
            self._rx_ssrc = ssrc
            self._jitter_transit = transit
        else:
            d = transit - self._jitter_transit  # type: ignore[operator]
            self._jitter_transit = transit
            if -4e8 < d < 4e8:  # a timestamp wrap shows as a ±2^32 jump: skip that one
                st.jitter += (abs(d) - st.jitter) / 16.0
        # energy is summed in batches of 200 ms: numpy's per-call overhead would otherwise
        # cost more than everything else on this path
        if codec != self._energy_codec:
            self._flush_energy()
            self._energy_codec = codec
        self._energy_buf += payload
        if len(self._energy_buf) >= ENERGY_BATCH:
            self._flush_energy()
        if self._rx_muted:  # the statistics above keep what really arrived
            payload = bytes((g711.SILENCE_BYTE[codec],)) * len(payload)
        if bridge is not None:
            bridge._relay(payload, codec, ts, False)
        if self._recorder is None and self._on_audio is None and self._inband is None and self._tap is None:
            return
        pcm = g711.decode(codec, payload)
        if self._tap is not None:
            self._tap.push(pcm)
        if self._recorder is not None:
            self._recorder.write(pcm, ts)
        if self._inband is not None:
            self._inband.push(pcm)  # the engine's clock judges it, with other calls'
        if self._on_audio is not None:
            cb = self._on_audio()
            if cb is None:
                return
            buf = self._pending_pcm + pcm
            while len(buf) >= PCM_FRAME:
                cb(buf[:PCM_FRAME])
                buf = buf[PCM_FRAME:]
            self._pending_pcm = buf

    def _may_latch(self, addr: tuple[str, int], ssrc: int, seq: int) -> bool:
        """Whether this packet latches (see the module docstring). The address and port
        the SDP named are trusted at once. With ``comedia`` and an unroutable SDP address,
        any source must first send LATCH_PROBATION packets in sequence from one address
        and SSRC, as Asterisk's strictrtp learning does, so a stray or injected packet
        cannot capture the stream; without, nothing else ever latches."""
        sdp_remote = self._sdp_remote
        if sdp_remote is not None and addr[0] == sdp_remote[0] and addr[1] == sdp_remote[1]:
            return True
        if not self._comedia_open:
            if not self._stray_logged:
                self._log_stray(addr)
            return False
        cand = self._latch_candidate
        if cand is not None and cand[0] == addr and cand[1] == ssrc and cand[2] == (seq - 1) & 0xFFFF:
            count = cand[3] + 1
        else:
            count = 1
        self._latch_candidate = (addr, ssrc, seq, count)
        return count >= LATCH_PROBATION

    def _log_stray(self, addr: tuple[str, int]) -> None:
        """Once per session: a flood from elsewhere must not become a flood of log lines."""
        self._stray_logged = True
        log.info(
            "media on port %d: RTP from unexpected source %s:%d ignored (expecting %s); "
            "logged once per session", self.local_port, addr[0], addr[1],
            self.remote if self._latched else self._sdp_remote,
        )

    def _flush_energy(self) -> None:
        buf = self._energy_buf
        if buf:
            table = g711.square_table(self._energy_codec)
            self.stats.rx_energy_sum += float(table[np.frombuffer(buf, dtype=np.uint8)].sum())
            self.stats.rx_samples += len(buf)
            self._energy_buf = bytearray()

    def snapshot(self) -> dict[str, Any]:
        """Counters plus ``last_rx``, ``codec``, ``remote`` and ``local_port``, as plain data."""
        d: dict[str, Any] = dict(self.stats.as_dict())
        d.update(last_rx=self.last_rx, codec=self.codec, remote=self.remote, local_port=self.local_port)
        if self._ice is not None:
            d.update(stun_answered=self._ice.answered, stun_refused=self._ice.refused)
        return d

    async def fetch_stats(self) -> dict[str, Any]:
        """``snapshot()``, awaited: the call a ``ProxySession`` answers from its worker."""
        return self.snapshot()

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Free the port and every reference; idempotent."""
        if self._closed:
            return
        self._closed = True
        self.unbridge()
        self._finish_play(False)
        self._tone_buf = b""
        self._te_tx = None
        self._dtmf_queue.clear()
        if self._recorder is not None:
            self.stop_recording()
        self._flush_energy()
        self._tap = self._feed = None
        if self._fax is not None:
            self._fax.close()  # a running fax reports its result (call dropped) first
            self._fax = None
        self._on_dtmf = self._on_audio = None
        engine = self._engine()
        if engine is not None:
            engine._release(self)
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def __repr__(self) -> str:
        return (
            f"<RtpSession {self.host}:{self.local_port} {self.codec} remote={self.remote} "
            f"{'closed' if self._closed else 'open'}>"
        )
