"""``callcenter simulate``: synthetic mode's JSON (service level beside Erlang C), and replay
of contacts recorded in the configured CRM store against the configured staffing and an
alternative one, printed beside what actually happened."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from crm_events import ev

from callcenter.cli import main
from crm_bridge.store import CrmStore

ROOT = Path(__file__).resolve().parents[2]
DAY = 1_796_083_200.0  # 2026-12-01 00:00 UTC
T = DAY + 9 * 3600  # 09:00


def call(cid: str, t: float, *, wait: float, talk: float | None, agent: str = "1001") -> list[dict[str, Any]]:
    """A billing call queued at ``t``: answered after ``wait`` s and talked ``talk`` s, or
    (talk None) abandoned after ``wait`` s."""
    out = [ev("ContactArrived", cid, t, channel="voice", direction="inbound", ani="+441632960001"),
           ev("ContactQueued", cid, t, queue="billing", priority=0)]  # fmt: skip
    if talk is None:
        return [*out, ev("ContactAbandoned", cid, t + wait, waited_s=wait, where="queue"),
                ev("ContactEnded", cid, t + wait, reason="hangup", ended_by="caller")]  # fmt: skip
    return [*out, ev("ContactConnected", cid, t + wait, agent_id=agent),
            ev("ContactEnded", cid, t + wait + talk, reason="hangup", ended_by="caller")]  # fmt: skip


@pytest.fixture
def center_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped config, its SQLite CRM store in tmp_path/var holding one morning."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    monkeypatch.chdir(tmp_path)  # data_dir: var, relative to the working directory
    events = [
        *call("c1", T, wait=5, talk=300),  # answered within 20 s
        *call("c2", T + 60, wait=250, talk=120),  # waited for c1's agent: late
        *call("c3", T + 120, wait=40, talk=None),  # gave up after 40 s
        *call("c4", T + 1900, wait=2, talk=60),  # next interval, quick
    ]

    async def load() -> None:
        async with CrmStore("sqlite+aiosqlite:///var/callcenter.db", tmp_path / "files") as store:
            await store.apply_events(events)

    asyncio.run(load())
    return tmp_path


def test_synthetic_json_has_both_service_levels(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["simulate", "--synthetic", "--arrivals-per-30min", "100", "--aht-s", "180", "--agents", "14",
            "--threshold-s", "20", "--seed", "1", "--json"]  # fmt: skip
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out)[:2] == ["service_level", "erlang_c_service_level"]
    assert 0 <= out["service_level"] <= 1
    assert out["erlang_c_service_level"] == pytest.approx(0.888, abs=0.001)
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == out  # same seed, same run
    assert main(["simulate", "--synthetic", "--agents", "many"]) == 2
    assert "number of agents" in capsys.readouterr().err


def test_replay_beside_what_happened(center_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--from", "2026-12-01", "--to", "2026-12-01", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["contacts"] == 4 and out["agents"] == 3  # the configured staffing: 1001-1003
    # Recorded: c1 and c4 within 20 s, c2 late, c3 abandoned → 2 / (3 + 1).
    assert out["recorded_service_level"] == pytest.approx(2 / 4)
    first = {(r["interval_start"], r["queue"]): r for r in out["intervals"]}[(T, "billing")]
    figures = ("offered", "answered", "abandoned", "answered_within")
    assert [first["actual"][k] for k in figures] == [3, 2, 1, 1]
    # Billing needs skill 6: only Alice (8) has it (Carol 5), as in the recorded morning: c2
    # waits for c1's 300 s call again, c3 gives up again.
    assert [first["simulated"][k] for k in figures] == [3, 2, 1, 1]

    two = center_dir / "two_billing.yaml"
    two.write_text(yaml.safe_dump({"agents": [{"id": "x1", "skills": {"billing": 8}},
                                              {"id": "x2", "skills": {"billing": 8}},
                                              {"id": "x3", "skills": {"billing": 8}}]}))  # fmt: skip
    day = ["--from", "2026-12-01", "--to", "2026-12-01"]
    assert main(["simulate", *day, "--agents", str(two), "--json"]) == 0
    better = json.loads(capsys.readouterr().out)
    assert better["service_level"] == pytest.approx(1.0)  # three billing agents: everyone at once

    strict = center_dir / "strict_queues.yaml"  # billing now needs skill 9: nobody configured has it
    strict.write_text(yaml.safe_dump({"queues": {q: {"required_skills": {"billing": 9}} for q in
                                                 ("billing", "support", "sales", "general")}}))  # fmt: skip
    assert main(["simulate", *day, "--queues", str(strict), "--json"]) == 0
    unserved = json.loads(capsys.readouterr().out)
    assert unserved["totals"]["simulated"]["answered"] == 0
    assert unserved["totals"]["actual"]["answered"] == 3

    assert main(["simulate", "--from", "2026-12-01", "--to", "2026-12-01", "--interval-min", "60"]) == 0
    text = capsys.readouterr().out
    assert "figures: recorded / simulated" in text
    assert "2026-12-01 09:00" in text and "billing" in text
    assert "4 contacts replayed against 3 agents" in text


def test_replay_errors_are_one_line(center_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--from", "2026-12-01"]) == 2
    assert "replay needs --from and --to" in capsys.readouterr().err
    assert main(["simulate", "--from", "first of may", "--to", "2026-12-01"]) == 2
    assert "not a date or time" in capsys.readouterr().err
    (center_dir / "var" / "callcenter.db").unlink()
    assert main(["simulate", "--from", "2026-12-01", "--to", "2026-12-01"]) == 2
    assert "no CRM database" in capsys.readouterr().err
