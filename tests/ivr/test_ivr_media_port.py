"""The IVR on real media: two RTP sessions on 127.0.0.1, one is the caller.

The caller leg sends RFC 4733 digits, in-band DTMF tones, or G.711 audio of
espeak-ng utterances; the other leg runs the demo flows through
``MediaCallPort``. Nothing is simulated between them: packets cross the
loopback interface, DTMF is detected by the media layer, prompts are real
synthesised speech.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import wave
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from callcenter.events import Event, IvrCompleted, IvrInputCollected, PromptPlayed, VoicemailRecorded
from callcenter.ivr.flows import load_flows
from callcenter.ivr.media_port import MediaCallPort
from callcenter.ivr.ports import CustomerInfo, OrderInfo, StaticLookups
from callcenter.ivr.runner import IvrEngine
from callcenter.ivr.services import load_services
from callcenter.media import MediaEngine
from callcenter.media.worker import MediaPool
from callcenter.speech import CachedTts, SphinxRecognizer, SphinxSettings
from callcenter.speech.phone_chain import espeak_phone_pcm, trim_silence
from tests.support import require_tool

ROOT = Path(__file__).resolve().parents[2]
OPEN = datetime(2026, 3, 30, 10, 0, tzinfo=UTC)
CLOSED = datetime(2026, 3, 29, 10, 0, tzinfo=UTC)
LOOKUPS = StaticLookups(customers=[("+447700900001", CustomerInfo(id="c-1", name="Ada", tier="vip"))])


def espeak_wav(text: str, path: Path, voice: str = "en-us", speed: int = 150) -> Path:
    """8 kHz mono 16-bit WAV of ``text`` spoken by espeak-ng (resampled by sox)."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(path)], check=True)
    raw.unlink()
    return path


class WatchedTts:
    """callcenter.speech's cached TTS, remembering which file holds which prompt text."""

    def __init__(self, tts: CachedTts) -> None:
        self.tts = tts
        self.text_of: dict[str, str] = {}

    async def render(self, text: str, *, language: str = "en", voice: str | None = None,
                     rate: int | None = None) -> Path:  # fmt: skip
        path = await self.tts.render(text, language=language, voice=voice, rate=rate)
        self.text_of[str(path)] = text
        return path


class RecordingWatch:
    """Test instrumentation around the IVR's media session: forwards every call and
    tells the caller script when a given prompt starts playing and when recording starts
    (a caller reacts to what it hears; these events stand for its ears)."""

    def __init__(self, session: Any, tts: WatchedTts) -> None:
        self._s = session
        self._tts = tts
        self.recording = asyncio.Event()
        self._watch: dict[str, asyncio.Event] = {}
        self._ended: dict[str, asyncio.Event] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("on_dtmf", "on_audio"):
            setattr(self._s, name, value)
        else:
            super().__setattr__(name, value)

    def when(self, prefix: str) -> asyncio.Event:
        ev = asyncio.Event()
        self._watch[prefix] = ev
        return ev

    def after(self, prefix: str) -> asyncio.Event:
        ev = asyncio.Event()
        self._ended[prefix] = ev
        return ev

    async def play(self, source: Any, **kw: Any) -> bool:
        text = self._tts.text_of.get(str(source), "")
        for prefix, ev in self._watch.items():
            if text.startswith(prefix):
                ev.set()
        finished = await self._s.play(source, **kw)
        for prefix, ev in self._ended.items():
            if text.startswith(prefix):
                ev.set()
        return finished

    def start_recording(self, path: str) -> None:
        self._s.start_recording(path)
        self.recording.set()


@pytest.fixture(scope="module")
def tts_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tts")  # shared: each prompt is synthesised once


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    rec = SphinxRecognizer(SphinxSettings(cache_dir=tmp_path_factory.mktemp("asr")))
    yield rec
    rec.close()


class Lines:
    """The caller's phone (an engine in this process) and the IVR's leg: from the same
    kind of engine, or (``worker``) from a media worker process, as ``rtp.workers: 2``
    gives the server — the IVR must not tell the difference."""

    def __init__(self, phones: MediaEngine, legs: MediaEngine | MediaPool) -> None:
        self.phones, self.legs = phones, legs

    def pair(self) -> tuple[Any, Any]:
        return self.phones.allocate(), self.legs.allocate()


