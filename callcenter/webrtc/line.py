"""``PhoneLine``: one browser phone's peer connection, kept up while the desk is open.

The browser offers once, when the agent switches the browser phone on; we answer with
aiortc. The connection then stays up between calls (silence both ways), so a call is
answered without a new ICE/DTLS round trip and "registered" means "audio can flow now",
not merely "a socket is open". A call attaches its RTP to the line (``attach``) and
detaches at its end.

Codecs: PCMU and PCMA are put first in our answer, so no transcoding to Opus is needed;
Opus is kept as a fallback for a browser that offers nothing else.

ICE host candidates: aioice gathers on every interface except 127.0.0.1. ``ice_hosts``
(webrtc.ice_hosts in server.yaml) names the addresses to gather on instead — a server's
public interface, or 127.0.0.1 for a browser on the same host (tests; Chromium then needs
``--allow-loopback-in-peer-connection``). aioice has no public hook for that, so we give
the connection its own gathering step built on its public ``get_component_candidates``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcrtpsender import RTCRtpSender

from callcenter.webrtc.audio import LineTrack, MediaStreamError, PcmChunker, rms
from callcenter.webrtc.lean import hand_over, only_cm_sha1_80

log = logging.getLogger(__name__)
PREFERRED = ("audio/PCMU", "audio/PCMA", "audio/opus")
LEAN_SILENCE_S = 30.0  # as RFC 7675's consent expiry

PcmSink = Callable[[bytes], Any]


def ice_servers(turn_url: str | None, username: str | None, credential: str | None) -> list[RTCIceServer]:
    if not turn_url:
        return []
    return [RTCIceServer(urls=turn_url, username=username, credential=credential)]


def gather_on(connection: Any, hosts: Sequence[str]) -> None:
    """Make an aioice Connection gather host candidates on ``hosts`` only."""
    if not hasattr(connection, "get_component_candidates"):
        raise RuntimeError("aioice changed: Connection.get_component_candidates is missing")

    async def gather_candidates() -> None:
        if connection._local_candidates_start:
            return
        connection._local_candidates_start = True
        for component in connection._components:
            connection._local_candidates += await connection.get_component_candidates(
                component=component, addresses=list(hosts))
        connection._local_candidates_end = True

    connection.gather_candidates = gather_candidates


class PhoneLine:
    """The agent's browser leg: peer connection, outgoing track, incoming audio pump."""

    def __init__(self, agent_id: str, *, ice_hosts: Sequence[str] = (),
                 servers: list[RTCIceServer] | None = None, media: Any = None) -> None:
        self.agent_id = agent_id
        self.media = media  # the server's MediaEngine/MediaPool: a G.711 line's media goes there
        self.lean: Any = None  # the line's engine session once handed over (lean.py)
        self._lean_since = 0.0
        self.ice_hosts = tuple(ice_hosts)
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers or []))
        self.track = LineTrack()
        self.sink: PcmSink | None = None  # the call's RTP sender, while a call is attached
        self.codec = ""
        self.frames_in = 0  # 20 ms chunks received from the browser
        self.energy_in = 0.0  # RMS of the last received chunk (mic level, as we hear it)
        self.connected = asyncio.Event()
        self.failed = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    async def answer(self, offer_sdp: str) -> str:
        """Our SDP answer to the browser's offer (complete: aiortc does not trickle)."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        audio = [t for t in self.pc.getTransceivers() if t.kind == "audio"]
        if not audio:
            raise ValueError("the offer has no audio")
        if self.media is not None and not only_cm_sha1_80(self.pc):
            self.media = None  # aiortc changed: keep its full path
        caps = RTCRtpSender.getCapabilities("audio").codecs
        ranked = sorted((c for c in caps if c.mimeType in PREFERRED),
                        key=lambda c: PREFERRED.index(c.mimeType))
        for t in audio:
            t.setCodecPreferences(ranked)
        audio[0].sender.replaceTrack(self.track)
        audio[0].direction = "sendrecv"
        if self.ice_hosts:
            for t in self.pc.getTransceivers():
                gather_on(t.sender.transport.transport.iceGatherer._connection, self.ice_hosts)
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        codecs = audio[0]._codecs if hasattr(audio[0], "_codecs") else []
        self.codec = codecs[0].mimeType.split("/")[1] if codecs else ""
        if self.codec in ("PCMU", "PCMA"):
            self.track.use_g711(self.codec)
            if self.media is not None:
                self.track.hold_first_frame()  # until connected: lean or not
        return self.pc.localDescription.sdp

    def _on_state(self) -> None:
        state = self.pc.connectionState
        log.info("browser phone of %s: %s", self.agent_id, state, extra={"agent_id": self.agent_id})
        if state == "connected":
            if self.media is not None and self.lean is None and self.codec in ("PCMU", "PCMA"):
                self.lean = hand_over(self.pc, self.codec, self.media)
                self._lean_since = time.monotonic()
            if self.lean is None:
                self.track.release()
            else:
                log.info("browser phone of %s: media in the engine", self.agent_id,
                         extra={"agent_id": self.agent_id})
            self.connected.set()
        elif state in ("failed", "closed"):
            self.failed.set()

    def lean_silent(self, after_s: float = LEAN_SILENCE_S) -> bool:
        """A handed-over line whose browser sent no RTP for ``after_s``: gone (aioice's
        consent checks no longer run on the line, and a browser always sends G.711)."""
        if self.lean is None:
            return False
        last = self.lean.last_rx if self.lean.last_rx is not None else self._lean_since
        return time.monotonic() - last > after_s

    def _on_track(self, track: Any) -> None:
        if track.kind == "audio" and self._pump is None:
            self._pump = asyncio.ensure_future(self._read(track))

    async def _read(self, track: Any) -> None:
        chunker = PcmChunker()
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            for pcm in chunker.feed(frame):
                self.frames_in += 1
                self.energy_in = rms(pcm)
                sink = self.sink
                if sink is not None:
                    sink(pcm)

    # a call on the line ----------------------------------------------------------------
    def attach(self, sink: PcmSink) -> None:
        self.track.clear()
        self.sink = sink

    def detach(self, sink: PcmSink | None = None) -> None:
        if sink is None or self.sink is sink:
            self.sink = None
            self.track.clear()

    async def stats(self) -> dict[str, Any]:
        if self.lean is not None:
            st = await self.lean.fetch_stats()
            return {"state": self.pc.connectionState, "codec": self.codec, "media": "engine",
                    "frames_in": st.get("rx_packets", 0), "level_in": round(float(st.get("rx_rms", 0.0)), 1),
                    "frames_out": st.get("tx_packets", 0)}
        return {"state": self.pc.connectionState, "codec": self.codec, "media": "aiortc",
                "frames_in": self.frames_in, "level_in": round(self.energy_in, 1),
                "frames_out": self.track.frames_sent, "audio_frames_out": self.track.audio_frames_sent}

    async def close(self) -> None:
        self.sink = None
        if self.lean is not None:
            self.lean.close()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pump
        self.track.stop()
        with contextlib.suppress(Exception):
            await self.pc.close()
