"""Shared fixtures: one recogniser per test session (decoders are costly to build)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callcenter.speech import SphinxRecognizer, SphinxSettings
from callcenter.speech.interfaces import Recognition
from callcenter.speech.phone_chain import frames

MAIN_MENU = ["billing", "technical support", "sales", "operator", "one", "two", "three", "four"]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech-cache")


@pytest.fixture
async def recognizer(model_cache: Path) -> AsyncIterator[SphinxRecognizer]:
    rec = SphinxRecognizer(SphinxSettings(cache_dir=model_cache, workers=2))
    try:
        yield rec
    finally:
        rec.close()


async def recognise(rec: SphinxRecognizer, pcm: bytes, phrases: list[str],
                    timeout: float = 5.0) -> Recognition:
    session = rec.start(phrases)
    for frame in frames(pcm):
        session.feed(frame)
        await asyncio.sleep(0)  # yield like a real media loop between packets
    return await session.result(timeout)