@pytest.fixture(params=["inproc", "worker"])
async def media(request: pytest.FixtureRequest) -> AsyncIterator[Lines]:
    require_tool("espeak-ng")
    require_tool("sox")
    # a wide random range: other tests and benches on this machine bind RTP ports too
    base = random.randrange(40000, 59000) & ~1
    engine = MediaEngine("127.0.0.1", base, base + 511)
    await engine.start()
    pool: MediaPool | None = None
    if request.param == "worker":
        pool = MediaPool("127.0.0.1", base + 512, base + 1023, workers=1)
        await pool.start()
    yield Lines(engine, pool or engine)
    if pool is not None:
        await pool.stop()
    await engine.stop()


def connect(caller: Any, ivr: Any, telephone_event: bool) -> None:
    offer = caller.offer()
    if not telephone_event:
        offer = offer.replace(" 0 8 101", " 0 8")
    answer = ivr.answer(offer)
    assert answer is not None
    assert caller.apply_answer(answer)


async def run_call(
    lines: Lines,
    tmp_path: Path,
    *,
    ani: str,
    dnis: str,
    now: datetime,
    caller_script: Callable[[Any, RecordingWatch], Any],
    telephone_event: bool = True,
    lookups: StaticLookups = LOOKUPS,
    tts_cache: Path,
    recognizer: Any = None,
) -> tuple[Any, list[Event]]:
    flows = load_flows(ROOT / "ivr_flows", ["billing", "support", "sales", "general"])
    services = load_services(ROOT / "config" / "services.yaml")
    events: list[Event] = []
    ivr_engine = IvrEngine(flows, services, emit=events.append, lookups=lookups, clock=lambda: now,
                           voicemail_dir=tmp_path / "vm")  # fmt: skip
    caller, leg = lines.pair()
    connect(caller, leg, telephone_event)
    tts = WatchedTts(CachedTts.create(tts_cache, "espeak-ng"))
    watched = RecordingWatch(leg, tts)
    port = MediaCallPort(watched, ani=ani, dnis=dnis, tts=tts, recognizer=recognizer)
    try:
        script = asyncio.ensure_future(caller_script(caller, watched))
        try:
            result = await asyncio.wait_for(ivr_engine.run(port, contact_id="m1"), 60)
            await asyncio.wait_for(script, 10)
        except TimeoutError:
            script.cancel()
            heard = [(e.type, getattr(e, "step", ""), getattr(e, "how", ""), getattr(e, "value", ""))
                     for e in events if isinstance(e, IvrInputCollected | IvrCompleted)]  # fmt: skip
            raise AssertionError(f"the call and the caller's script went apart: {heard}") from None
        return result, events
    finally:
        port.close()
        caller.close()
        leg.close()


async def _press_at_menu(caller: Any, ears: RecordingWatch, digits: str = "3") -> None:
    await asyncio.wait_for(ears.when("For billing").wait(), 30)
    caller.send_dtmf(digits)


@pytest.mark.parametrize("telephone_event", [True, False], ids=["rfc4733", "inband"])
async def test_menu_choice_by_dtmf(media, tmp_path, tts_cache, telephone_event: bool) -> None:
    result, events = await run_call(media, tmp_path, ani="+447700900001", dnis="5000", now=OPEN,
                                    caller_script=_press_at_menu, tts_cache=tts_cache,
                                    telephone_event=telephone_event)  # fmt: skip
    assert result.outcome == "queued"
    assert (result.queue, result.priority) == ("sales", 10)
    got = [e for e in events if isinstance(e, IvrInputCollected)]
    assert [(g.step, g.how, g.value) for g in got] == [("departments", "dtmf", "3")]
    menu_prompt = [p for p in events if isinstance(p, PromptPlayed) and p.step == "departments"]
    assert menu_prompt and menu_prompt[0].interrupted  # barge-in stopped the long menu prompt
    greeting = [p for p in events if isinstance(p, PromptPlayed) and p.step == "greet_known"]
    assert greeting[0].text == "Hello Ada, thank you for calling."


async def test_order_status_digits_over_rtp(media, tmp_path, tts_cache) -> None:
    async def script(caller: Any, ears: RecordingWatch) -> None:
        await asyncio.wait_for(ears.when("Please enter your order number").wait(), 30)
        caller.send_dtmf("1001#")
        await asyncio.wait_for(ears.when("To check another order").wait(), 30)
        caller.send_dtmf("3")

    orders = StaticLookups(orders=[OrderInfo("ORD-1001", "shipped")])
    result, events = await run_call(media, tmp_path, ani="", dnis="5002", now=OPEN,
                                    caller_script=script, lookups=orders,
                                    tts_cache=tts_cache)  # fmt: skip
    assert result.outcome == "self_served"
    said = [p.text for p in events if isinstance(p, PromptPlayed)]
    assert "Order 1001 is shipped." in said


