"""Agent time per state and reason code, and occupancy, from AgentStateChanged events
stored through the CRM store (SQLite and PostgreSQL), against hand-computed figures;
and the migration that fills the table from the events the timeline already held."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from crm_bridge.agent_states import agent_state_report
from crm_bridge.migrate import alembic_config, upgrade
from crm_bridge.schema import agent_state_events
from crm_bridge.store import CrmStore

T0 = 1_800_000.0
_n = iter(range(1_000_000))


def change(agent: str, t: float, old: str, new: str, reason: str = "") -> dict[str, Any]:
    return {"type": "AgentStateChanged", "event_id": f"as{next(_n):06d}", "contact_id": "", "ts": t,
            "agent_id": agent, "old": old, "new": new, "reason": reason}  # fmt: skip


def day() -> list[dict[str, Any]]:
    return [
        change("a1", T0 - 100, "offline", "available"),  # before the range: in force at its start
        change("a1", T0 + 100, "available", "busy"),
        change("a1", T0 + 200, "busy", "wrap_up"),
        change("a1", T0 + 230, "wrap_up", "available"),
        change("a1", T0 + 1000, "available", "not_ready", "lunch"),
        change("a1", T0 + 1600, "not_ready", "available"),
        change("a2", T0 + 900, "offline", "available"),
        change("a3", T0 - 50, "available", "not_ready", "training"),  # all range long
        change("a1", T0 + 1800, "available", "offline"),  # after the range: ignored
    ]


async def test_time_in_state_and_occupancy(store: CrmStore) -> None:
    await store.apply_events(day())
    report = await agent_state_report(store.engine, T0, T0 + 1800)
    states = {r["agent_id"]: r for r in report["states"]}
    a1 = states["a1"]
    assert (a1["available_s"], a1["busy_s"], a1["wrap_up_s"], a1["not_ready_s"]) == (1070, 100, 30, 600)
    assert a1["logged_in_s"] == 1800 and a1["offline_s"] == 0
    assert a1["occupancy"] == pytest.approx(130 / 1200)
    assert states["a2"]["available_s"] == 900 and states["a2"]["occupancy"] == 0
    assert states["a3"]["not_ready_s"] == 1800 and states["a3"]["occupancy"] is None
    assert sorted((r["agent_id"], r["reason"], r["seconds"]) for r in report["reasons"]) == [
        ("a1", "lunch", 600), ("a3", "training", 1800)]  # fmt: skip
    only = await agent_state_report(store.engine, T0, T0 + 1800, agents=["a2"])
    assert [r["agent_id"] for r in only["states"]] == ["a2"]
    # A replayed batch stores nothing twice (the event ids are the timeline's).
    await store.apply_events(day())
    again = await agent_state_report(store.engine, T0, T0 + 1800)
    assert {r["agent_id"]: r for r in again["states"]}["a1"] == a1


def _downgrade(sync_conn: Any, revision: str) -> None:
    from alembic import command

    cfg = alembic_config()
    cfg.attributes["connection"] = sync_conn
    command.downgrade(cfg, revision)


async def test_migration_fills_the_table_from_the_timeline(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    async with CrmStore(url, tmp_path / "files") as store:
        await store.apply_events(day())
        async with store.engine.begin() as conn:  # back to a store from before 0004 (later ones too)
            await conn.execute(delete(agent_state_events))
            await conn.run_sync(_downgrade, "0003")
    await upgrade(url)
    async with CrmStore(url, tmp_path / "files") as store:
        report = await agent_state_report(store.engine, T0, T0 + 1800)
    assert {r["agent_id"]: r["busy_s"] for r in report["states"]} == {"a1": 100, "a2": 0, "a3": 0}
