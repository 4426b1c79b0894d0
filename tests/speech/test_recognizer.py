"""Streaming recognition on real synthetic telephone audio (espeak-ng → G.711 → 8 kHz)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from callcenter.speech import Outcome, SphinxRecognizer
from callcenter.speech.audio import FRAME_BYTES
from callcenter.speech.phone_chain import espeak_phone_pcm, frames, trim_silence

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


DIGITS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# digits whose fricatives the phone band removes, recognised through the extra
# pronunciations of sphinx_model.PHONE_BAND_PRONUNCIATIONS (before them: five 1/18,
# seven 0/18 in the bench); "sales" likewise in the main menu
FRICATIVE_CASES = [
    ("five", "en-us", 160, DIGITS),
    ("five", "en-gb", 175, DIGITS),
    ("seven", "en-us", 175, DIGITS),
    ("seven", "en-us+f3", 160, DIGITS),
    ("sales", "en-gb", 175, MAIN_MENU),
    ("sales", "en-us+m3", 160, MAIN_MENU),
]


@pytest.mark.parametrize(("phrase", "voice", "speed", "grammar"), FRICATIVE_CASES)
async def test_words_that_lose_their_fricatives_on_the_phone_are_recognised(
    recognizer: SphinxRecognizer, phrase: str, voice: str, speed: int, grammar: list[str]
) -> None:
    rec = await recognise(recognizer, espeak_phone_pcm(phrase, voice, speed), grammar)
    assert (rec.outcome, rec.phrase) == (Outcome.MATCH, phrase), rec


def _hesitant(first: str, pause: float, second: str, voice: str, speed: int) -> bytes:
    """Two words with exactly ``pause`` seconds of silence between them."""
    return (trim_silence(espeak_phone_pcm(first, voice, speed)) + bytes(2 * int(8000 * pause))
            + trim_silence(espeak_phone_pcm(second, voice, speed)))


@pytest.mark.parametrize(("voice", "speed"), [("en-us", 175), ("en-gb", 160), ("en-us+m3", 210)])
async def test_a_pause_inside_a_phrase_does_not_cut_it(
    recognizer: SphinxRecognizer, voice: str, speed: int
) -> None:
    # 0.45 s: three times the end-of-speech silence, and longer than the ~0.34 s after
    # which the old VAD end-pointer cut "technical" off
    first = trim_silence(espeak_phone_pcm("technical", voice, speed))
    rec = await recognise(recognizer, _hesitant("technical", 0.45, "support", voice, speed), MAIN_MENU)
    assert (rec.outcome, rec.phrase) == (Outcome.MATCH, "technical support"), rec
    second_word_at = 0.5 + len(first) / 16000 + 0.45  # frames() leads with 0.5 s
    assert rec.end_of_speech is not None and rec.end_of_speech > second_word_at


async def test_half_a_phrase_is_held_until_the_pause_hangover_then_no_match(
    recognizer: SphinxRecognizer,
) -> None:
    session = recognizer.start(MAIN_MENU)
    decoded = threading.Event()
    original = session._finish

    def spy(*, final: bool) -> None:
        original(final=final)
        decoded.set()

    session._finish = spy  # type: ignore[method-assign]
    said = trim_silence(espeak_phone_pcm("technical", "en-us", 175))
    for frame in frames(said, lead=0.5, tail=0.3):  # stops after a short silence
        session.feed(frame)
    assert await asyncio.to_thread(decoded.wait, 30)
    await asyncio.sleep(0)  # let a decision posted from the worker thread land
    assert not session._decided.done()  # "technical" may be followed by "support"
    assert session._pending is not None
    for _ in range(round(recognizer.settings.pause_hangover / 0.02)):  # caller stays quiet
        session.feed(bytes(FRAME_BYTES))
    rec = await session.result(5)
    assert rec.outcome is Outcome.NO_MATCH and rec.phrase is None


async def test_a_complete_phrase_is_decided_after_a_short_silence(recognizer: SphinxRecognizer) -> None:
    # only end_silence + 0.1 s of audio follows the words: less than the old end-pointer
    # needed and less than the pause hangover, so the early decision must have made it
    session = recognizer.start(MAIN_MENU)
    tail = recognizer.settings.end_silence + 0.1
    said = trim_silence(espeak_phone_pcm("operator", "en-us", 175))  # without espeak's pad
    for frame in frames(said, lead=0.5, tail=tail):
        session.feed(frame)
    rec = await asyncio.wait_for(session.result(5), 8)  # no more audio comes
    assert (rec.outcome, rec.phrase) == (Outcome.MATCH, "operator")
    assert rec.end_of_speech_at is not None and rec.latency is not None and rec.latency >= 0


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
    original = session._finish

    def spy(*, final: bool) -> None:
        worker_threads.add(threading.get_ident())
        original(final=final)

    session._finish = spy  # type: ignore[method-assign]
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