async def test_voicemail_recorded_from_rtp(media, tmp_path, tts_cache) -> None:
    utterance = espeak_wav("Hello, this is a message about my invoice. Please call me back.",
                           tmp_path / "message.wav")  # fmt: skip

    async def script(caller: Any, ears: RecordingWatch) -> None:
        await asyncio.wait_for(ears.when("To leave a message").wait(), 30)
        caller.send_dtmf("1")
        await asyncio.wait_for(ears.recording.wait(), 30)
        assert await caller.play(str(utterance)) is True
        caller.send_dtmf("#")

    result, events = await run_call(media, tmp_path, ani="+447700900009", dnis="5000", now=CLOSED,
                                    caller_script=script, tts_cache=tts_cache)  # fmt: skip
    assert result.outcome == "voicemail"
    vm = [e for e in events if isinstance(e, VoicemailRecorded)]
    assert len(vm) == 1
    with wave.open(vm[0].path) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    with wave.open(str(utterance)) as w:
        spoken = w.getnframes() / w.getframerate()
    assert vm[0].duration_s >= spoken * 0.8  # the whole message, not a fragment
    assert float(np.sqrt(np.mean(pcm * pcm))) > 300  # voice, not silence
    done = [e for e in events if isinstance(e, IvrCompleted)][-1]
    assert done.data["voicemail"] == vm[0].path


async def test_collect_ends_on_inter_digit_timeout_and_hangup_ends_the_wait(media, tts_cache) -> None:
    from callcenter.ivr.ports import CallEnded, DigitRules, InputSpec

    caller, leg = media.pair()
    connect(caller, leg, telephone_event=True)
    tts = CachedTts.create(tts_cache, "espeak-ng")
    port = MediaCallPort(leg, ani="", dnis="5000", tts=tts)
    try:
        spec = InputSpec(digits=DigitRules(min=1, max=6, terminator="#", first_timeout=10,
                                           inter_digit_timeout=0.4, overall_timeout=20))  # fmt: skip
        caller.send_dtmf("42")
        got = await asyncio.wait_for(port.collect(spec), 15)
        assert (got.how, got.value, got.terminated) == ("dtmf", "42", False)
        # max digits reached ends collection at once, the rest stays queued as type-ahead
        caller.send_dtmf("1234567")
        got = await asyncio.wait_for(port.collect(spec), 15)
        assert (got.value, got.terminated) == ("123456", False)
        got = await asyncio.wait_for(port.collect(spec), 15)
        assert got.value == "7"
        waiting = asyncio.ensure_future(port.collect(spec))
        port.caller_hung_up()
        with pytest.raises(CallEnded):
            await asyncio.wait_for(waiting, 5)
    finally:
        port.close()
        caller.close()
        leg.close()
        await tts.aclose()


SPOKEN = [
    # (utterance, espeak voice, words per minute, expected menu value, queue)
    ("technical support", "en-us", 160, "support", "support"),
    ("billing", "en-gb", 175, "billing", "billing"),
    ("operator", "en-us", 175, "operator", "general"),
    ("three", "en-us+f3", 175, "sales", "sales"),
]


@pytest.mark.parametrize(("said", "voice", "speed", "value", "queue"), SPOKEN,
                         ids=[f"{s[0]}-{s[1]}" for s in SPOKEN])  # fmt: skip
