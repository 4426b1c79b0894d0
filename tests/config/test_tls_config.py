"""sip.tls / http.tls / rtp.srtp in server.yaml: good files load, bad ones refuse the start
naming file, key and reason."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from callcenter.config import load_config
from callcenter.configerrors import ConfigError
from tests.support.certs import Pki, make_pki

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Pki]:
    d = tmp_path / "config"
    shutil.copytree(ROOT / "config", d)
    return d, make_pki(tmp_path / "pki")


def write(cfg_dir: Path, sip_tls: dict[str, Any] | None, **extra: Any) -> None:
    path = cfg_dir / "server.yaml"
    data = yaml.safe_load(path.read_text())
    data["sip"]["listen"].append({"transport": "tls", "host": "127.0.0.1"})
    if sip_tls is not None:
        data["sip"]["tls"] = sip_tls
    for section, values in extra.items():
        data[section].update(values)
    path.write_text(yaml.safe_dump(data))


def test_tls_listener_srtp_and_https_load(setup: tuple[Path, Pki]) -> None:
    cfg_dir, pki = setup
    files = {"cert_file": str(pki.cert), "key_file": str(pki.key)}
    write(cfg_dir, {**files, "ca_file": str(pki.ca), "verify_client": True},
          rtp={"srtp": "mandatory"}, http={"tls": files})
    server = load_config(cfg_dir).server
    assert (server.sip.listen[-1].transport, server.sip.listen[-1].port) == ("tls", 5061)
    assert server.sip.tls is not None and server.sip.tls.verify_client
    assert server.rtp.srtp == "mandatory" and server.http.tls is not None


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (lambda p: None, "sip", "a tls listener needs sip.tls"),
        (lambda p: {"cert_file": str(p.cert.parent / "gone.crt"), "key_file": str(p.key)},
         "sip.tls.cert_file", "gone.crt: file not found"),
        (lambda p: {"cert_file": str(p.key), "key_file": str(p.key)},
         "sip.tls.cert_file", "no PEM certificate"),
        (lambda p: {"cert_file": str(p.cert), "key_file": str(p.cert)},
         "sip.tls.key_file", "no PEM private key"),
        (lambda p: {"cert_file": str(p.cert), "key_file": str(p.client_key)},
         "sip.tls", "the key does not belong to the certificate"),
        (lambda p: {"cert_file": str(p.cert), "key_file": str(p.key), "verify_client": True},
         "sip.tls", "verify_client needs ca_file"),
    ],
)
def test_bad_tls_files_refuse_the_start(setup: tuple[Path, Pki], change: Any, key: str, reason: str) -> None:
    cfg_dir, pki = setup
    write(cfg_dir, change(pki))
    with pytest.raises(ConfigError) as info:
        load_config(cfg_dir)
    problems = info.value.problems
    assert any(f.endswith("server.yaml") and k == key and reason in r for f, k, r in problems), problems


def test_unknown_srtp_mode_is_refused(setup: tuple[Path, Pki]) -> None:
    cfg_dir, pki = setup
    write(cfg_dir, {"cert_file": str(pki.cert), "key_file": str(pki.key)}, rtp={"srtp": "always"})
    with pytest.raises(ConfigError, match=r"rtp\.srtp"):
        load_config(cfg_dir)
