"""Listen, whisper and barge in the media engine's tick, checked by what each party's real
RTP endpoint receives (FFT of three different tones), in process and in worker processes;
the stereo recording of the same call (customer left, agent right, paused interval silent)."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np

from callcenter.media import MediaEngine
from callcenter.media.mixer import MixControl, saturating_sum

from .conftest import Phone
from .tones import AGENT_HZ, CUSTOMER_HZ, SUPERVISOR_HZ, heard, rms, tone

C, A, S = CUSTOMER_HZ, AGENT_HZ, SUPERVISOR_HZ


def test_saturating_sum_clips_instead_of_wrapping() -> None:
    a = np.array([30000, -30000, 100, 32767], dtype=np.int16)
    b = np.array([10000, -10000, -50, 1], dtype=np.int16)
    assert saturating_sum(a, b).tolist() == [32767, -32768, 50, 32767]


async def test_listen_whisper_barge_reach_exactly_the_right_parties(
    server_media: Any, phones: MediaEngine, tmp_path: Path
) -> None:
    customer, agent, supervisor = Phone(phones), Phone(phones), Phone(phones)
    c_leg = server_media.allocate()
    a_leg = server_media.allocate(near=c_leg)
    s_leg = server_media.allocate(near=c_leg)
    for phone, leg in ((customer, c_leg), (agent, a_leg), (supervisor, s_leg)):
        phone.connect(leg)
    c_leg.bridge(a_leg)
    customer.loop(tone(C))
    agent.loop(tone(A))
    supervisor.loop(tone(S))
    ctl = MixControl(c_leg)
    ctl.start_recording("rec-1", str(tmp_path / "call.wav"))

    # before monitoring: the plain bridge, the supervisor's phone gets nothing but silence
    assert heard(await customer.next_audio()) == {A}
    assert heard(await agent.next_audio()) == {C}
    assert heard(await supervisor.next_audio()) == set()

    ctl.monitor(s_leg, "listen")  # hears both sides, nobody hears them
    assert heard(await supervisor.next_audio()) == {C, A}
    assert heard(await agent.next_audio()) == {C}
    assert heard(await customer.next_audio()) == {A}

    ctl.set_mode("whisper")  # the agent hears the supervisor, the customer does not
    assert heard(await agent.next_audio()) == {C, S}
    assert heard(await customer.next_audio()) == {A}
    assert heard(await supervisor.next_audio()) == {C, A}

    ctl.set_mode("barge")  # three-way
    assert heard(await customer.next_audio()) == {A, S}
    assert heard(await agent.next_audio()) == {C, S}
    assert heard(await supervisor.next_audio()) == {C, A}

    ctl.set_mode("listen")  # back again within the same session
    assert heard(await customer.next_audio()) == {A}
    assert heard(await agent.next_audio()) == {C}

    ctl.unmonitor()
    assert heard(await supervisor.next_audio()) == set()
    assert heard(await agent.next_audio()) == {C}

    # PCI pause: a stretch of the recording silent in both channels, listed with its times
    ctl.pause(True)
    await agent.next_audio(30)
    ctl.pause(False)
    await agent.next_audio(30)
    result = await ctl.finish("rec-1")
    assert result is not None and result["path"] == str(tmp_path / "call.wav")
    (start, end), = result["intervals"]["pause"]
    assert end - start > 0.5
    with wave.open(result["path"]) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (2, 8000, 2)
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        assert abs(w.getnframes() / 8000 - result["duration_s"]) < 0.001
    left, right = frames[0::2], frames[1::2]
    before = slice(int(8000 * (start - 0.6)), int(8000 * (start - 0.1)))
    paused = slice(int(8000 * start), int(8000 * end))
    assert heard(left[before]) == {C} and heard(right[before]) == {A}
    assert rms(left[paused]) == 0 and rms(right[paused]) == 0
    after = slice(int(8000 * (end + 0.1)), int(8000 * (end + 0.4)))
    assert heard(left[after]) == {C} and heard(right[after]) == {A}
    # collected once: a second finish has nothing
    assert await ctl.finish("rec-1") is None
    for leg in (c_leg, a_leg, s_leg):
        leg.close()


async def test_recording_follows_a_transfer_and_survives_the_call_ending_first(
    server_media: Any, phones: MediaEngine, tmp_path: Path
) -> None:
    customer, first, second = Phone(phones), Phone(phones), Phone(phones)
    c_leg = server_media.allocate()
    a1 = server_media.allocate(near=c_leg)
    a2 = server_media.allocate(near=c_leg)
    for phone, leg in ((customer, c_leg), (first, a1), (second, a2)):
        phone.connect(leg)
    customer.loop(tone(C))
    first.loop(tone(A))
    second.loop(tone(S))
    ctl = MixControl(c_leg)
    ctl.start_recording("rec-2", str(tmp_path / "t.wav"))
    c_leg.bridge(a1)
    await customer.next_audio(40)
    c_leg.unbridge()  # held: no agent side
    ctl.mark("hold", True)
    await first.next_audio(40)
    ctl.mark("hold", False)
    c_leg.bridge(a2)  # the second agent takes over
    await customer.next_audio(40)
    c_leg.close()  # the call ends before the recording is collected
    result = await ctl.finish("rec-2")
    assert result is not None
    (h0, h1), = result["intervals"]["hold"]
    with wave.open(result["path"]) as w:
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    right = frames[1::2]
    assert heard(right[int(8000 * (h0 - 0.5)) : int(8000 * (h0 - 0.05))]) == {A}
    assert rms(right[int(8000 * (h0 + 0.1)) : int(8000 * (h1 - 0.05))]) == 0
    assert heard(right[int(8000 * (h1 + 0.2)) : int(8000 * (h1 + 0.6))]) == {S}
    assert heard(frames[0::2]) == {C}
    a1.close()
    a2.close()
