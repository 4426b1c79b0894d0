"""The engine in a separate worker process, driven over its pipe protocol."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np

from callcenter.media import g711
from callcenter.media.worker import MediaWorker, WorkerError

from .conftest import EngineFactory, port_range, wait_for
from .test_media_engine import contains_audio


async def test_worker_process_plays_records_bridges_and_reports_dtmf(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    lo, hi = port_range()
    worker = MediaWorker("127.0.0.1", lo, hi)
    await worker.start()
    local = await make_engine()  # a "phone" in this process
    try:
        leg = await worker.allocate()
        assert lo <= leg.local_port <= hi
        phone = local.allocate()
        answer = await leg.answer(phone.offer())
        assert answer is not None and phone.apply_answer(answer)
        digits: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        leg.on_dtmf = lambda d, s: digits.put_nowait((d, s))
        phone.send_dtmf("42")
        assert [await asyncio.wait_for(digits.get(), 5) for _ in range(2)] == [
            ("4", "rfc4733"), ("2", "rfc4733"),
        ]
        # the worker plays a prompt to the phone, with completion reported back
        phone.start_recording(tmp_path / "phone.wav")
        pcm = (5000 * np.sin(np.arange(2400) * 0.3)).astype("<i2").tobytes()
        assert await leg.play(pcm) is True
        await wait_for(lambda: phone.stats.rx_packets >= 15)
        rx = phone.stats.rx_packets
        await wait_for(lambda: phone.stats.rx_packets >= rx + 3)
        path, *_ = phone.stop_recording()  # type: ignore[misc]
        with wave.open(path) as w:
            recorded = w.readframes(w.getnframes())
        assert contains_audio(recorded, g711.ulaw_decode(g711.ulaw_encode(pcm)))
        stats = await leg.stats()
        assert stats["rx_packets"] > 0 and stats["last_rx"] is not None
        # errors come back as exceptions, and the worker keeps serving
        other = await worker.allocate()
        try:
            await leg.bridge(other)
            await other.play("/nonexistent.wav")
        except WorkerError as exc:
            assert "AudioFormatError" in str(exc)
        else:
            raise AssertionError("bad prompt accepted")
        await leg.close()
        await other.close()
        assert (await worker.call("engine_stats"))["sessions"] == 0
    finally:
        await worker.stop()
