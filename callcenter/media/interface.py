"""``MediaSession``: one call leg's media as the SIP layer, the IVR and the contact core see it.

Two classes implement it: ``RtpSession`` (media in this process, callcenter.media.session)
and ``ProxySession`` (media in a worker process, callcenter.media.worker). Code outside
``callcenter/media/`` types against this Protocol, so it never needs to know which one
a call got. It is structural: neither class inherits from it, and a test double with the
same members plugs in too. ``runtime_checkable`` serves the conformance test only; the
hot paths never call ``isinstance`` on it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any, Protocol, Self, runtime_checkable

# What a finished recording reports: (path, size in bytes, sha256 hex, seconds of audio).
Recording = tuple[str, int, str, float]
# on_dtmf(digit, source): source is "rfc4733", "inband" or "info".
DtmfCallback = Callable[[str, str], Any]
# on_audio(frame): 20 ms of 16-bit PCM at 8 kHz, as received.
AudioCallback = Callable[[bytes], Any]
# A prompt file (8 kHz WAV or raw G.711, by path) or 16-bit PCM at 8 kHz in memory.
PlaySource = str | os.PathLike[str] | bytes | bytearray | memoryview


@runtime_checkable
class MediaSession(Protocol):
    """A call leg's RTP: SDP offer/answer, prompts, DTMF, recording, bridging, stats.

    Callbacks that are bound methods are held weakly (the owner of a session may set its
    own methods without forming a cycle); plain functions are held as they are.
    """

    local_port: int
    last_rx: float | None  # time.monotonic() of the last RTP received (media timeout)
    on_dtmf: DtmfCallback | None
    on_audio: AudioCallback | None  # set to listen (speech); None stops the frames

    @property
    def closed(self) -> bool: ...

    # SDP offer/answer (RFC 3264) ---------------------------------------------------
    @property
    def hold(self) -> bool:
        """We hold the peer: our offers and answers say sendonly."""
        ...

    def set_hold(self, on: bool) -> None: ...

    def answer(self, offer_sdp: str | bytes) -> str | None:
        """Our answer to an offer; None when nothing in it is acceptable (→ 488)."""
        ...

    def update(self, offer_sdp: str | bytes) -> str | None:
        """A re-INVITE's offer: same rules as ``answer``."""
        ...

    def offer(self) -> str: ...

    def apply_answer(self, answer_sdp: str | bytes) -> bool:
        """Take the peer's answer to our offer; False when it is unusable."""
        ...

    # audio ---------------------------------------------------------------------------
    async def play(
        self, source: PlaySource, *, interrupt_on_dtmf: bool = False, loop: bool = False
    ) -> bool:
        """True when the prompt played to its end, False when stopped or interrupted."""
        ...

    @property
    def playing(self) -> bool: ...

    def stop_playing(self) -> None: ...

    def send_dtmf(self, digits: str) -> None: ...

    def feed_info_dtmf(self, digit: str) -> None:
        """A digit the SIP layer received in an INFO request."""
        ...

    def start_recording(self, path: str | os.PathLike[str]) -> None: ...

    def finish_recording(self) -> asyncio.Future[Recording | None]: ...

    def set_muted(self, on: bool) -> None:
        """Replace what this leg receives by silence for everyone it reaches (relay, mixer,
        recorder): the agent's mute, at the server, for any phone."""
        ...

    @property
    def muted(self) -> bool: ...

    # bridging ------------------------------------------------------------------------
    def bridge(self, other: Self) -> None:
        """Relay each leg's RTP to the other; both legs are of the same kind."""
        ...

    def unbridge(self) -> None: ...

    @property
    def bridged_to(self) -> Self | None: ...

    # stats and lifetime ----------------------------------------------------------------
    async def fetch_stats(self) -> dict[str, Any]: ...

    def close(self) -> None:
        """Free the port and every reference; idempotent."""
        ...


class MediaAllocator(Protocol):
    """Where the SIP layer gets a new leg's media: ``MediaEngine`` (in process) or
    ``MediaPool`` (worker processes)."""

    def allocate(self, near: MediaSession | None = None) -> MediaSession:
        """A session on a free RTP port; ``near`` is the leg it will be bridged to (a
        pool puts both on one worker). Raises NoFreePortError when the range is full."""
        ...


__all__ = ["AudioCallback", "DtmfCallback", "MediaAllocator", "MediaSession", "PlaySource", "Recording"]
