"""Streaming recognition on real synthetic telephone audio (espeak-ng → G.711 → 8 kHz)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from callcenter.speech import Outcome, SphinxRecognizer
from callcenter.speech.audio import FRAME_BYTES
from callcenter.speech.phone_chain import espeak_phone_pcm, frames

from .conftest import MAIN_MENU, recognise

CLEAR_CASES = [
    ("technical support", "en-us", 160),
    ("technical support", "en-gb", 175),
    ("operator", "en-us", 175),
    ("billing", "en-us", 160),
    ("billing", "en-gb", 175),
    ("three", "en-us+f3", 175),
    ("two", "en-us", 175),
    ("operator", "en-us+m3", 140),
]


@pytest.mark.parametrize(("phrase", "voice", "speed"), CLEAR_CASES)
async def test_menu_phrase_is_recognised(
    recognizer: SphinxRecognizer, phrase: str, voice: str, speed: int
) -> None:
    pcm = espeak_phone_pcm(phrase, voice, speed)
    rec = await recognise(recognizer, pcm, MAIN_MENU)
    assert rec.outcome is Outcome.MATCH, rec
    assert rec.phrase == phrase
    assert 0.0 < rec.confidence <= 1.0
    assert rec.start_of_speech is not None and rec.end_of_speech is not None
    assert rec.start_of_speech < rec.end_of_speech
    assert rec.latency is not None and rec.latency >= 0.0


async def test_phrase_returned_as_the_flow_wrote_it(recognizer: SphinxRecognizer) -> None:
    pcm = espeak_phone_pcm("technical support", "en-us", 160)
    rec = await recognise(recognizer, pcm, ["Billing", "Technical Support!", "Sales"])
    assert rec.phrase == "Technical Support!"


@pytest.mark.parametrize("nonsense", ["purple elephants are dancing in the moonlight",
                                      "the weather is lovely this afternoon"])
async def test_nonsense_is_no_match(recognizer: SphinxRecognizer, nonsense: str) -> None:
    pcm = espeak_phone_pcm(nonsense, "en-us", 175)
    rec = await recognise(recognizer, pcm, MAIN_MENU)
    assert rec.outcome is Outcome.NO_MATCH, rec
    assert rec.phrase is None


async def test_silence_is_no_input(recognizer: SphinxRecognizer) -> None:
    session = recognizer.start(MAIN_MENU)
    for _ in range(25):
        session.feed(b"\0" * FRAME_BYTES)
    rec = await session.result(0.3)
    assert rec.outcome is Outcome.NO_INPUT
    assert rec.text is None and rec.phrase is None
    assert not session.speech_started.is_set()
    again = await session.result(0.3)  # asking twice gives the same answer
    assert again is rec


async def test_speech_start_signals_barge_in_before_the_decision(
    recognizer: SphinxRecognizer,
) -> None:
    pcm = espeak_phone_pcm("operator", "en-us", 175)
    session = recognizer.start(MAIN_MENU)
    decided_when_started: list[bool] = []
    session.on_speech_started = lambda: decided_when_started.append(session._decided.done())
    for frame in frames(pcm):
        session.feed(frame)
    await asyncio.wait_for(session.speech_started.wait(), 5)
    rec = await session.result(5)
    assert decided_when_started == [False]  # the IVR hears of speech before the decision
    assert rec.phrase == "operator"


async def test_decoding_runs_off_the_event_loop_thread(recognizer: SphinxRecognizer) -> None:
    pcm = espeak_phone_pcm("billing", "en-us", 160)
    loop_thread = threading.get_ident()
    session = recognizer.start(MAIN_MENU)
    worker_threads: set[int] = set()
    original = session._decode

    def spy(frame: bytes) -> None:
        worker_threads.add(threading.get_ident())
        original(frame)

    session._decode = spy  # type: ignore[method-assign]
    for frame in frames(pcm):
        session.feed(frame)
    rec = await session.result(5)
    assert rec.phrase == "billing"
    assert worker_threads and loop_thread not in worker_threads


async def test_concurrent_sessions_are_independent(recognizer: SphinxRecognizer) -> None:
    utterances = {"operator": espeak_phone_pcm("operator", "en-us", 175),
                  "technical support": espeak_phone_pcm("technical support", "en-us", 160),
                  "billing": espeak_phone_pcm("billing", "en-us", 160)}
    sessions = {p: recognizer.start(MAIN_MENU) for p in utterances}
    streams = {p: frames(pcm) for p, pcm in utterances.items()}
    for i in range(max(len(s) for s in streams.values())):  # interleave like parallel calls
        for p, fs in streams.items():
            if i < len(fs):
                sessions[p].feed(fs[i])
        await asyncio.sleep(0)
    results = {p: await s.result(5) for p, s in sessions.items()}
    assert {p: r.phrase for p, r in results.items()} == {p: p for p in utterances}


async def test_unknown_words_are_reported_and_an_empty_grammar_refused(
    recognizer: SphinxRecognizer,
) -> None:
    assert recognizer.unknown_words(["billing", "zzqxv support"]) == ["zzqxv"]
    with pytest.raises(ValueError, match="none of the phrases"):
        recognizer.start(["zzqxv", "qqxxz"])
    with pytest.raises(ValueError, match="language"):
        recognizer.start(["billing"], language="fr-FR")


async def test_closed_session_ignores_frames(recognizer: SphinxRecognizer) -> None:
    session = recognizer.start(MAIN_MENU)
    session.close()
    session.feed(b"\0" * FRAME_BYTES)  # must not raise
    assert session._frames == type(session._frames)()


async def test_a_crashed_decoding_worker_is_replaced(recognizer: SphinxRecognizer) -> None:
    pcm = espeak_phone_pcm("operator", "en-us", 175)
    for w in list(recognizer.workers._all):
        w.proc.kill()
        w.proc.wait(5)
    lost = await recognise(recognizer, pcm, MAIN_MENU)
    assert lost.outcome is Outcome.NO_MATCH and lost.phrase is None  # no crash, no hang
    for _ in range(len(recognizer.workers._all) + 1):  # each dead worker gets replaced
        again = await recognise(recognizer, pcm, MAIN_MENU)
        if again.outcome is Outcome.MATCH:
            break
    assert again.phrase == "operator"
    assert all(w.alive() for w in recognizer.workers._all)
