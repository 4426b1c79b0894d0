"""Cached TTS with the real engines (pyttsx3 worker process, espeak-ng CLI)."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callcenter.media import g711
from callcenter.speech import CachedTts, Outcome, SphinxRecognizer
from callcenter.speech.interfaces import TextToSpeech
from callcenter.speech.phone_chain import frames


@pytest.fixture(params=["pyttsx3", "espeak-ng"])
async def tts(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CachedTts]:
    engine = CachedTts.create(tmp_path / "tts", request.param)
    try:
        yield engine
    finally:
        await engine.aclose()


async def test_render_writes_8khz_mono_16bit_wav(tts: CachedTts) -> None:
    assert isinstance(tts, TextToSpeech)
    path = await tts.render("Welcome to the demo line.", language="en-US")
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert w.getnframes() > 8000 * 0.5  # at least half a second of speech
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]


async def test_second_render_is_a_cache_hit(tts: CachedTts) -> None:
    first = await tts.render("Please hold.", language="en-US")
    mtime = first.stat().st_mtime_ns
    again = await tts.render("Please  hold.", language="en-US")  # same words, same prompt
    assert again == first and tts.renders == 1 and tts.hits == 1
    assert first.stat().st_mtime_ns == mtime
    other = await tts.render("Please hold.", language="en-US", rate=120)
    assert other != first and tts.renders == 2


async def test_concurrent_identical_requests_render_once(tts: CachedTts) -> None:
    paths = await asyncio.gather(*[tts.render("One moment please.") for _ in range(6)])
    assert len(set(paths)) == 1 and tts.renders == 1


async def test_render_does_not_block_the_event_loop(tts: CachedTts) -> None:
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    await tts.render("This is a longer dynamic prompt, rendered while other calls go on.")
    during = ticks - before
    stop.set()
    await task
    assert tts.renders == 1
    assert during > 1  # the loop kept running other work while the prompt was synthesised


async def test_prerender_skips_a_failing_prompt(tts: CachedTts) -> None:
    paths = await tts.prerender(["Main menu.", "", "Goodbye."], language="en-US")
    assert len(paths) == 2 and all(p.is_file() for p in paths)


async def test_unknown_voice_fails_cleanly(tts: CachedTts) -> None:
    with pytest.raises(RuntimeError):
        await tts.render("Hello", voice="xx-nonexistent")
    ok = await tts.render("Hello again")  # the engine still works afterwards
    assert ok.is_file()


async def test_rendered_prompt_is_recognised_through_g711(
    tts: CachedTts, recognizer: SphinxRecognizer
) -> None:
    path = await tts.render("technical support", rate=160)
    with wave.open(str(path)) as w:
        pcm = w.readframes(w.getnframes())
    pcm = g711.decode("PCMA", g711.encode("PCMA", pcm))
    session = recognizer.start(["billing", "technical support", "sales", "operator"])
    for frame in frames(pcm):
        session.feed(frame)
    rec = await session.result(5)
    assert rec.outcome is Outcome.MATCH and rec.phrase == "technical support"
