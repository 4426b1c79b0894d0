"""What ``callcenter serve`` needs from the system, checked before anything starts.

A missing program otherwise surfaced as a traceback from deep inside the TTS engine;
here it is one line naming the Debian package that provides it (the same packages
``callcenter.bootstrap`` installs).
"""

from __future__ import annotations

import ctypes.util
import shutil

from callcenter.config import AppConfig


def missing_system_packages(cfg: AppConfig) -> list[str]:
    """One line per missing piece: what is missing, why, and the Debian package."""
    missing = []
    if cfg.recording is not None:
        missing += [f"{tool} is not installed (recording.yaml: call recordings are transcoded to Ogg Opus "
                    "with opusenc and checked with opusdec); install the Debian package opus-tools: "
                    "apt-get install opus-tools"
                    for tool in ("opusenc", "opusdec") if shutil.which(tool) is None][:1]  # fmt: skip
    return missing + _speech(cfg)


def _speech(cfg: AppConfig) -> list[str]:
    engine = cfg.server.speech.engine
    if engine == "espeak-ng" and shutil.which("espeak-ng") is None:
        return ["espeak-ng is not installed (speech.engine: espeak-ng runs it for the IVR's prompts); "
                "install the Debian package espeak-ng: apt-get install espeak-ng"]  # fmt: skip
    if engine == "pyttsx3" and ctypes.util.find_library("espeak-ng") is None:
        return ["the espeak-ng library is not installed (speech.engine: pyttsx3 speaks through it); "
                "install the Debian package espeak-ng: apt-get install espeak-ng"]  # fmt: skip
    return []
