"""The reports HTTP API over a known event set (SQLite and PostgreSQL, the ``store``
fixture): supervisor only, JSON figures equal the hand-computed ones of test_reports,
the CSV download holds the same rows, and the what-if endpoint answers both modes."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest
from crm_events import ev
from test_agent_states import day as agent_day
from test_reports import T0, arrived, loaded

from callcenter.config import ReportsCfg
from callcenter.reporting import ReportService
from callcenter.web.app import create_app
from callcenter.web.auth import Authenticator, Principal
from crm_bridge.store import CrmStore
from routing import build_config
from tests.support import eventually

ROUTING = build_config(
    {"skills": {"en": {}, "mail": {}}},
    {"queues": {"support": {"required_skills": {"en": 1}}, "email": {"required_skills": {"mail": 1}}}},
)
AGENTS = [{"id": "a1", "skills": {"en": 5}, "name": "Ann", "sip": {"username": "1001"}}]
RANGE = {"from": str(T0), "to": str(T0 + 3600)}


@pytest.fixture
async def api(store: CrmStore) -> Any:
    await loaded(store)
    await store.apply_events(agent_day())  # state changes of a1, a2, a3
    auth = Authenticator({}, {}, ttl_s=600, key="k" * 32)
    app = create_app(None, auth)  # type: ignore[arg-type]  # the report routes never touch the backend
    service = ReportService(lambda: store.engine, ReportsCfg(), ROUTING, AGENTS, lambda: {"queues": []})
    await service.refresh()  # as the server's background task does
    app.state.reports = service
    sup = auth.issue(Principal("boss", "supervisor"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                 headers={"Authorization": f"Bearer {sup}"}) as client:  # fmt: skip
        client.agent_token = auth.issue(Principal("a1", "agent"))  # type: ignore[attr-defined]
        client.app = app  # type: ignore[attr-defined]
        yield client


def by_key(rows: list[dict[str, Any]]) -> dict[tuple[float, str, str], dict[str, Any]]:
    return {(r["interval_start"], r["queue"], r["channel"]): r for r in rows}


async def test_supervisor_only(api: Any) -> None:
    agent = {"Authorization": f"Bearer {api.agent_token}"}
    assert (await api.get("/api/reports/queues", params=RANGE, headers=agent)).status_code == 403
    wrong = {"Authorization": "Bearer x"}
    assert (await api.get("/api/reports/agents", params=RANGE, headers=wrong)).status_code == 401
    bad = await api.get("/api/reports/queues", params={"from": "yesterday", "to": "2026-12-06"})
    assert bad.status_code == 422 and "not a date" in bad.json()["detail"]
    backwards = await api.get("/api/reports/queues", params={"from": str(T0 + 10), "to": str(T0)})
    assert backwards.status_code == 422


async def test_queue_report_figures_and_csv(api: Any) -> None:
    r = await api.get("/api/reports/queues", params=RANGE | {"interval": 1800})
    assert r.status_code == 200
    body = r.json()
    assert body["service_level_formula"].startswith("answered within threshold /")
    rows = by_key(body["rows"])
    first = rows[(T0, "support", "voice")]
    # Worked out by hand in test_reports: A B answered, C abandoned, D short abandon, F callback.
    assert (first["offered"], first["answered"], first["abandoned"], first["short_abandoned"]) == (5, 2, 2, 1)
    assert first["service_level"] == pytest.approx(1 / 3)
    assert first["asa_s"] == pytest.approx(37.5) and first["transfers"] == 1 and first["callbacks"] == 1
    total = body["totals"]
    assert (total["offered"], total["answered"], total["abandoned"]) == (7, 4, 2)
    assert total["service_level"] == pytest.approx(2 / 5)

    only_email = (await api.get("/api/reports/queues", params=RANGE | {"queue": "email"})).json()
    assert [(r["queue"], r["answered"]) for r in only_email["rows"]] == [("email", 1)]

    c = await api.get("/api/reports/queues", params=RANGE | {"interval": 1800, "format": "csv"})
    assert c.status_code == 200 and c.headers["content-type"].startswith("text/csv")
    assert "attachment" in c.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(c.text)))
    assert len(table) == len(body["rows"])
    for line, row in zip(table, body["rows"], strict=True):
        for key, value in row.items():
            assert line[key] == ("" if value is None else str(value)), key


async def test_agent_report_and_csv(api: Any) -> None:
    body = (await api.get("/api/reports/agents", params={"from": str(T0), "to": str(T0 + 7200)})).json()
    assert set(body) >= {"rows", "totals", "states", "reasons", "service_level_formula", "occupancy_formula"}
    rows = {(r["agent_id"], r["channel"]): r for r in body["rows"]}
    # a2 finished B (transferred from a1); a1 answered A and H; a3 the email G.
    assert {k: r["handled"] for k, r in rows.items()} == {("a1", "voice"): 2, ("a2", "voice"): 1,
                                                           ("a3", "email"): 1}  # fmt: skip
    assert rows[("a1", "voice")]["aht_s"] == pytest.approx((120 + 60) / 2)
    hours = {"from": str(T0), "to": str(T0 + 7200)}
    c = await api.get("/api/reports/agents", params=hours | {"format": "csv"})
    assert [line["agent_id"] for line in csv.DictReader(io.StringIO(c.text))] == ["a1", "a2", "a3"]
    # Time in state (test_agent_states' changes): a1 goes offline at T0 + 1800.
    states = {r["agent_id"]: r for r in body["states"]}
    assert (states["a1"]["busy_s"], states["a1"]["offline_s"]) == (100, 5400)
    assert states["a1"]["occupancy"] == pytest.approx(130 / 1200)
    assert body["occupancy_formula"].startswith("(reserved + busy + wrap_up)")
    assert {(r["agent_id"], r["reason"]): r["seconds"] for r in body["reasons"]} == {
        ("a1", "lunch"): 600, ("a3", "training"): 7200}  # fmt: skip
    c = await api.get("/api/reports/agents", params=hours | {"format": "csv", "table": "states"})
    lines = list(csv.DictReader(io.StringIO(c.text)))
    assert [{k: float(v) if v else None for k, v in line.items() if k != "agent_id"} for line in lines] == [
        {k: v for k, v in r.items() if k != "agent_id"} for r in body["states"]]  # fmt: skip
    assert "agents-states-" in c.headers["content-disposition"]


async def test_simulate_synthetic_and_replay(api: Any) -> None:
    synthetic = {"mode": "synthetic", "arrivals_per_30min": 100, "aht_s": 180, "agents": 14}
    r = await api.post("/api/reports/simulate", json=synthetic)
    assert r.status_code == 200
    out = r.json()
    assert 0 <= out["service_level"] <= 1 and out["erlang_c_service_level"] == pytest.approx(0.888, abs=0.001)
    too_long = await api.post("/api/reports/simulate", json={"mode": "synthetic", "days": 30})
    assert too_long.status_code == 422

    replay = (await api.post("/api/reports/simulate", json={"mode": "replay"} | RANGE)).json()
    assert replay["agents"] == 1 and replay["recorded_service_level"] == pytest.approx(2 / 5)
    pairs = by_key(replay["intervals"])
    assert pairs[(T0, "support", "voice")]["actual"]["offered"] == 5
    assert pairs[(T0, "support", "voice")]["simulated"]["offered"] == 5
    # Two copies of a1: the recorded contacts are answered sooner, nobody staffs email.
    more = (await api.post("/api/reports/simulate", json={"mode": "replay", "agent_count": 2} | RANGE)).json()
    assert more["agents"] == 2
    assert [a["agent_id"] for a in more["simulated_agents"]] == ["a1", "a1+1"]
    assert (await api.post("/api/reports/simulate", json={"mode": "replay"})).status_code == 422
    api.app.state.reports.cfg = ReportsCfg(simulate_max_contacts=3)  # the range holds 8 routed contacts
    big = await api.post("/api/reports/simulate", json={"mode": "replay"} | RANGE)
    assert big.status_code == 413 and "more than 3 contacts" in big.json()["detail"]


async def test_background_task_refreshes_the_rollup_and_samples_live_figures(store: CrmStore) -> None:
    """What Center starts: the rollup follows new records without a request, and the
    live queue figures are kept as a bounded history."""
    snapshot = {"ts": 1.0, "queues": [{"queue": "support", "waiting": 3, "service_level": 80.0,
                                       "service_level_target": 80.0}]}  # fmt: skip
    cfg = ReportsCfg(rollup_every_s=0.01, live_sample_s=0.01, live_history_h=0.00001)  # 3 samples kept
    service = ReportService(lambda: store.engine, cfg, ROUTING, AGENTS, lambda: snapshot)
    service.start()
    try:
        await eventually(lambda: service.rolled_up, what="rollup built in the background")
        spec = service.spec(T0, T0 + 3600, 1800, ())

        def offered(n: int) -> Any:
            async def check() -> bool:
                return sum(r["offered"] for r in (await service.queues(spec))["rows"]) == n

            return check

        await loaded(store)  # written after the rollup was first built: it must follow
        await eventually(offered(7), what="the rollup followed the new records")
        late = [arrived("Y", T0 + 700), ev("ContactQueued", "Y", T0 + 701, queue="support")]
        await store.apply_events(late)
        await eventually(offered(8), what="the rollup followed one more record")
        await eventually(lambda: service.samples.maxlen == len(service.samples))
        support = service.samples[-1]["queues"]["support"]
        assert support == {"waiting": 3, "service_level": 80.0, "target": 80.0}
    finally:
        await service.close()
