"""``callcenter recordings purge`` as an operator runs it (a subprocess on a config
directory), on recordings made the way the server makes them: a stereo WAV transcoded by
opus-tools, stored in the content-addressed attachment store, indexed by
``RecordingService``. Checked: a dry run deletes nothing; the real run deletes exactly
what is past retention (stored files, index entries, left-over WAVs), logs each deletion,
keeps a file whose bytes a younger recording shares; what was purged plays no more."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from callcenter.bus import EventBus
from callcenter.config import load_config
from callcenter.recording.service import Active, RecordingService
from callcenter.recording.transcode import to_opus
from crm_bridge.files import store_path
from tests.monitoring.tones import AGENT_HZ, CUSTOMER_HZ, tone
from tests.support import ROOT, require_tool
from tests.support.peers import make_config_dir

DAY = 86400.0


def stereo_wav(path: Path, left_hz: float, right_hz: float, seconds: float = 1.0) -> Path:
    left = np.frombuffer(tone(left_hz, seconds), dtype="<i2")
    right = np.frombuffer(tone(right_hz, seconds), dtype="<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.column_stack([left, right]).astype("<i2").tobytes())
    return path


async def encoded(wav: Path) -> tuple[Path, float]:
    opus = wav.with_suffix(".opus")
    return opus, await to_opus(wav, opus)


def recorded(svc: RecordingService, rec_id: str, opus: tuple[Path, float], age_days: float) -> dict[str, Any]:
    """A finished recording as the service stores it (store, index); its index entry."""
    path, seconds = opus
    stored = store_path(svc.files_dir, path)
    started = time.time() - age_days * DAY
    rec = Active(rec_id, f"c-{rec_id}", None, path, started, "sales", "sales")  # type: ignore[arg-type]
    result = {"path": str(path), "duration_s": seconds, "intervals": {}}
    svc._publish(rec, result, "opus", svc.files_dir / stored.path, stored, seconds)
    entry = svc.entry(rec_id)
    assert entry is not None and Path(entry["file"]).is_file()
    return entry


def purge_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "callcenter.cli", "recordings", "purge",
                           "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)  # fmt: skip


def purged(stderr: str) -> dict[str, str]:
    """The purge's log lines (one JSON object per deleted file) by recording id."""
    return {json.loads(line.split("recording purged", 1)[1].split(": ", 1)[1])["id"]: line
            for line in stderr.splitlines() if "recording purged" in line}  # fmt: skip


async def test_purge_command_deletes_what_is_past_retention(tmp_path: Path) -> None:
    require_tool("opusenc")
    d = make_config_dir(tmp_path)
    (d / "recording.yaml").write_text(yaml.safe_dump({"queues": {"sales": "on_demand"},
                                                      "retention_days": 30}))  # fmt: skip
    cfg = load_config(d)
    rec_dir = cfg.recording.directory
    svc = RecordingService(cfg.recording.config, EventBus(), directory=rec_dir,
                           files_dir=Path(cfg.server.crm.files_dir))  # fmt: skip
    (rec_dir / "index").mkdir(parents=True)
    a = await encoded(stereo_wav(tmp_path / "a.wav", CUSTOMER_HZ, AGENT_HZ))
    b = await encoded(stereo_wav(tmp_path / "b.wav", AGENT_HZ, CUSTOMER_HZ))
    old = recorded(svc, "rec-old-1", a, 40)
    young = recorded(svc, "rec-young-1", b, 2)
    # the same bytes as the young one (the store keeps them once): the index goes, the file stays
    twin = recorded(svc, "rec-old-twin", b, 45)
    assert twin["file"] == young["file"] and old["file"] != young["file"]
    left_over = stereo_wav(rec_dir / "rec-crashed-1.wav", CUSTOMER_HZ, AGENT_HZ)
    os.utime(left_over, (time.time() - 40 * DAY, time.time() - 40 * DAY))
    writing = stereo_wav(rec_dir / "rec-live-1.wav", CUSTOMER_HZ, AGENT_HZ)  # a call being recorded
    (rec_dir / "index" / "rec-broken.json").write_text("{not json")

    dry = purge_cli(d, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would delete 3 recording file(s) older than 30 days" in dry.stdout
    assert set(purged(dry.stderr)) == {"rec-old-1", "rec-old-twin", "rec-crashed-1"}
    assert all("(dry run)" in line for line in purged(dry.stderr).values())
    assert Path(old["file"]).is_file() and left_over.is_file() and svc.entry("rec-old-1") is not None

    run = purge_cli(d)
    assert run.returncode == 0, run.stderr
    assert "deleted 3 recording file(s) older than 30 days" in run.stdout
    logged = purged(run.stderr)
    assert run.stderr.count("recording purged") == 3
    assert set(logged) == {"rec-old-1", "rec-old-twin", "rec-crashed-1"}
    assert old["sha256"] in logged["rec-old-1"] and old["file"] in logged["rec-old-1"]
    assert "shared with a recording within retention" in logged["rec-old-twin"]
    assert "rec-broken.json unreadable, left alone" in run.stderr
    assert not Path(old["file"]).exists() and not left_over.exists()
    assert svc.entry("rec-old-1") is None and svc.entry("rec-old-twin") is None  # playback: 404
    assert Path(young["file"]).is_file() and svc.entry("rec-young-1") is not None
    assert writing.is_file() and (rec_dir / "index" / "rec-broken.json").is_file()

    again = purge_cli(d)
    assert again.returncode == 0 and "deleted 0 recording file(s)" in again.stdout

    shorter = purge_cli(d, "--days", "1")  # an explicit retention overrides recording.yaml
    assert "deleted 1 recording file(s) older than 1 days" in shorter.stdout, shorter.stderr
    assert not Path(young["file"]).exists() and writing.is_file()


@pytest.mark.parametrize("days", ["0", "-3", "soon"])
def test_purge_refuses_a_bad_retention(tmp_path: Path, days: str) -> None:
    d = make_config_dir(tmp_path)
    (d / "recording.yaml").write_text(yaml.safe_dump({"retention_days": 30}))
    bad = purge_cli(d, "--days", days)
    assert bad.returncode == 2 and "--days" in bad.stderr and "at least 1" in bad.stderr


def test_purge_without_recording_config_says_so(tmp_path: Path) -> None:
    d = make_config_dir(tmp_path)
    run = purge_cli(d)
    assert run.returncode == 0 and "nothing is recorded, nothing to purge" in run.stdout

