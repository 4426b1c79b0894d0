"""Configuration traps (issue 20 item 10, issue 19 item 12): each broken config directory is
refused by ``check-config`` and by ``serve`` with the same ``file: key: reason`` line, exit
code 1 and no traceback, and nothing is created on the way."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from callcenter.cli import main

ROOT = Path(__file__).resolve().parents[2]


def config_dir(tmp: Path) -> Path:
    """The demo config with its own copy of the flows (flows_dir, relative to the config)."""
    d = tmp / "config"
    shutil.copytree(ROOT / "config", d)
    shutil.copytree(ROOT / "ivr_flows", d / "flows")
    server = yaml.safe_load((d / "server.yaml").read_text())
    server.update(flows_dir="flows", data_dir=str(tmp / "var"))
    (d / "server.yaml").write_text(yaml.safe_dump(server))
    return d


def edit_yaml(d: Path, name: str, fn: Callable[[dict], None]) -> None:
    data = yaml.safe_load((d / name).read_text())
    fn(data)
    (d / name).write_text(yaml.safe_dump(data))


def append(d: Path, name: str, text: str) -> None:
    with (d / name).open("a") as f:
        f.write(text)


def overflow_loop(q: dict) -> None:
    q["queues"]["billing"]["overflow"] = "support"
    q["queues"]["support"]["overflow"] = "billing"


TRAPS: dict[str, tuple[Callable[[Path], None], str]] = {
    "not-utf8": (lambda d: (d / "agents.yaml").write_bytes(b"agents:\n  - id: J\xf6rg\n"),
                 "agents.yaml: (top): not UTF-8 text (byte 0xf6 at offset 17)"),
    "mysql": (lambda d: edit_yaml(d, "server.yaml", lambda s: s["database"].update(url="mysql://u@h/db")),
              "server.yaml: database.url: unsupported database 'mysql'"),
    "sqlite-dir-missing": (
        lambda d: edit_yaml(d, "server.yaml",
                            lambda s: s["database"].update(url=f"sqlite:///{d.parent}/nowhere/deep/crm.db")),
        "server.yaml: database.url: directory "),
    "duplicate-key": (lambda d: append(d, "server.yaml", "http: {port: 9090}\n"),
                      "server.yaml: line "),  # the reason follows: checked below
    "overflow-loop": (lambda d: edit_yaml(d, "queues.yaml", overflow_loop),
                      "queues.yaml: queues.billing.overflow: overflow loop (billing → support → billing)"),
    "flow-error": (lambda d: append(d, "flows/order_status.yaml", "  oops: {goto: nowhere}\n"),
                   "order_status.yaml:"),
    "service-missing-flow": (lambda d: (d / "flows" / "main_menu.yaml").unlink(),
                             "services.yaml: services.main.flow: service 'main' uses flow 'main_menu'"),
    "goto-loop": (lambda d: append(d, "flows/order_status.yaml", "  l1: {say: again}\n  l2: {goto: l1}\n"),
                  "order_status.yaml:"),
    "flow-calls-itself": (lambda d: append(d, "flows/order_status.yaml", "  me: {call: order_status}\n"),
                          "flow 'order_status' calls itself (order_status → order_status)"),
    "flow-duplicate-key": (lambda d: append(d, "flows/order_status.yaml", "name: again\n"),
                           "order_status.yaml:"),
    "flows-dir-missing": (lambda d: shutil.rmtree(d / "flows"),
                          "flows: (top): flows directory does not exist"),
    "data-dir-parent-missing": (
        lambda d: edit_yaml(d, "server.yaml", lambda s: s.update(data_dir=f"{d.parent}/no/such/var")),
        "server.yaml: data_dir: parent directory "),
}
# what each trap's line must also say (the reason, when the prefix alone does not name it)
REASONS = {
    "duplicate-key": "duplicate key 'http'",
    "flow-error": "goto target 'nowhere' does not exist",
    "goto-loop": "endless goto loop (l1 → l2 → l1)",
    "flow-duplicate-key": "duplicate key 'name'",
    "sqlite-dir-missing": "does not exist",
}


@pytest.mark.parametrize("trap", list(TRAPS))
def test_trap_is_refused_by_check_config_and_serve_alike(
    trap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = config_dir(tmp_path)
    make, expected = TRAPS[trap]
    make(d)
    before = sorted(p for p in tmp_path.rglob("*"))

    assert main(["check-config", str(d)]) == 1
    checked = capsys.readouterr().err.strip().splitlines()
    assert any(expected in line and REASONS.get(trap, "") in line for line in checked), checked

    serve = subprocess.run([sys.executable, "-m", "callcenter.cli", "serve", "--config", str(d)],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert serve.returncode == 1
    assert "Traceback" not in serve.stderr
    assert serve.stderr.strip().splitlines() == checked  # the same lines, one per problem
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing created (no database, no dirs)


def test_the_same_directory_without_traps_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(config_dir(tmp_path))]) == 0
    assert "configuration OK" in capsys.readouterr().out
