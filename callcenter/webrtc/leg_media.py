"""``BrowserLegMedia``: the gateway's end of one agent leg, as a ``MediaSession``.

The voice channel places the agent leg to the gateway like to any phone; the media
engine (in process or in a worker, next to the caller's leg) sends that leg's RTP here.
This session owns one UDP socket: received G.711 is decoded and pushed to the browser's
``PhoneLine``; what the browser's microphone sends is encoded and sent back as RTP, paced
by the browser's own 20 ms frames. SDP is negotiated by the engine's ``SdpNegotiator``
(PCMU/PCMA), so the leg looks like a plain G.711 phone to the server.

Prompts, recording and bridging never happen on the gateway side of the leg (the server
does them on its own end of it), so those members refuse or do nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import time
from typing import Any

from callcenter.media import g711, sdp
from callcenter.media.interface import AudioCallback, DtmfCallback, PlaySource, Recording
from callcenter.media.negotiation import OfferAnswerMixin, SdpNegotiator
from callcenter.media.rtp import RtpParseError, build, parse
from callcenter.webrtc.audio import SAMPLES, rms
from callcenter.webrtc.line import PhoneLine

LEVEL_EVERY = 25  # the levels in stats() are sampled twice a second, not computed per packet


class BrowserLegMedia(OfferAnswerMixin):
    def __init__(self, host: str) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._sock.bind((host, 0))
        self.local_port = self._sock.getsockname()[1]
        self.negotiator = SdpNegotiator(host, self.local_port, ("PCMU", "PCMA"))
        self.last_rx: float | None = None
        self.on_dtmf: DtmfCallback | None = None
        self.on_audio: AudioCallback | None = None
        self.remote: tuple[str, int] | None = None
        self.codec = "PCMU"
        self._pt = 0
        self._send_ok = False
        self._closed = False
        self._seq = random.randrange(1 << 16)
        self._ts = random.randrange(1 << 32)
        self._ssrc = random.randrange(1, 1 << 32)
        self._marker = True
        self.line: PhoneLine | None = None
        self.stats = {"rx_packets": 0, "tx_packets": 0, "rx_rms": 0.0, "tx_rms": 0.0}
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._readable)

    @property
    def closed(self) -> bool:
        return self._closed

    def apply(self, neg: sdp.Negotiated, send: bool) -> None:
        self.remote = neg.remote_addr
        self.codec = neg.codec
        self._pt = neg.payload_type
        self._send_ok = send and neg.remote_addr is not None

    # the browser ------------------------------------------------------------------------
    def connect(self, line: PhoneLine) -> None:
        """Route this leg's audio to and from ``line`` (the agent answered in the browser)."""
        self.line = line
        line.attach(self._from_browser)

    def _from_browser(self, pcm: bytes) -> None:
        if self._closed or not self._send_ok or self.remote is None:
            return
        payload = g711.encode(self.codec, pcm)
        packet = build(self._pt, self._seq, self._ts, self._ssrc, payload, self._marker)
        self._marker = False
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = (self._ts + SAMPLES) & 0xFFFFFFFF
        with contextlib.suppress(OSError):
            self._sock.sendto(packet, self.remote)
            self.stats["tx_packets"] += 1
            if self.stats["tx_packets"] % LEVEL_EVERY == 1:
                self.stats["tx_rms"] = rms(pcm)

    def _readable(self) -> None:
        for _ in range(16):
            try:
                data, _addr = self._sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # an ICMP error queued on the socket
            try:
                packet = parse(data)
            except RtpParseError:
                continue
            if packet.payload_type != self._pt:
                continue  # telephone-event or comfort noise: the browser needs neither
            self.last_rx = time.monotonic()
            self.stats["rx_packets"] += 1
            if self.stats["rx_packets"] % LEVEL_EVERY == 1:
                self.stats["rx_rms"] = rms(g711.decode(self.codec, packet.payload))
            line = self.line
            if line is not None:
                line.track.push_g711(self.codec, packet.payload)

    # MediaSession members the gateway side never uses ------------------------------------
    async def play(self, source: PlaySource, *, interrupt_on_dtmf: bool = False, loop: bool = False) -> bool:
        return False

    @property
    def playing(self) -> bool:
        return False

    def stop_playing(self) -> None:
        pass

    def send_dtmf(self, digits: str) -> None:
        pass  # the desk's keypad sends digits on the caller's leg (/api/agent/dtmf)

    def feed_info_dtmf(self, digit: str) -> None:
        pass

    def start_recording(self, path: str | os.PathLike[str]) -> None:
        raise NotImplementedError("the server records on its own end of the agent leg")

    def finish_recording(self) -> asyncio.Future[Recording | None]:
        fut: asyncio.Future[Recording | None] = self._loop.create_future()
        fut.set_result(None)
        return fut

    def bridge(self, other: Any) -> None:
        raise NotImplementedError("a browser leg is bridged by the server, not by the gateway")

    def unbridge(self) -> None:
        pass

    @property
    def bridged_to(self) -> None:
        return None

    async def fetch_stats(self) -> dict[str, Any]:
        return {**self.stats, "codec": self.codec, "remote": self.remote, "local_port": self.local_port}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.line is not None:
            self.line.detach(self._from_browser)
            self.line = None
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()


class BrowserLegAllocator:
    """The gateway UA's ``MediaAllocator``: a leg for a line whose media the engine carries
    (``near`` is that line's engine session, lean.py) is a session of the server's engine
    next to it; any other leg gets a ``BrowserLegMedia`` (aiortc's full path)."""

    def __init__(self, host: str, media: Any = None) -> None:
        self.host = host
        self.media = media

    def allocate(self, near: Any = None) -> Any:
        if near is not None and self.media is not None:
            return self.media.allocate(near=near)
        return BrowserLegMedia(self.host)
