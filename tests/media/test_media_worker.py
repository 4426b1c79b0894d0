"""Media in worker processes (MediaWorker, MediaPool), driven as the SIP layer drives it."""

from __future__ import annotations

import asyncio
import os
import signal
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from callcenter.media import AudioFormatError, g711
from callcenter.media.worker import MediaPool, MediaWorker, ProxySession, WorkerError
from tests.support import eventually

from .conftest import EngineFactory, port_range
from .test_media_engine import contains_audio

TONE = (5000 * np.sin(np.arange(2400) * 0.3)).astype("<i2").tobytes()  # 300 ms


async def worker_received(leg: ProxySession, more: int) -> None:
    """Until the worker has read ``more`` packets beyond now (the phone sends silence)."""
    base = (await leg.fetch_stats())["rx_packets"]
    while (await leg.fetch_stats())["rx_packets"] < base + more:
        pass  # each round trip through the worker yields to the loop
    # one more round trip: what those packets produced (tapped audio frames, flushed right
    # after the clock slot that read them) is now ahead of this reply in the pipe
    await leg.fetch_stats()


@pytest.fixture
async def pool() -> AsyncIterator[MediaPool]:
    lo, _ = port_range(128)
    p = MediaPool("127.0.0.1", lo, lo + 127, workers=2)
    await p.start()
    yield p
    await p.stop()


async def test_proxy_answers_at_once_plays_records_and_reports_dtmf(
    pool: MediaPool, make_engine: EngineFactory, tmp_path: Path
) -> None:
    local = await make_engine()  # the "phone", in this process
    phone = local.allocate()
    leg = pool.allocate()
    assert isinstance(leg, ProxySession)
    # SDP is answered synchronously, as the SIP layer needs, with the worker's port
    answer = leg.answer(phone.offer())
    assert answer is not None and f"m=audio {leg.local_port} " in answer
    assert phone.apply_answer(answer)

    digits: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    leg.on_dtmf = lambda d, s: digits.put_nowait((d, s))
    phone.send_dtmf("42")
    got = [await asyncio.wait_for(digits.get(), 5) for _ in range(2)]
    assert got == [("4", "rfc4733"), ("2", "rfc4733")]
    leg.feed_info_dtmf("9")  # SIP INFO digits go through the worker too (play interrupt)
    assert await asyncio.wait_for(digits.get(), 5) == ("9", "info")

    # a prompt played in the worker reaches the phone bit-exactly
    phone.start_recording(tmp_path / "phone.wav")
    assert await leg.play(TONE) is True
    rx = phone.stats.rx_packets  # the last packets may still be on their way
    await eventually(lambda: phone.stats.rx_packets >= rx + 3)
    path, *_ = phone.stop_recording()  # type: ignore[misc]
    with wave.open(path) as w:
        recorded = w.readframes(w.getnframes())
    assert contains_audio(recorded, g711.ulaw_decode(g711.ulaw_encode(TONE)))

    # the worker records what the phone sends; the result comes back as a future
    leg.start_recording(tmp_path / "leg.wav")
    await phone.play(TONE)
    await asyncio.wait_for(worker_received(leg, 3), 5)  # the tone's tail is in too
    info = await leg.finish_recording()
    assert info is not None and info[0] == str(tmp_path / "leg.wav") and info[3] > 0.2
    with wave.open(info[0]) as w:
        assert contains_audio(w.readframes(w.getnframes()), g711.ulaw_decode(g711.ulaw_encode(TONE)))

    # the SIP layer's media timeout reads last_rx, reported once a second
    await eventually(lambda: leg.last_rx is not None, timeout=5)
    stats = await leg.fetch_stats()
    assert stats["rx_packets"] > 0 and stats["codec"] == "PCMU"

    # a prompt interrupted by a digit resolves False
    playing = asyncio.ensure_future(leg.play(TONE * 20, interrupt_on_dtmf=True))
    await eventually(lambda: phone.stats.rx_packets > 40)
    phone.send_dtmf("1")
    assert await asyncio.wait_for(playing, 5) is False

    # errors come back as the same exceptions as in process; the worker keeps serving
    with pytest.raises(AudioFormatError, match="no such file"):
        await leg.play("/nonexistent.wav")
    assert await leg.play(TONE[:640]) is True
    leg.close()
    assert leg.closed and await leg.play(TONE) is False


async def test_audio_tap_forwards_the_callers_frames(pool: MediaPool, make_engine: EngineFactory) -> None:
    local = await make_engine()
    phone = local.allocate()
    leg = pool.allocate()
    assert phone.apply_answer(leg.answer(phone.offer()) or "")
    frames: list[bytes] = []
    leg.on_audio = frames.append
    await phone.play(TONE)
    await asyncio.wait_for(worker_received(leg, 3), 5)
    assert {len(f) for f in frames} == {320}  # 20 ms of 16-bit PCM each
    heard = b"".join(frames)
    assert contains_audio(heard, g711.ulaw_decode(g711.ulaw_encode(TONE)))
    leg.on_audio = None
    count = len(frames)
    await phone.play(TONE)
    # untapped: a round trip through the worker proves no frame is still on its way
    await leg.fetch_stats()
    assert len(frames) == count
    leg.close()


