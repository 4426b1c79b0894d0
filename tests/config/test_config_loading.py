"""The config directory: the demo loads; every kind of mistake is refused with file, key, reason."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from callcenter.config import load_config
from callcenter.configerrors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cfg_dir(tmp_path: Path) -> Path:
    d = tmp_path / "config"
    shutil.copytree(ROOT / "config", d)
    return d


def edit(path: Path, fn) -> None:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(path.read_text())
    fn(data)
    path.write_text(yaml.safe_dump(data))


def test_demo_config_loads_with_stable_demo_values() -> None:
    cfg = load_config(ROOT / "config")
    assert [(x.transport, x.host, x.port) for x in cfg.server.sip.listen] == [
        ("udp", "127.0.0.1", 5060), ("tcp", "127.0.0.1", 5060)]  # fmt: skip
    assert (cfg.server.http.host, cfg.server.http.port) == ("127.0.0.1", 8080)
    assert (cfg.server.rtp.port_min, cfg.server.rtp.port_max) == (20000, 29999)
    assert set(cfg.agent_secrets) == {"1001", "1002", "1003"}
    assert "supervisor" in cfg.supervisors
    assert cfg.services.resolve("600").flow == "echo"
    assert cfg.services.resolve("5000").flow == "main_menu"


def test_demo_sip_secrets_are_ha1_of_the_documented_passwords() -> None:
    import hashlib

    cfg = load_config(ROOT / "config")
    realm = cfg.server.sip.realm
    for agent_id, s in cfg.agent_secrets.items():
        material = f"{s.sip.username}:{realm}:demo-{agent_id}".encode()
        assert s.sip.ha1_md5 == hashlib.md5(material).hexdigest()
        assert s.sip.ha1_sha256 == hashlib.sha256(material).hexdigest()


@pytest.mark.parametrize(
    ("file", "change", "key", "reason"),
    [
        ("server.yaml", lambda d: d["sip"]["listen"][0].update(port=70000), "sip.listen.0.port", "less than"),
        ("server.yaml", lambda d: d["rtp"].update(port_max=20001), "rtp", "port_max"),
        ("server.yaml", lambda d: d["rtp"].update(workers=0), "rtp.workers", "greater than or equal to 1"),
        ("server.yaml", lambda d: d["rtp"].update(realtime_priority=10), "rtp", "set workers >= 2"),
        ("server.yaml", lambda d: d.update(colour="blue"), "colour", "Extra inputs"),
        ("server.yaml", lambda d: d["sip"]["listen"][0].update(host="localhost"), "sip.listen.0.host", ""),
        ("agents.yaml", lambda d: d["agents"][0]["sip"].update(ha1_md5="nothex"), "agents.0.sip.ha1_md5", ""),
        ("agents.yaml", lambda d: d["agents"][1].update(id="1001"), "agents.1.id", "duplicate"),
        ("queues.yaml", lambda d: d["queues"]["billing"].update(overflow="nowhere"), "queues.billing", ""),
        ("skills.yaml", lambda d: d.update(bogus=1), "bogus", "unknown"),
        ("server.yaml", lambda d: d["crm"].update(webhooks=[{"name": "e", "url": "ftp://x", "secret": "s"}]),
         "crm.webhooks.0", "not an http(s) URL"),
        ("server.yaml", lambda d: d["callbacks"].update(dial_uri="sip:trunk.example"), "callbacks.dial_uri",
         "must contain {number}"),
        ("server.yaml", lambda d: d["callbacks"].update(dial_uri="sip:{digits}@{x}"), "callbacks.dial_uri",
         "only {number} and {digits}"),
    ],
)
def test_bad_config_is_refused_naming_file_key_and_reason(
    cfg_dir: Path, file: str, change, key: str, reason: str  # type: ignore[no-untyped-def]
) -> None:
    edit(cfg_dir / file, change)
    with pytest.raises(ConfigError) as info:
        load_config(cfg_dir)
    problems = info.value.problems
    assert any(f.endswith(file) and k.startswith(key) and reason in r for f, k, r in problems), problems


def test_yaml_syntax_error_names_file_and_line(cfg_dir: Path) -> None:
    (cfg_dir / "server.yaml").write_text("sip:\n  listen: [\n")
    with pytest.raises(ConfigError) as info:
        load_config(cfg_dir)
    f, where, reason = info.value.problems[0]
    assert f.endswith("server.yaml") and where.startswith("line") and "invalid YAML" in reason


def test_missing_file_is_named(cfg_dir: Path) -> None:
    (cfg_dir / "agents.yaml").unlink()
    with pytest.raises(ConfigError, match=r"agents\.yaml.*missing"):
        load_config(cfg_dir)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "callcenter.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_check_config_accepts_the_demo() -> None:
    result = run_cli("check-config", "config")
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout


def test_check_config_and_serve_refuse_a_bad_directory(cfg_dir: Path) -> None:
    edit(cfg_dir / "server.yaml", lambda d: d["http"].update(port="eighty"))
    for cmd in (["check-config", str(cfg_dir)], ["serve", "--config", str(cfg_dir)]):
        result = run_cli(*cmd)
        assert result.returncode == 1
        assert "server.yaml: http.port:" in result.stderr