async def test_menu_choice_by_voice(media, tmp_path, tts_cache, recognizer, said: str, voice: str,
                                    speed: int, value: str, queue: str) -> None:  # fmt: skip
    # the caller's phone: espeak-ng speech band-limited to 300-3400 Hz, sent as G.711 RTP
    utterance = espeak_phone_pcm(said, voice, speed)

    async def script(caller: Any, ears: RecordingWatch) -> None:
        await asyncio.wait_for(ears.when("For billing").wait(), 30)
        # watch for the next prompt before speaking: the decision comes ~0.2 s after the
        # words end, before the utterance's own trailing silence has finished playing
        offer, account = ears.when("All our engineers"), ears.when("Please enter your account")
        assert await caller.play(utterance) is True
        if queue == "support":  # a long wait: the callback offer comes next, answer by key
            await asyncio.wait_for(offer.wait(), 30)
            caller.send_dtmf("2")
        if queue == "billing":  # an unknown caller is asked for the account: give none
            await asyncio.wait_for(account.wait(), 30)
            caller.send_dtmf("#")

    result, events = await run_call(media, tmp_path, ani="", dnis="5000", now=OPEN,
                                    caller_script=script, tts_cache=tts_cache,
                                    recognizer=recognizer,
                                    lookups=StaticLookups(waits={"support": 900}))  # fmt: skip
    assert result.outcome == "queued"
    assert result.queue == queue
    first = next(e for e in events if isinstance(e, IvrInputCollected))
    assert (first.step, first.how, first.value) == ("departments", "speech", said)
    assert result.variables["department"] == value
    assert 0 < first.confidence <= 1
    menu = [p for p in events if isinstance(p, PromptPlayed) and p.step == "departments"]
    assert menu[0].interrupted  # speech barged in on the menu prompt


async def test_a_hesitant_caller_is_not_cut_mid_phrase(media, tmp_path, tts_cache, recognizer) -> None:
    # "technical", 0.45 s of silence, "support": the recogniser must not decide on
    # "technical" alone (the old end-pointer cut such a caller after ~0.34 s)
    utterance = (trim_silence(espeak_phone_pcm("technical", "en-gb", 160)) + bytes(2 * 3600)
                 + trim_silence(espeak_phone_pcm("support", "en-gb", 160)))

    async def script(caller: Any, ears: RecordingWatch) -> None:
        await asyncio.wait_for(ears.when("For billing").wait(), 30)
        offer = ears.when("All our engineers")
        assert await caller.play(utterance) is True
        await asyncio.wait_for(offer.wait(), 30)
        caller.send_dtmf("2")

    result, events = await run_call(media, tmp_path, ani="", dnis="5000", now=OPEN,
                                    caller_script=script, tts_cache=tts_cache,
                                    recognizer=recognizer,
                                    lookups=StaticLookups(waits={"support": 900}))  # fmt: skip
    first = next(e for e in events if isinstance(e, IvrInputCollected))
    assert (first.step, first.how, first.value) == ("departments", "speech", "technical support")
    assert result.queue == "support"


async def test_nonsense_utterance_takes_no_match_path(media, tmp_path, tts_cache, recognizer) -> None:
    nonsense = espeak_phone_pcm("purple elephants are dancing in the moonlight", "en-us", 175)

    async def script(caller: Any, ears: RecordingWatch) -> None:
        await asyncio.wait_for(ears.when("For billing").wait(), 30)
        sorry = ears.when("Sorry, I did not understand")  # may start before play() returns
        assert await caller.play(nonsense) is True
        await asyncio.wait_for(sorry.wait(), 30)
        caller.send_dtmf("3")

    result, events = await run_call(media, tmp_path, ani="", dnis="5000", now=OPEN,
                                    caller_script=script, tts_cache=tts_cache,
                                    recognizer=recognizer)  # fmt: skip
    got = [(e.how, e.value) for e in events if isinstance(e, IvrInputCollected)]
    assert len(got) == 2 and got[0][0] == "speech"  # heard something that matched nothing…
    assert got[1] == ("dtmf", "3")  # …so the menu asked again, and the key answered
    assert result.variables["department"] == "sales"
    assert result.queue == "sales"


async def test_spoken_answer_after_the_prompt_ends(media, tmp_path, tts_cache, recognizer) -> None:
    """No barge-in: the caller listens to the whole menu, then answers in the silence."""
    utterance = espeak_phone_pcm("operator", "en-us", 175)

    async def script(caller: Any, ears: RecordingWatch) -> None:
        await asyncio.wait_for(ears.after("For billing").wait(), 60)
        assert await caller.play(utterance) is True

    result, events = await run_call(media, tmp_path, ani="", dnis="5000", now=OPEN,
                                    caller_script=script, tts_cache=tts_cache,
                                    recognizer=recognizer)  # fmt: skip
    menu = [p for p in events if isinstance(p, PromptPlayed) and p.step == "departments"]
    assert menu[0].interrupted is False
    first = next(e for e in events if isinstance(e, IvrInputCollected))
    assert (first.how, first.value) == ("speech", "operator")
    assert result.queue == "general"
