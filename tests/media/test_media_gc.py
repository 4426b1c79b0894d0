"""A closed session leaves no reference-cycle garbage (so the GC never pauses the clock)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path

import numpy as np

from callcenter.media import RtpSession, session

from .conftest import EngineFactory


class CallOwner:
    """Like a SIP call object: holds its session and registers bound-method callbacks."""

    def __init__(self, s: RtpSession) -> None:
        self.session = s
        self.digits: list[str] = []
        self.two_digits = asyncio.Event()
        s.on_dtmf = self.handle_dtmf
        s.on_audio = self.handle_audio

    def handle_dtmf(self, digit: str, source: str) -> None:
        self.digits.append(digit)
        if len(self.digits) == 2:
            self.two_digits.set()

    def handle_audio(self, pcm: bytes) -> None:
        pass


async def test_closed_sessions_are_freed_by_refcount_alone(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    e1, e2 = await make_engine(), await make_engine()
    pcm = (4000 * np.sin(np.arange(1600) / 3)).astype("<i2").tobytes()
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        refs: list[weakref.ref[object]] = []
        for i in range(3):
            a, b, c = e1.allocate(), e2.allocate(), e2.allocate()
            answer = b.answer(a.offer())
            assert answer is not None and a.apply_answer(answer)
            answer = c.answer(a.offer())
            assert answer is not None
            owner_a, owner_b = CallOwner(a), CallOwner(b)
            b.start_recording(tmp_path / f"rec{i}.wav")
            b.bridge(c)
            a.send_dtmf("12")
            play = asyncio.ensure_future(a.play(pcm))
            await asyncio.wait_for(play, 5)
            await asyncio.wait_for(owner_b.two_digits.wait(), 5)
            long_play = asyncio.ensure_future(b.play(pcm * 20))
            await asyncio.sleep(0)  # the play has started
            a.close()
            b.close()
            c.close()
            assert await long_play is False  # closing ends a play with "interrupted"
            refs += [weakref.ref(x) for x in (a, b, c, owner_a, owner_b)]
            del a, b, c, owner_a, owner_b, play, long_play
        # freed by reference counting alone: the collector is off
        assert [r for r in refs if r() is not None] == []
        gc.collect()
        ours = [o for o in gc.garbage if type(o).__module__.startswith("callcenter.media")]
        assert ours == []
        assert not any(isinstance(o, RtpSession) for o in gc.garbage)
        assert session.RtpSession.__dictoffset__ == 0  # __slots__: no per-instance dict
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
