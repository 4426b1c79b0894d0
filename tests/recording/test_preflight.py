"""``callcenter serve`` with recording.yaml needs opus-tools: said before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from callcenter.config import load_config
from callcenter.preflight import missing_system_packages
from tests.support.peers import make_config_dir


def test_serve_refuses_to_record_without_opus_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = make_config_dir(tmp_path)
    assert not any("opus" in line for line in missing_system_packages(load_config(d)))
    (d / "recording.yaml").write_text(yaml.safe_dump({"retention_days": 30}))
    cfg = load_config(d)
    assert missing_system_packages(cfg) == []  # opus-tools is installed here
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    (line,) = [m for m in missing_system_packages(cfg) if "opus" in m]
    assert "opusenc is not installed" in line and "apt-get install opus-tools" in line
