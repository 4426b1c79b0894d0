"""Streaming, grammar-constrained speech recognition with pocketsphinx, off the event loop.

Why pocketsphinx's ``Decoder`` directly and not SpeechRecognition's ``recognize_sphinx``:
the latter builds a new decoder on every call (0.2–0.4 s), its ``grammar=`` path breaks
after the first call with pocketsphinx 5, and it has no streaming/end-pointing; see
docs/speech.md.

Per session:

* ``feed()`` (event loop or media thread) appends the frame to a deque and, if no
  job is running for this session, submits one to a shared thread pool. Nothing
  else happens on the caller's thread.
* The job runs pocketsphinx's ``Endpointer`` (WebRTC-style VAD, 8 kHz, 20 ms frames;
  tens of µs per frame). On speech start it tells the loop (barge-in) and buffers
  the utterance from a little before the start (a ring buffer keeps the onset),
  upsampled to the model's 16 kHz.
* The end is found by an energy gate (``endpoint.QuietRun``): after ``end_silence``
  (0.15 s) of quiet the utterance goes to a decoding *process* (``sphinx_worker.py``,
  one long-lived decoder each, grammars cached by name): pocketsphinx holds the GIL
  for the whole of a decoding call (10-50 ms), which in threads stalled the event
  loop (p99 lag 36 ms at 10 calls, 121 ms at 40). The thread waits on the pipe with
  the GIL released. If the best path is a whole phrase, that is the decision; if it
  only begins a longer one (or is empty where phrases have several words), the caller
  may be pausing mid-phrase, so the session keeps listening for ``pause_hangover``
  and decodes again if they go on.
* Why decode after the end and not while the caller speaks: fed in chunks, the decoder
  must use live CMN instead of the batch CMN the model was trained with. From the
  model's initial mean that lost 17 points on the main menu; from a telephone mean it
  was on par (132 vs 134/144 on this recogniser's framing of the audio) but digits
  swung 38-56/90 with the framing. It would save the ~25 ms decode after the end
  point, and need a decoder per talking caller; with decisions ~0.2 s after the end
  of speech it is not worth that (docs/speech.md).
* Decision: the grammar's best path; confidence is *word coverage*: the share of the
  voiced frames that the recognised words account for. Off-menu speech forced onto a
  menu word leaves most of the voiced audio to the silence/filler model, which a
  score threshold could not show (lattice posteriors were ~1.0 for everything in a
  small grammar). Below the threshold, or an empty path → NO_MATCH.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import os
import queue
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pocketsphinx import Endpointer, Vad

from callcenter.speech.audio import FRAME_BYTES, Upsampler2x
from callcenter.speech.endpoint import QuietRun, frame_rms
from callcenter.speech.grammar import MenuGrammar, normalize
from callcenter.speech.interfaces import Outcome, Recognition
from callcenter.speech.sphinx_model import PHONE_BAND_PRONUNCIATIONS, prepared_model

log = logging.getLogger(__name__)

FRAME_S = 0.02
_START_TIMEOUT = 60.0  # seconds a decoding process may take to load the model


@dataclass(frozen=True, slots=True)
class SphinxSettings:
    """Tunables; defaults are the best set-up measured in bench/ivr_speech.py."""

    # for tests and benches (run from the repository); the server always passes its own,
    # <data_dir>/speech-model (callcenter/center.py), and writes nothing in the working directory
    cache_dir: Path = Path(os.environ.get("CALLCENTER_CACHE", ".cache")) / "speech"
    feat_overrides: dict[str, str] | None = None  # None = sphinx_model.FEAT_OVERRIDES
    # word → extra pronunciations; None = sphinx_model.PHONE_BAND_PRONUNCIATIONS
    pronunciations: dict[str, tuple[str, ...]] | None = None
    topn: int = 8  # Gaussians scored per senone; 4 (default) lost ~3 points on phone audio
    confidence_threshold: float = 0.6
    # start of speech: pocketsphinx's Endpointer (WebRTC VAD): the share of a window of
    # frames that must be voiced. Its own end decision came 340 ms (p50) after the last
    # loud frame; it now only backs up the energy gate on a noisy line (endpoint.py).
    endpoint_window: float = 0.2
    endpoint_ratio: float = 0.9
    vad_mode: int = Vad.LOOSE
    # end of speech (endpoint.QuietRun): after this much quiet the utterance is decoded
    # and, if the grammar's best path is a complete phrase, decided. Inside-word gaps of
    # the test set's voices are <= 60 ms; a stop closure in real speech up to ~0.1 s.
    end_silence: float = 0.15
    # ... but if the best path so far only *begins* a longer phrase ("technical" of
    # "technical support", or no path yet in a grammar with such phrases), the caller
    # may be pausing mid-phrase: then keep listening this long
    pause_hangover: float = 0.6
    # line noise appended to the utterance when it is decoded: the decoder scored worse
    # when the audio stopped ~0.15 s after the last word instead of the ~0.35 s the slow
    # end-pointer used to leave (bench: main menu −2 points, "eight" decoded as nothing);
    # it costs ~4 ms of decoding, no waiting
    tail_pad: float = 0.2
    quiet_floor_rms: float = 100.0  # ≈ −50 dBFS: below it a frame is quiet whatever else
    quiet_rel_db: float = 40.0  # quiet: this far below the utterance's loudest frame
    quiet_noise_ratio: float = 2.5  # … or within this factor of the line noise before it
    pre_roll: float = 0.3  # audio kept before the detected start and fed to the decoder
    max_speech: float = 8.0  # force a decision after this much speech
    voiced_rms: float = 300.0  # 16-bit RMS of a voiced 20 ms frame (for coverage)
    workers: int = max(1, min(4, os.cpu_count() or 1))  # decoding processes
    # True: batch CMN over the whole utterance, as the model was trained (19/27 digits);
    # False: live CMN from the model's initial mean (16/27).
    batch_cmn: bool = True
    # dither: add ±1 LSB of noise before feature extraction. Digital silence (exact
    # zeros: µ-law 0xFF, comfort gaps, sox without dither) otherwise yields log(0)
    # filter energies that wreck the cepstral mean; with it "technical support" and
    # "billing" went from rejected to recognised. Fixed seed: same audio, same answer.
    # a line-noise floor (Gaussian, this RMS in 16-bit units, ≈ −64 dBFS) added before
    # decoding: exact digital silence (µ-law 0xFF, gaps inside a TTS/codec stream)
    # gives the 16 kHz model's filterbank log(0) energies; main-menu accuracy on the
    # no-dither test set: σ 0 → 80.6 %, 5 → 87.5 %, 10 → 88.2 %, 20 → 88.9 %.
    noise_floor: float = 20.0
    extra_config: dict[str, object] = field(
        default_factory=lambda: {"dither": True, "seed": 1})


def _line_noise(seconds: float, rms: float) -> bytes:
    """``seconds`` of Gaussian line noise, 16 kHz 16-bit (fixed seed: same every time)."""
    n = round(seconds * 8000)
    x = np.random.default_rng(2).normal(0.0, max(rms, 1.0), n)
    return Upsampler2x().process(np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes())


class _Worker:
    """One sphinx_worker.py process; used by one thread at a time (taken from a queue)."""

    def __init__(self, config: dict[str, object]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("sphinx_worker.py")),
             json.dumps(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        # the start-up (import, model load, one warm-up decode: ~0.5 s) is awaited in the
        # background, so neither the constructor nor the first caller's decision waits
        self._ready = threading.Event()
        self._ok = False
        threading.Thread(target=self._await_ready, name="asr-worker-start", daemon=True).start()

    def _await_ready(self) -> None:
        assert self.proc.stdout is not None
        with contextlib.suppress(OSError, ValueError):
            self._ok = json.loads(self.proc.stdout.readline() or b"{}").get("ready") is True
        self._ready.set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout) and self._ok

    def decode(self, grammar: MenuGrammar, audio16k: bytes) -> tuple[list[str], int]:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        if not self.wait_ready(_START_TIMEOUT):
            raise RuntimeError("speech worker failed to start")
        header = json.dumps({"name": grammar.name, "transitions": grammar.transitions(),
                             "n": len(audio16k)}).encode()
        # blocking pipe I/O releases the GIL: the event loop runs while we wait
        stdin.write(struct.pack(">I", len(header)) + header + audio16k)
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise RuntimeError("speech worker died")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"speech worker: {reply['error']}")
        return list(reply["words"]), int(reply["word_frames"])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.kill()
            self.proc.wait(5)


class _WorkerPool:
    def __init__(self, config: dict[str, object], size: int) -> None:
        self._config = config
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._all = [_Worker(config) for _ in range(size)]
        for w in self._all:
            self._idle.put(w)

    def decode(self, grammar: MenuGrammar, audio16k: bytes) -> tuple[list[str], int]:
        w = self._idle.get()  # blocks (GIL released) while every worker is busy
        try:
            return w.decode(grammar, audio16k)
        except (OSError, RuntimeError, ValueError):
            if not w.alive():  # replace a crashed worker; this utterance is lost
                w.close()
                self._all.remove(w)
                w = _Worker(self._config)
                self._all.append(w)
            raise
        finally:
            self._idle.put(w)

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(w.wait_ready(max(0.0, deadline - time.monotonic())) for w in list(self._all))

    def close(self) -> None:
        for w in self._all:
            w.close()


class SphinxRecognizer:
    """``SpeechRecognizer`` on pocketsphinx. Create once per process; ``close()`` at exit."""

    def __init__(self, settings: SphinxSettings | None = None) -> None:
        self.settings = s = settings or SphinxSettings()
        self.model_dir, self.dict_path = prepared_model(s.cache_dir, s.feat_overrides)
        # threads run the cheap per-frame work (VAD, buffering) and wait on the decoding
        # processes. A session's thread blocks while its utterance decodes (or queues for
        # a process), so there must be threads to spare, or the end-points of other calls
        # wait behind those decodes; idle threads cost nothing.
        self._executor = ThreadPoolExecutor(max_workers=max(32, 4 * s.workers),
                                            thread_name_prefix="asr")
        self.workers = _WorkerPool({
            "hmm": str(self.model_dir), "dict": str(self.dict_path), "topn": s.topn,
            "batch_cmn": s.batch_cmn, "extra": s.extra_config,
            "pronunciations": {w: list(p) for w, p in (
                PHONE_BAND_PRONUNCIATIONS if s.pronunciations is None else s.pronunciations).items()},
        }, s.workers)
        self._words: set[str] | None = None
        self.tail_pad = _line_noise(s.tail_pad, s.noise_floor)
        self.closed = False
        # a recogniser dropped without close() (or at interpreter exit) must not leave
        # decoding processes behind
        weakref.finalize(self, self.workers.close)

    def warm_up(self, timeout: float = 30.0) -> bool:
        """Block until every decoding process has loaded the model (they start loading
        in the constructor); for start-up code and benchmarks. True if all are ready."""
        return self.workers.wait_ready(timeout)

    def known_words(self) -> set[str]:
        if self._words is None:
            words = set()
            with open(self.dict_path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    head = line.split(" ", 1)[0]
                    words.add(head.split("(", 1)[0])
            self._words = words
        return self._words

    def unknown_words(self, phrases: Iterable[str], *, language: str = "en-US") -> list[str]:
        known = self.known_words()
        return sorted({w for p in phrases for w in normalize(p) if w not in known})

    def start(self, phrases: list[str], *, language: str = "en-US") -> SphinxSession:
        if not language.lower().startswith("en"):
            raise ValueError(f"no offline speech model for language {language!r} (only en)")
        grammar = MenuGrammar.build(phrases, self.known_words())
        dropped = self.unknown_words(phrases)
        if dropped:
            log.warning("phrases with words unknown to the recogniser are ignored: %s", dropped)
        if not grammar.by_words:
            raise ValueError(f"none of the phrases can be recognised: {phrases!r}")
        return SphinxSession(self, grammar, asyncio.get_running_loop())

    def close(self) -> None:
        self.closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.workers.close()


class SphinxSession:
    """One question's listening session. Not reusable: start a new one per question."""

    def __init__(
        self, rec: SphinxRecognizer, grammar: MenuGrammar, loop: asyncio.AbstractEventLoop
    ) -> None:
        s = rec.settings
        self._rec = rec
        self._settings = s
        self._grammar = grammar
        self._loop = loop
        self.speech_started = asyncio.Event()
        self.on_speech_started: Callable[[], None] | None = None
        self._decided: asyncio.Future[Recognition] = loop.create_future()
        self._frames: collections.deque[tuple[bytes, float]] = collections.deque()
        self._lock = threading.Lock()
        self._running = False
        self._closed = False
        self._force_end = False
        # worker-thread state (only ever touched inside _drain, which is serialized)
        self._ep = Endpointer(window=s.endpoint_window, ratio=s.endpoint_ratio,
                              vad_mode=s.vad_mode, sample_rate=8000, frame_length=FRAME_S)
        self._ring: collections.deque[bytes] = collections.deque(
            maxlen=max(1, round((s.endpoint_window + s.pre_roll) / FRAME_S)))
        self._quiet = QuietRun(s.quiet_floor_rms, s.quiet_rel_db, s.quiet_noise_ratio)
        self._end_frames = max(1, round(s.end_silence / FRAME_S))
        self._pause_frames = max(self._end_frames, round(s.pause_hangover / FRAME_S))
        self._n_frames = 0
        self._in_utt = False
        self._up = Upsampler2x()
        self._utt_audio: list[bytes] = []
        self._noise = np.random.default_rng(1)  # fixed seed: same audio, same answer
        self._voiced = 0
        self._start_s: float | None = None
        self._end_s: float | None = None  # audio time just after the last loud frame
        self._end_at: float | None = None  # monotonic arrival of the last loud frame
        # a decoded best path that only begins a longer phrase: posted if the caller
        # stays quiet for pause_hangover, dropped if they go on talking
        self._pending: Recognition | None = None
        self._vad_quiet = 0  # frames since the Endpointer last said "speech"

    # --- called from the media side ------------------------------------------

    def feed(self, pcm16_8k_frame: bytes) -> None:
        if self._closed:
            return
        self._frames.append((pcm16_8k_frame, time.monotonic()))
        self._kick()

    def _kick(self) -> None:
        with self._lock:
            if self._running:
                return
            self._running = True
        try:
            self._rec._executor.submit(self._drain)
        except RuntimeError:  # executor shut down: the process is stopping
            self._running = False

    # --- called on the event loop ---------------------------------------------

    async def result(self, timeout: float) -> Recognition:
        """See ``RecognitionSession.result``; safe to call again (same answer)."""
        fut = self._decided
        if not fut.done() and not self.speech_started.is_set():
            started = asyncio.ensure_future(self.speech_started.wait())
            try:
                await asyncio.wait([fut, started], timeout=timeout,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                started.cancel()
            if not fut.done() and not self.speech_started.is_set():
                self._decide(Recognition(Outcome.NO_INPUT, None, None, 0.0,
                                         decided_at=time.monotonic()))
        if not fut.done():
            # talking: the end-point decides; if audio stops arriving, stop waiting anyway
            cap = self._settings.max_speech + self._settings.pause_hangover + 1.0
            done, _ = await asyncio.wait([fut], timeout=cap)
            if not done:
                self._force_end = True
                self._kick()
                await asyncio.wait([fut], timeout=1.0)
                if not fut.done():
                    self._decide(Recognition(Outcome.NO_MATCH, "", None, 0.0,
                                             decided_at=time.monotonic()))
        return fut.result()

    def close(self) -> None:
        self._closed = True
        self._frames.clear()
        if not self._decided.done():
            self._decided.cancel()

    def _decide(self, rec: Recognition) -> None:
        if not self._decided.done():
            self._decided.set_result(rec)
        self._closed = True

    def _started(self) -> None:
        self.speech_started.set()
        cb = self.on_speech_started
        if cb is not None:
            try:
                cb()
            except Exception:  # a barge-in handler's bug must not stop recognition
                log.exception("on_speech_started callback failed")

    # --- worker thread ---------------------------------------------------------

    def _drain(self) -> None:
        try:
            while True:
                try:
                    frame, at = self._frames.popleft()
                except IndexError:
                    with self._lock:
                        if not self._frames:
                            self._running = False
                            break
                    continue
                if self._closed:
                    self._frames.clear()
                    continue
                self._step(frame, at)
            if self._force_end and self._in_utt and not self._closed:
                self._finish(final=True)
        except Exception:
            if not self._rec.closed:  # at shutdown the workers are gone on purpose
                log.exception("speech recognition failed")
            with self._lock:
                self._running = False
            self._post(Recognition(Outcome.NO_MATCH, "", None, 0.0, decided_at=time.monotonic()))

    def _post(self, rec: Recognition) -> None:
        self._closed = True
        with contextlib.suppress(RuntimeError):  # loop closed
            self._loop.call_soon_threadsafe(self._decide, rec)

    def _step(self, frame: bytes, at: float) -> None:
        if len(frame) != FRAME_BYTES:  # tolerate odd sizes from a peer: pad/trim to 20 ms
            frame = frame[:FRAME_BYTES].ljust(FRAME_BYTES, b"\0")
        self._n_frames += 1
        ep = self._ep
        was = ep.in_speech
        ep.process(frame)
        self._ring.append(frame)
        if not self._in_utt:
            if ep.in_speech and not was:
                self._begin(ep.speech_start)
            return
        if self._quiet.update(self._buffer(frame)):
            self._end_s, self._end_at = self._n_frames * FRAME_S, at
            self._pending = None  # talking again: an earlier partial path is stale
        self._vad_quiet = 0 if ep.in_speech else self._vad_quiet + 1
        quiet = self._quiet.quiet_frames
        speech_s = self._n_frames * FRAME_S - (self._start_s or 0.0)
        # backstops: too long, or the VAD has heard no voice for a long pause although
        # the energy stays up (line noise that rose after the caller started)
        if speech_s > self._settings.max_speech or self._vad_quiet >= self._pause_frames:
            self._finish(final=True)
        elif quiet >= self._end_frames and self._pending is None:
            self._finish(final=False)  # decides, or leaves a pending partial path
        elif quiet >= self._pause_frames and self._pending is not None:
            self._post(dataclasses.replace(self._pending, decided_at=time.monotonic()))

    def _begin(self, speech_start: float) -> None:
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._started)
        self._in_utt = True
        self._start_s = speech_start
        # the VAD fires ~window after the onset: replay what it buffered, plus pre-roll
        now_s = self._n_frames * FRAME_S
        keep = round((now_s - speech_start + self._settings.pre_roll) / FRAME_S)
        ring = list(self._ring)
        self._quiet.start([frame_rms(f) for f in ring[:-keep]])
        for frame in ring[-keep:]:
            if self._quiet.update(self._buffer(frame)):
                self._end_s, self._end_at = self._n_frames * FRAME_S, time.monotonic()

    def _buffer(self, frame: bytes) -> float:
        """Keep one frame of the utterance (upsampled for the 16 kHz model); its RMS."""
        x = np.frombuffer(frame, dtype="<i2").astype(np.float32)
        rms = float(np.sqrt(np.mean(x * x)))
        if rms > self._settings.voiced_rms:
            self._voiced += 1
        if self._settings.noise_floor > 0:
            x = x + self._noise.normal(0.0, self._settings.noise_floor, x.size)
            frame = np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()
        self._utt_audio.append(self._up.process(frame))
        return rms

    def _finish(self, *, final: bool) -> None:
        """Decode the utterance so far; decide unless the path may be half a phrase."""
        if not self._in_utt:
            return
        if self._pending is not None and final:  # nothing new was said since it was decoded
            self._post(dataclasses.replace(self._pending, decided_at=time.monotonic()))
            return
        audio = b"".join(self._utt_audio) + self._rec.tail_pad
        words, word_frames = self._rec.workers.decode(self._grammar, audio)
        # decoder frames are 10 ms, ours 20 ms
        coverage = word_frames / max(1, 2 * self._voiced)
        confidence = float(min(1.0, max(0.0, (coverage - 0.5) / 0.5)))
        phrase = self._grammar.phrase_for(words) if words else None
        ok = phrase is not None and confidence >= self._settings.confidence_threshold
        rec = Recognition(
            Outcome.MATCH if ok else Outcome.NO_MATCH,
            text=" ".join(words), phrase=phrase if ok else None, confidence=confidence,
            start_of_speech=self._start_s, end_of_speech=self._end_s,
            end_of_speech_at=self._end_at, decided_at=time.monotonic(),
        )
        log.debug("decoded %.2f s (final=%s): %r coverage %.2f → %s", len(audio) / 32000, final,
                  words, coverage, rec.outcome.value)
        if not final and self._grammar.may_continue(words):
            self._pending = rec
        else:
            self._post(rec)
