"""The pyttsx3 render worker, run as a script: ``python pyttsx3_worker.py``.

A separate process because pyttsx3's espeak driver keeps global state, is not
thread-safe, writes only the last of several queued ``save_to_file`` calls (so one
``runAndWait`` per file) and prints "Audio saved to …" on stdout. Protocol: one JSON
request per line on stdin ``{"text", "voice", "rate", "out"}``, one JSON reply per line
``{"ok": true}`` or ``{"error": "..."}`` on the original stdout; pyttsx3's own prints
go to stderr.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

# pyttsx3 2.99's espeak driver now and then returns from runAndWait without having
# written the file (1 in 30 prompts here, at random): the same request again works.
RETRIES = 3


def _voice_table(engine: Any) -> dict[str, str]:
    table: dict[str, str] = {}
    for v in engine.getProperty("voices"):
        for lang in v.languages or []:
            name = lang.decode() if isinstance(lang, bytes) else str(lang)
            table.setdefault(name.lower(), v.id)
        table.setdefault(str(v.id).split("/")[-1].lower(), v.id)
    return table


def main() -> None:
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything printed from here on (pyttsx3's "Audio saved to") → stderr
    sys.stdout = sys.stderr
    import pyttsx3

    engine = pyttsx3.init("espeak")
    voices = _voice_table(engine)
    reply.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        try:
            req = json.loads(line)
            base, _, variant = str(req["voice"]).partition("+")
            vid = voices.get(base.lower())
            if vid is None:
                raise ValueError(f"unknown espeak-ng voice {req['voice']!r}")
            engine.setProperty("voice", vid + (f"+{variant}" if variant else ""))
            engine.setProperty("rate", int(req["rate"]))
            for _attempt in range(RETRIES):
                engine.save_to_file(str(req["text"]), str(req["out"]))
                engine.runAndWait()
                if os.path.exists(req["out"]) and os.path.getsize(req["out"]) > 44:
                    break
            else:
                raise RuntimeError("pyttsx3 wrote no audio")
            reply.write(json.dumps({"ok": True}) + "\n")
        except Exception as exc:  # report and keep serving
            reply.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n")


if __name__ == "__main__":
    main()
