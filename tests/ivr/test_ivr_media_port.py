"""The IVR on real media: two RTP sessions on 127.0.0.1, one is the caller.

The caller leg sends RFC 4733 digits, in-band DTMF tones, or G.711 audio of
espeak-ng utterances; the other leg runs the demo flows through
``MediaCallPort``. Nothing is simulated between them: packets cross the
loopback interface, DTMF is detected by the media layer, prompts are real
synthesised speech.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
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

ROOT = Path(__file__).resolve().parents[2]
OPEN = datetime(2026, 3, 30, 10, 0, tzinfo=UTC)
CLOSED = datetime(2026, 3, 29, 10, 0, tzinfo=UTC)
LOOKUPS = StaticLookups(customers=[("+447700900001", CustomerInfo(id="c-1", name="Ada", tier="vip"))])


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{tool} is required in CI")
        pytest.skip(f"{tool} not installed")


def espeak_wav(text: str, path: Path, voice: str = "en-us", speed: int = 150) -> Path:
    """8 kHz mono 16-bit WAV of ``text`` spoken by espeak-ng (resampled by sox)."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(path)], check=True)
    raw.unlink()
    return path


class EspeakTts:
    """Prompt renderer for these tests (espeak-ng + sox, cached by text).

    Stands in for callcenter.speech's TTS only where that module is absent; the
    media path under test (play with barge-in) is the same for any renderer.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.rendered: list[str] = []
        self.watch: dict[str, asyncio.Event] = {}

    async def render(self, text: str, *, language: str = "en", voice: str | None = None,
                     rate: int | None = None) -> Path:  # fmt: skip
        self.rendered.append(text)
        for prefix, ev in self.watch.items():
            if text.startswith(prefix):
                ev.set()
        path = self.directory / f"p{abs(hash((text, language)))}.wav"
        if not path.exists():
            lang = {"en": "en-us", "es": "es"}.get(language, "en-us")
            await asyncio.to_thread(espeak_wav, text, path, lang)
        return path

    def when(self, prefix: str) -> asyncio.Event:
        ev = asyncio.Event()
        self.watch[prefix] = ev
        return ev


class RecordingWatch:
    """Forwards to the media session and signals when recording starts (test instrumentation)."""

    def __init__(self, session: Any) -> None:
        self._s = session
        self.recording = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("on_dtmf", "on_audio"):
            setattr(self._s, name, value)
        else:
            super().__setattr__(name, value)

    def start_recording(self, path: str) -> None:
        self._s.start_recording(path)
        self.recording.set()


@pytest.fixture
async def media() -> AsyncIterator[MediaEngine]:
    _need("espeak-ng")
    _need("sox")
    base = random.randrange(40000, 59000) & ~1
    engine = MediaEngine("127.0.0.1", base, base + 63)
    await engine.start()
    yield engine
    await engine.stop()


def connect(caller: Any, ivr: Any, telephone_event: bool) -> None:
    offer = caller.offer()
    if not telephone_event:
        offer = offer.replace(" 0 8 101", " 0 8")
    answer = ivr.answer(offer)
    assert answer is not None
    assert caller.apply_answer(answer)


async def run_call(
    engine: MediaEngine,
    tmp_path: Path,
    *,
    ani: str,
    dnis: str,
    now: datetime,
    caller_script: Callable[[Any, EspeakTts, RecordingWatch], Any],
    telephone_event: bool = True,
    lookups: StaticLookups = LOOKUPS,
) -> tuple[Any, list[Event]]:
    flows = load_flows(ROOT / "ivr_flows", ["billing", "support", "sales", "general"])
    services = load_services(ROOT / "config" / "services.yaml")
    events: list[Event] = []
    ivr_engine = IvrEngine(flows, services, emit=events.append, lookups=lookups, clock=lambda: now,
                           voicemail_dir=tmp_path / "vm")  # fmt: skip
    caller, leg = engine.allocate(), engine.allocate()
    connect(caller, leg, telephone_event)
    tts = EspeakTts(tmp_path)
    watched = RecordingWatch(leg)
    port = MediaCallPort(watched, ani=ani, dnis=dnis, tts=tts)
    try:
        script = asyncio.ensure_future(caller_script(caller, tts, watched))
        result = await asyncio.wait_for(ivr_engine.run(port, contact_id="m1"), 60)
        await asyncio.wait_for(script, 10)
        return result, events
    finally:
        port.close()
        caller.close()
        leg.close()


async def _press_at_menu(caller: Any, tts: EspeakTts, _w: RecordingWatch, digits: str = "3") -> None:
    await asyncio.wait_for(tts.when("For billing").wait(), 30)
    caller.send_dtmf(digits)


@pytest.mark.parametrize("telephone_event", [True, False], ids=["rfc4733", "inband"])
async def test_menu_choice_by_dtmf(media, tmp_path, telephone_event: bool) -> None:
    result, events = await run_call(media, tmp_path, ani="+447700900001", dnis="5000", now=OPEN,
                                    caller_script=_press_at_menu,
                                    telephone_event=telephone_event)  # fmt: skip
    assert result.outcome == "queued"
    assert (result.queue, result.priority) == ("sales", 10)
    got = [e for e in events if isinstance(e, IvrInputCollected)]
    assert [(g.step, g.how, g.value) for g in got] == [("departments", "dtmf", "3")]
    menu_prompt = [p for p in events if isinstance(p, PromptPlayed) and p.step == "departments"]
    assert menu_prompt and menu_prompt[0].interrupted  # barge-in stopped the long menu prompt
    greeting = [p for p in events if isinstance(p, PromptPlayed) and p.step == "greet_known"]
    assert greeting[0].text == "Hello Ada, thank you for calling."


async def test_order_status_digits_over_rtp(media, tmp_path) -> None:
    async def script(caller: Any, tts: EspeakTts, _w: RecordingWatch) -> None:
        await asyncio.wait_for(tts.when("Please enter your order number").wait(), 30)
        caller.send_dtmf("1001#")
        await asyncio.wait_for(tts.when("To check another order").wait(), 30)
        caller.send_dtmf("3")

    orders = StaticLookups(orders=[OrderInfo("ORD-1001", "shipped")])
    result, events = await run_call(media, tmp_path, ani="", dnis="5002", now=OPEN,
                                    caller_script=script, lookups=orders)  # fmt: skip
    assert result.outcome == "self_served"
    said = [p.text for p in events if isinstance(p, PromptPlayed)]
    assert "Order 1001 is shipped." in said


async def test_voicemail_recorded_from_rtp(media, tmp_path) -> None:
    utterance = espeak_wav("Hello, this is a message about my invoice. Please call me back.",
                           tmp_path / "message.wav")  # fmt: skip

    async def script(caller: Any, tts: EspeakTts, watch: RecordingWatch) -> None:
        await asyncio.wait_for(tts.when("To leave a message").wait(), 30)
        caller.send_dtmf("1")
        await asyncio.wait_for(watch.recording.wait(), 30)
        assert await caller.play(str(utterance)) is True
        caller.send_dtmf("#")

    result, events = await run_call(media, tmp_path, ani="+447700900009", dnis="5000", now=CLOSED,
                                    caller_script=script)  # fmt: skip
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


async def test_collect_ends_on_inter_digit_timeout_and_hangup_ends_the_wait(media) -> None:
    from callcenter.ivr.ports import CallEnded, DigitRules, InputSpec

    caller, leg = media.allocate(), media.allocate()
    connect(caller, leg, telephone_event=True)
    port = MediaCallPort(leg, ani="", dnis="5000", tts=EspeakTts(Path("/nonexistent")))
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
