"""The CLI answers a missing piece with one line, creates nothing it was not asked to, and says
so when there is nothing to show (issue 19 item 12)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from callcenter import bootstrap
from callcenter.cli import main

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "callcenter.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_outbox_list_without_a_database_creates_nothing(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "config", tmp_path / "config")  # found as the default --config
    result = cli("crm", "outbox", "list", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "callcenter: no CRM database at var/callcenter.db (from config/server.yaml: database.url); "
        "the server creates it when it first starts"]  # fmt: skip
    assert not (tmp_path / "var").exists()


def test_outbox_list_without_a_config_directory_is_one_line(tmp_path: Path) -> None:
    result = cli("crm", "outbox", "list", cwd=tmp_path)
    assert (result.returncode, result.stderr.strip()) == (1, "config: (top): config directory does not exist")
    assert list(tmp_path.iterdir()) == []


def test_outbox_list_says_when_nothing_is_pending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    (tmp_path / "var").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["crm", "outbox", "list"]) == 0
    assert capsys.readouterr().out == "nothing pending\n"
    assert main(["crm", "outbox", "list", "--dead"]) == 0
    assert capsys.readouterr().out == "no dead letters\n"


def test_serve_without_espeak_ng_names_the_debian_package(tmp_path: Path) -> None:
    d = tmp_path / "config"
    shutil.copytree(ROOT / "config", d)
    server = yaml.safe_load((d / "server.yaml").read_text())
    server["speech"]["engine"] = "espeak-ng"
    server["data_dir"] = str(tmp_path / "var")
    (d / "server.yaml").write_text(yaml.safe_dump(server))
    result = cli("serve", "--config", str(d), cwd=tmp_path, env={**os.environ, "PATH": str(tmp_path)})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "callcenter: cannot start: espeak-ng is not installed (speech.engine: espeak-ng runs it for the "
        "IVR's prompts); install the Debian package espeak-ng: apt-get install espeak-ng"]  # fmt: skip


def test_bootstrap_waits_for_the_apt_lock_then_fails_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """apt-get is told to wait for the lock (bounded); when it still fails, one line, no traceback."""
    calls = tmp_path / "calls"
    fake = tmp_path / "apt-get"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n'
                    'echo "E: Could not get lock /var/lib/dpkg/lock-frontend" >&2\nexit 100\n')  # fmt: skip
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(SystemExit) as exc:
        bootstrap.apt_install(["espeak-ng"])
    assert str(exc.value) == "[bootstrap] failed (exit 100): apt-get -o DPkg::Lock::Timeout=120 update -qq"
    assert calls.read_text() == "-o DPkg::Lock::Timeout=120 update -qq\n"