async def test_bridged_legs_share_a_worker_and_relay_both_ways(
    pool: MediaPool, make_engine: EngineFactory
) -> None:
    local = await make_engine()
    caller, agent = local.allocate(), local.allocate()
    a = pool.allocate()
    b = pool.allocate(near=a)
    c = pool.allocate()  # the emptier worker: calls are spread
    assert b.worker is a.worker and c.worker is not a.worker
    with pytest.raises(ValueError, match="same media worker"):
        a.bridge(c)
    assert caller.apply_answer(a.answer(caller.offer()) or "")
    # the agent's phone offers PCMA only: the worker transcodes
    agent_offer = agent.offer().replace("RTP/AVP 0 8", "RTP/AVP 8")
    assert b.answer(agent_offer) is not None and "PCMA" in (b.answer(agent_offer) or "")
    assert agent.apply_answer(b.answer(agent_offer) or "")
    a.bridge(b)
    await caller.play(TONE)
    await agent.play(TONE)
    await eventually(lambda: agent.stats.rx_packets >= 15 and caller.stats.rx_packets >= 15)
    assert agent.stats.rx_energy_sum > 0 and caller.stats.rx_energy_sum > 0
    for s in (a, b, c):
        s.close()
    await eventually(lambda: not pool.workers[0].sessions and not pool.workers[1].sessions)
    stats = await pool.stats()
    assert [s["sessions"] for s in stats] == [0, 0]


async def test_a_dead_worker_ends_its_prompts_and_gets_no_new_calls(make_engine: EngineFactory) -> None:
    lo, _ = port_range(128)
    pool = MediaPool("127.0.0.1", lo, lo + 127, workers=2)
    await pool.start()
    try:
        local = await make_engine()
        phone = local.allocate()
        leg = pool.allocate()
        assert phone.apply_answer(leg.answer(phone.offer()) or "")
        playing = asyncio.ensure_future(leg.play(TONE * 50))
        await eventually(lambda: phone.stats.rx_packets > 5)
        victim = leg.worker
        assert victim._proc is not None and victim._proc.pid is not None
        os.kill(victim._proc.pid, signal.SIGKILL)
        assert await asyncio.wait_for(playing, 10) is False
        await eventually(lambda: not victim.alive)
        with pytest.raises(WorkerError, match="not running"):
            await leg.fetch_stats()
        assert await asyncio.wait_for(leg.play(TONE), 1) is False  # not left hanging
        assert all(pool.allocate().worker is not victim for _ in range(3))
    finally:
        await pool.stop()


async def test_a_worker_killed_but_not_yet_noticed_gets_no_new_call_and_hands_over_its_calls() -> None:
    """Issue 20 soak: a call allocated between the kill and the pipe's EOF reaching the loop
    got 503; allocation now looks at the process, and the dead worker's calls are handed on."""
    lo, _ = port_range(128)
    pool = MediaPool("127.0.0.1", lo, lo + 127, workers=2)
    lost: list[list[ProxySession]] = []
    pool.on_worker_died = lost.append
    await pool.start()
    try:
        first, second = pool.allocate(), pool.allocate()  # one call on each worker
        victim = first.worker
        assert victim is pool.workers[0] and second.worker is pool.workers[1]
        assert victim._proc is not None and victim._proc.pid is not None
        os.kill(victim._proc.pid, signal.SIGKILL)
        victim._proc.join(10)  # dead, and the event loop has not run since: not noticed yet
        assert victim.alive  # the pipe's EOF is still unread
        new = pool.allocate()  # equal load: the first worker would be chosen
        assert new.worker is pool.workers[1]
        with pytest.raises(WorkerError):  # the agent's leg of a call whose media died
            pool.allocate(near=first)
        await eventually(lambda: lost == [[first]])
        assert not victim.alive and not second.closed
    finally:
        await pool.stop()


async def test_worker_ignores_sigterm_until_told_to_stop() -> None:
    lo, hi = port_range()
    worker = MediaWorker("127.0.0.1", lo, hi)
    await worker.start()
    assert worker._proc is not None and worker._proc.pid is not None
    os.kill(worker._proc.pid, signal.SIGTERM)  # as a SIGTERM to the whole process group
    assert (await worker.engine_stats())["sessions"] == 0  # still serving
    await worker.stop()
    assert not worker._proc.is_alive()


async def test_stopping_the_pool_with_calls_up_is_no_worker_death(caplog: pytest.LogCaptureFixture) -> None:
    """A shutdown stops the workers while sessions are still up: their pipes closing then is
    the end they were asked for, not a death (no CRITICAL "died" line, no on_died)."""
    lo, _ = port_range(1024)
    pool = MediaPool("127.0.0.1", lo, lo + 1023, workers=2)
    await pool.start()
    died: list[int] = []
    for w in pool.workers:
        w.on_died = lambda lost: died.append(len(lost))
    legs = [pool.allocate() for _ in range(400)]
    assert {leg.worker for leg in legs} == set(pool.workers)
    await asyncio.gather(*(leg.fetch_stats() for leg in legs))  # every worker holds live sessions
    await pool.stop()
    assert died == []
    assert not [r for r in caplog.records if "died" in r.getMessage()]
