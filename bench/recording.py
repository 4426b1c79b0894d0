"""Call recording: its overhead on the media workers, and how many recorded calls they carry.

Each call is what the server holds for a connected call: a customer leg and an agent leg in
a media worker (``MediaPool``, as ``rtp.workers: N``), bridged. The customer's phone (an
``RtpSession`` of this process) talks into the customer leg: it loops a few sentences of
offline speech (espeak-ng through ``CachedTts``); that is the recording's left channel. The
agent leg plays a looped prompt from the worker's own 20 ms clock to the kernel-timestamping
receiver of bench/media.py (a separate process), which measures each packet's lateness
against its stream's cadence: the criterion of bench/media.py and bench/sip_load.py's
capacity (> 1 % of packets more than 5 ms late), i.e. whether the recording's work in the
tick makes the worker's clock late. (Nothing comes back from the receiver, so the right
channel is silence; its cost per tick is the same: one frame written.)

At each level N, in the same run and on the same calls, alternating (2-3 pairs): a window
unrecorded, then every call recorded (``MixControl.start_recording``: the stereo WAV written
by the worker's tick) for a window, then the recordings finished. Per level: late packets
unrecorded vs recorded, the workers' CPU (/proc) and what recording adds per call, the WAV
bytes written per minute. N is raised until more than 1 % of the recorded calls' packets are
late. Then the background transcode (transcode.py, opus-tools) of a recorded WAV and of a
minute of speech on both channels: Opus bytes per minute and opusenc CPU per audio minute.

    python bench/recording.py            # full ramp (~6 s windows) → results/recording.json
    python bench/recording.py --quick    # < 1 minute → results/recording_quick.json
    python bench/recording.py --realtime # workers (rtp.realtime_priority) and receiver at
                                         # SCHED_RR, as on a busy host → *_realtime.json

All traffic is on 127.0.0.1. The machine has 2 cores shared by the talking phones, the
workers, the receiver and other sessions' work: figures are lower bounds; the load average
at start is saved.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is not a package: media.py, loopback.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import media as media_bench  # the kernel-timestamping receiver and its lateness analysis
from loopback import proc_cpu

from callcenter.media import MediaEngine
from callcenter.media.mixer import MixControl
from callcenter.media.worker import MediaPool
from callcenter.recording.transcode import to_opus, wav_seconds
from callcenter.speech.tts import CachedTts

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SPEECH = (
    "Thank you for calling. I would like to check the status of my order, which I placed last Tuesday. "
    "The reference number is on the email you sent me. Could you also tell me when it will be delivered, "
    "and whether someone needs to be at home to sign for it?"
)


async def speech_pcm(cache: Path) -> bytes:
    """A few sentences of offline TTS at 8 kHz, a whole number of 20 ms frames (it loops)."""
    tts = CachedTts.create(cache, "espeak-ng")
    try:
        path = await tts.render(SPEECH)
    finally:
        await tts.aclose()
    with wave.open(str(path)) as w:
        assert w.getframerate() == 8000 and w.getnchannels() == 1
        pcm = w.readframes(w.getnframes())
    return pcm[: len(pcm) // 320 * 320]


class Calls:
    """N bridged calls in the workers: a talking customer phone, the agent leg playing."""

    def __init__(self, pool: MediaPool, phones: MediaEngine, rx_port: int, speech: bytes) -> None:
        self.pool, self.phones, self.speech = pool, phones, speech
        self.offer = (
            "v=0\r\no=rx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {rx_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        )
        self.customers: list[Any] = []
        self.talking: list[asyncio.Task[bool]] = []

    def grow(self, n: int) -> None:
        loop = asyncio.get_running_loop()
        while len(self.customers) < n:
            phone = self.phones.allocate()
            customer = self.pool.allocate()
            answer = customer.answer(phone.offer())
            assert answer is not None and phone.apply_answer(answer)
            agent = self.pool.allocate(near=customer)
            assert agent.answer(self.offer) is not None
            customer.bridge(agent)
            # each phone starts at its own place in the speech: the streams are not in lockstep
            start = (len(self.customers) * 4160) % len(self.speech) // 320 * 320
            speech = self.speech[start:] + self.speech[:start]
            self.talking.append(loop.create_task(phone.play(speech, loop=True)))
            self.talking.append(loop.create_task(agent.play(self.speech, loop=True)))  # the measured stream
            self.customers.append(customer)

    async def close(self) -> None:
        for t in self.talking:
            t.cancel()
        await asyncio.gather(*self.talking, return_exceptions=True)


def workers_cpu(pool: MediaPool) -> float:
    return sum(proc_cpu(w._proc.pid, children=False) for w in pool.workers if w._proc is not None)


async def window(rcv: media_bench.Receiver, pool: MediaPool, seconds: float) -> dict[str, float]:
    cpu0 = workers_cpu(pool)
    rx, own_cpu, wall = await rcv.window(seconds)
    return {**rx, "workers_cpu_core_fraction": (workers_cpu(pool) - cpu0) / wall,
            "phones_cpu_core_fraction": own_cpu / wall}  # fmt: skip


def combine(windows: list[dict[str, float]]) -> dict[str, float]:
    """Several windows as one: late fraction and loss weighted by packets, the rest averaged."""
    packets = sum(w["packets"] for w in windows) or 1
    return {
        "packets": packets,
        "late_fraction": sum(w["late_fraction"] * w["packets"] for w in windows) / packets,
        "loss": sum(w["loss"] * w["packets"] for w in windows) / packets,
        "p99_ms": max(w.get("p99_ms", 0.0) for w in windows),
        "streams": min(w.get("streams", 0) for w in windows),
        **{k: sum(w[k] for w in windows) / len(windows)
           for k in ("workers_cpu_core_fraction", "phones_cpu_core_fraction")},
    }


async def level(calls: Calls, rcv: media_bench.Receiver, n: int, win: float, warmup: float, pairs: int,
                wav_dir: Path) -> tuple[dict[str, Any], Path | None]:  # fmt: skip
    """Unrecorded and recorded windows alternate (``pairs`` of each), so a burst of other
    work on the machine falls on both kinds alike."""
    calls.grow(n)
    await asyncio.sleep(warmup)  # bench sequencing: new calls' media settled
    plain: list[dict[str, float]] = []
    rec: list[dict[str, float]] = []
    files: list[Path] = []
    for k in range(pairs):
        plain.append(await window(rcv, calls.pool, win))
        controls = [MixControl(c) for c in calls.customers]
        ids = [f"rec-bench-{n}-{k}-{i}" for i in range(n)]
        for rec_id, ctl in zip(ids, controls, strict=True):
            ctl.start_recording(rec_id, str(wav_dir / f"{rec_id}.wav"))
        await asyncio.sleep(0.5)
        rec.append(await window(rcv, calls.pool, win))
        done = await asyncio.gather(*(ctl.finish(rec_id) for rec_id, ctl in zip(ids, controls, strict=True)))
        files += [Path(d["path"]) for d in done if d]
    seconds = sum(wav_seconds(f) for f in files)
    size = sum(f.stat().st_size for f in files)
    keep = files[0] if files else None
    for f in files[1:]:
        f.unlink()
    p, r = combine(plain), combine(rec)
    row = {
        "calls": n,
        "recordings": len(files) // pairs,
        "late_unrecorded": p["late_fraction"],
        "late_recorded": r["late_fraction"],
        "p99_ms_unrecorded": p["p99_ms"],
        "p99_ms_recorded": r["p99_ms"],
        "loss_recorded": r["loss"],
        "streams_seen": r["streams"],
        "workers_cpu_unrecorded": p["workers_cpu_core_fraction"],
        "workers_cpu_recorded": r["workers_cpu_core_fraction"],
        "recording_cpu_us_per_call_s": (r["workers_cpu_core_fraction"] - p["workers_cpu_core_fraction"])
        / n * 1e6,
        "phones_cpu": r["phones_cpu_core_fraction"],
        "wav_bytes_per_min": size / seconds * 60 if seconds else 0.0,
    }
    print_row(row)
    return row, keep


async def opus_figures(recorded: Path | None, speech: bytes, tmp: Path, bitrate: int) -> dict[str, Any]:
    """Opus bytes and opusenc CPU per minute of audio: a recorded WAV, and a minute of
    speech on both channels (the customer's and, offset, as if the agent talked over it)."""
    mono = np.frombuffer(speech, dtype="<i2")
    reps = int(np.ceil(60 * 8000 / len(mono))) + 1
    left = np.tile(mono, reps)[: 60 * 8000]
    right = np.roll(left, len(mono) // 2)
    both = tmp / "speech-both.wav"
    with wave.open(str(both), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.column_stack([left, right]).astype("<i2").tobytes())
    out: dict[str, Any] = {"bitrate_kbps": bitrate}
    for name, wav in (("recorded_speech_left_silence_right", recorded), ("speech_both_channels", both)):
        if wav is None:
            continue
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds = await to_opus(wav, wav.with_suffix(".opus"), bitrate)  # encodes and verifies
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        out[name] = {
            "seconds": round(seconds, 2),
            "wav_bytes_per_min": round(wav.stat().st_size / seconds * 60),
            "opus_bytes_per_min": round(wav.with_suffix(".opus").stat().st_size / seconds * 60),
            "encode_and_verify_cpu_s_per_audio_min": round(cpu / seconds * 60, 3),
        }
    return out


HEAD = (f"{'calls':>6} {'late plain':>10} {'late rec':>9} {'p99 rec':>8} {'loss':>6} {'workers CPU':>14} "
        f"{'µs/call·s':>10} {'phones CPU':>10} {'WAV MB/min':>10}")  # fmt: skip


def print_row(r: dict[str, Any]) -> None:
    print(f"{r['calls']:>6} {100 * r['late_unrecorded']:>9.2f}% {100 * r['late_recorded']:>8.2f}% "
          f"{r['p99_ms_recorded']:>7.2f}  {100 * r['loss_recorded']:>5.2f}% "
          f"{100 * r['workers_cpu_unrecorded']:>5.1f}→{100 * r['workers_cpu_recorded']:>5.1f}% "
          f"{r['recording_cpu_us_per_call_s']:>10.1f} {100 * r['phones_cpu']:>9.1f}% "
          f"{r['wav_bytes_per_min'] / 1e6:>10.2f}", flush=True)  # fmt: skip


async def run(levels: list[int], win: float, warmup: float, pairs: int, workers: int,
              tmp: Path, realtime: bool = False) -> dict[str, Any]:  # fmt: skip
    speech = await speech_pcm(tmp / "tts")
    rcv = media_bench.Receiver(realtime)
    # realtime: the workers at SCHED_RR 10, what server.yaml's rtp.realtime_priority does
    pool = MediaPool("127.0.0.1", 30000, 39999, workers=workers,
                     **({"realtime_priority": 10} if realtime else {}))  # fmt: skip
    phones = MediaEngine("127.0.0.1", 40000, 49999)
    await pool.start()
    await phones.start()
    calls = Calls(pool, phones, rcv.port, speech)
    rows: list[dict[str, Any]] = []
    keep: Path | None = None
    print(HEAD)
    try:
        for n in levels:
            row, wav = await level(calls, rcv, n, win, warmup, pairs, tmp)
            rows.append(row)
            if wav is not None:
                keep = wav
            if row["late_recorded"] > 0.01 or row["recordings"] < n:
                break
    finally:
        await calls.close()
        await phones.stop()
        await pool.stop()
        rcv.close()
    opus = await opus_figures(keep, speech, tmp, 24)
    ok = [r["calls"] for r in rows if r["late_recorded"] <= 0.01 and r["recordings"] == r["calls"]]
    return {"levels": rows, "recorded_capacity_calls": max(ok, default=0), "opus": opus}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="< 1 minute: two levels, short windows")
    p.add_argument("--workers", type=int, default=2, help="media worker processes (rtp.workers)")
    p.add_argument("--levels", default="", help="comma-separated call counts (default: by mode)")
    p.add_argument("--realtime", action="store_true",
                   help="media workers (rtp.realtime_priority) and the receiver at SCHED_RR")
    args = p.parse_args()
    if shutil.which("opusenc") is None or shutil.which("espeak-ng") is None:
        sys.exit("bench/recording.py needs opus-tools (opusenc, opusdec) and espeak-ng")
    levels = [int(x) for x in args.levels.split(",") if x] or (
        [100, 300] if args.quick else [100, 200, 300, 400, 500, 750, 1000])
    win, warmup, pairs = (3.0, 2.0, 2) if args.quick else (6.0, 3.0, 3)
    load = os.getloadavg()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-recording-") as tmp:
        result = asyncio.run(run(levels, win, warmup, pairs, args.workers, Path(tmp), args.realtime))
    result.update({
        "benchmark": "recording", "quick": args.quick, "media_workers": args.workers,
        "scheduling": "SCHED_RR (workers, receiver)" if args.realtime else "normal",
        "window_s": win, "window_pairs": pairs,
        "criterion": "receiver-side: >1 % of packets more than 5 ms late vs the stream cadence",
        "load_average_at_start": load, "duration_s": round(time.time() - started, 1),
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
    })  # fmt: skip
    for name, fig in result["opus"].items():
        if isinstance(fig, dict):
            print(f"opus {name}: {fig['opus_bytes_per_min'] / 1e3:.0f} KB/min "
                  f"(WAV {fig['wav_bytes_per_min'] / 1e6:.2f} MB/min), opusenc+opusdec "
                  f"{fig['encode_and_verify_cpu_s_per_audio_min']:.2f} CPU s per audio min")
    print(f"recorded calls with ≤ 1 % late packets: {result['recorded_capacity_calls']} "
          f"({args.workers} media workers; load average at start {load[0]:.2f})")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("recording" + ("_quick" if args.quick else "") + ("_realtime" if args.realtime else "")
                     + ".json")
    out.write_text(json.dumps(result, indent=2))
    print(f"→ {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
