"""Fax settings that do not fit the rest of the configuration refuse to start, naming the
file, the key and the reason (check-config and serve run the same check)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from callcenter.configcheck import check_all
from callcenter.configerrors import ConfigError
from tests.support import ROOT


def test_unknown_detect_services_and_a_non_fax_target_are_named(tmp_path: Path) -> None:
    d = tmp_path / "config"
    shutil.copytree(ROOT / "config", d)
    server = yaml.safe_load((d / "server.yaml").read_text())
    server["fax"] = {"detect_on": ["main", "nosuch"], "detect_service": "main"}
    (d / "server.yaml").write_text(yaml.safe_dump(server))
    with pytest.raises(ConfigError) as err:
        check_all(d, ROOT / "ivr_flows")
    text = str(err.value)
    assert "server.yaml: fax.detect_on: unknown service(s): nosuch" in text
    assert "server.yaml: fax.detect_service: 'main' is not a service with flow fax" in text


def test_the_demo_configuration_with_detection_on_the_main_line_is_accepted(tmp_path: Path) -> None:
    d = tmp_path / "config"
    shutil.copytree(ROOT / "config", d)
    server = yaml.safe_load((d / "server.yaml").read_text())
    server["fax"] = {"detect_on": ["main"], "ident": "ACME ORDERS"}
    (d / "server.yaml").write_text(yaml.safe_dump(server))
    cfg, _ = check_all(d, ROOT / "ivr_flows")
    assert cfg.server.fax.detect_service == "fax-in"
