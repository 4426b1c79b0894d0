"""pocketsphinx decoding worker, run as a script: ``python sphinx_worker.py CONFIG_JSON``.

Why a process: pocketsphinx's Cython wrapper holds the GIL for the whole of every
decoding call (10-50 ms for an utterance), which stalled the server's event loop
(p99 loop lag 36 ms with 10 calls, 121 ms with 40, decoding in threads). In worker
processes the loop never waits for it, and decoding uses the other cores.

Self-contained on purpose (pocketsphinx only, no package import), so it starts the
same way from a test, a benchmark or the server. Protocol on stdin/stdout:
request = 4-byte big-endian header length, JSON header ``{"name", "transitions",
"n"}``, then ``n`` bytes of 16-bit 16 kHz PCM; reply = one JSON line
``{"words": [...], "word_frames": int}`` or ``{"error": "..."}``.
"""

from __future__ import annotations

import json
import struct
import sys
from typing import Any


def main() -> None:
    cfg = json.loads(sys.argv[1])
    from pocketsphinx import Decoder

    d = Decoder(hmm=cfg["hmm"], dict=cfg["dict"], lm=None, samprate=16000,
                topn=int(cfg["topn"]), loglevel="FATAL", **cfg.get("extra", {}))
    for word, phones in cfg.get("pronunciations", {}).items():
        add_pronunciations(d, word, phones)
    cmn0 = d.get_cmn()
    _warm_up(d)
    loaded: dict[str, None] = {}
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(b'{"ready": true}\n')
    stdout.flush()
    while True:
        head = stdin.read(4)
        if len(head) < 4:
            return
        header: dict[str, Any] = json.loads(stdin.read(struct.unpack(">I", head)[0]))
        audio = stdin.read(int(header["n"]))
        try:
            reply = _decode(d, cmn0, loaded, header, audio, cfg)
        except Exception as exc:  # report and keep serving
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        stdout.write(json.dumps(reply).encode() + b"\n")
        stdout.flush()


def add_pronunciations(d: Any, word: str, phones: list[str]) -> None:
    """Alternatives as ``word(2)``, ``word(3)``, …: an FSG over ``word`` uses them all."""
    k = 2
    for ph in phones:
        while d.lookup_word(f"{word}({k})") is not None:
            k += 1
        d.add_word(f"{word}({k})", ph, False)


def _warm_up(d: Any) -> None:
    """One throw-away decode before saying ready: the first caller's utterance should
    not pay for first-touch page faults in the model and search structures."""
    d.add_fsg("_warm", d.create_fsg("_warm", 0, 1, [(0, 1, 1.0, "one")]))
    d.activate_search("_warm")
    d.start_utt()
    d.process_raw(bytes(16000), full_utt=True)  # 0.5 s at 16 kHz
    d.end_utt()
    d.remove_search("_warm")


def _decode(d: Any, cmn0: str, loaded: dict[str, None], header: dict[str, Any],
            audio: bytes, cfg: dict[str, Any]) -> dict[str, Any]:
    name = header["name"]
    if name not in loaded:
        trans = [tuple(t) for t in header["transitions"]]
        d.add_fsg(name, d.create_fsg(name, 0, 1, trans))
        loaded[name] = None
        if len(loaded) > 64:  # bound memory: forget the oldest grammar
            old = next(iter(loaded))
            del loaded[old]
            d.remove_search(old)
    d.activate_search(name)
    d.start_utt()
    if cfg.get("batch_cmn", True):
        # the whole utterance in one call: batch CMN, as the model was trained
        d.process_raw(audio, full_utt=True)
    else:
        d.set_cmn(cmn0)
        for i in range(0, len(audio), 3200):
            d.process_raw(audio[i : i + 3200], full_utt=False)
    d.end_utt()
    words: list[str] = []
    frames = 0
    if d.hyp() is not None:
        for seg in d.seg():
            w = seg.word
            if w.startswith(("<", "[", "+")):
                continue
            words.append(w.split("(", 1)[0])
            frames += seg.end_frame - seg.start_frame + 1
    return {"words": words, "word_frames": frames}


if __name__ == "__main__":
    main()
