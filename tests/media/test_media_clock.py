"""The shared clock: one task for all sessions, bounded catch-up after a stall."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from callcenter.media import rtp
from tests.support import eventually

from .conftest import EngineFactory, UdpPeer, offer_sdp


async def test_one_clock_task_for_many_sessions(make_engine: EngineFactory) -> None:
    before = {t.get_name() for t in asyncio.all_tasks()}
    engine = await make_engine(width=400)
    phone = UdpPeer()
    try:
        sessions = [engine.allocate() for _ in range(100)]
        for s in sessions:
            assert s.answer(offer_sdp(phone.addr[1])) is not None
        await eventually(lambda: all(s.stats.tx_packets >= 3 for s in sessions))
        # the sessions are spread over the clock's phases inside the 20 ms period
        sizes = [len(p) for p in engine._phase_active]
        assert len(sizes) == 4 and sum(sizes) == 100 and min(sizes) >= 20
        new = [t for t in asyncio.all_tasks() if t.get_name() not in before]
        assert [t.get_name() for t in new if t.get_name() == "media-clock"] == ["media-clock"]
        assert len([t for t in new if t is not asyncio.current_task()]) == 1
    finally:
        phone.close()


async def test_stall_skips_ticks_without_burst_and_keeps_timestamps_real(
    make_engine: EngineFactory,
) -> None:
    engine = await make_engine(max_catchup=2)
    phone = UdpPeer()
    try:
        s = engine.allocate()
        assert s.answer(offer_sdp(phone.addr[1])) is not None
        last = rtp.parse((await phone.recv())[0])
        # drain, then block the event loop for 300 ms (15 ticks) as a slow callback would
        phone._readable()  # also what is already in the socket buffer
        while not phone.queue.empty():
            last = rtp.parse(phone.queue.get_nowait()[0])
        tick_before = engine.tick_no
        time.sleep(0.3)  # the stall under test, not synchronisation
        first, _ = await phone.recv()
        skipped = engine.ticks_skipped
        assert skipped >= 10
        pkts = [rtp.parse(first)]
        while len(pkts) < 5:
            pkts.append(rtp.parse((await phone.recv())[0]))
        # no burst of 15 stale packets: the ticks were skipped, not replayed
        assert engine.tick_no - tick_before >= 15
        assert s.stats.tx_packets <= engine.ticks_run + 1
        # RTP time followed real time across the stall (a jump of ≥10 frames, not a burst
        # of stale consecutive frames), then steps by 160 again
        gap = (pkts[0].timestamp - last.timestamp) & 0xFFFFFFFF
        assert gap % 160 == 0 and gap >= 160 * 10
        assert (pkts[0].sequence - last.sequence) & 0xFFFF == 1  # nothing was sent meanwhile
        steps = {(b.timestamp - a.timestamp) & 0xFFFFFFFF for a, b in itertools.pairwise(pkts)}
        assert steps == {160}
    finally:
        phone.close()


async def test_looped_play_until_stopped(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    s = engine.allocate()
    phone = UdpPeer()
    try:
        assert s.answer(offer_sdp(phone.addr[1])) is not None
        task = asyncio.ensure_future(s.play(b"\x10\x00" * 480, loop=True))  # 3 frames
        await eventually(lambda: s.stats.tx_packets >= 12)
        assert not task.done() and s.playing
        s.stop_playing()
        assert await asyncio.wait_for(task, 5) is False
        assert not s.playing
    finally:
        phone.close()


async def test_a_broken_session_does_not_stop_the_clock(
    make_engine: EngineFactory, caplog: pytest.LogCaptureFixture
) -> None:
    engine = await make_engine()
    phone = UdpPeer()
    try:
        good, bad = engine.allocate(), engine.allocate()
        for s in (good, bad):
            assert s.answer(offer_sdp(phone.addr[1])) is not None
        bad._play_buf = 12345  # type: ignore[assignment]  # corrupt state: slicing raises
        await eventually(lambda: bad not in engine._active.values())
        sent = good.stats.tx_packets
        await eventually(lambda: good.stats.tx_packets >= sent + 5)
        assert "stops sending" in caplog.text
    finally:
        phone.close()
