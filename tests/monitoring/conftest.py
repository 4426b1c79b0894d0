"""Media fixtures for the monitoring and recording tests: a server-side allocator (the
engine in process, or a pool of worker processes) and phones (RtpSessions in another
engine, each looping a tone and keeping what it receives)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callcenter.media import MediaEngine
from callcenter.media.worker import MediaPool
from tests.media.conftest import port_range


class Phone:
    """A real RTP endpoint: loops its tone, keeps every 20 ms frame it receives."""

    def __init__(self, engine: MediaEngine) -> None:
        self.session = engine.allocate()
        self.frames: list[bytes] = []
        self.session.on_audio = self.frames.append
        self.task: asyncio.Task[bool] | None = None

    def connect(self, leg: Any) -> None:
        answer = leg.answer(self.session.offer())
        assert answer is not None and self.session.apply_answer(answer)

    def loop(self, pcm: bytes) -> None:
        self.task = asyncio.ensure_future(self.session.play(pcm, loop=True))

    def quiet(self) -> None:
        self.session.stop_playing()

    async def next_audio(self, frames: int = 25) -> bytes:
        """The last ``frames`` received after now (what it hears in the current state)."""
        from tests.support import eventually

        start = len(self.frames) + 5  # a few frames for a switch to reach the phone
        await eventually(lambda: len(self.frames) >= start + frames, timeout=10)
        return b"".join(self.frames[start : start + frames])


@pytest.fixture(params=["in_process", "workers"])
async def server_media(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    lo, hi = port_range(128)
    if request.param == "in_process":
        media: Any = MediaEngine("127.0.0.1", lo, hi)
    else:
        media = MediaPool("127.0.0.1", lo, hi, workers=2)
    await media.start()
    yield media
    await media.stop()


@pytest.fixture
async def phones() -> AsyncIterator[MediaEngine]:
    lo, hi = port_range(64)
    engine = MediaEngine("127.0.0.1", lo, hi)
    await engine.start()
    yield engine
    await engine.stop()
