"""Reports from a known event set equal hand-computed figures, on SQLite and on the real
PostgreSQL (the ``store`` fixture runs both); the same records replay through the
simulator (routing.simulation.Arrival.from_record)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from crm_events import ev

from crm_bridge.records import build_record
from crm_bridge.reports import ReportSpec, agent_report, queue_report, refresh_rollup, totals
from crm_bridge.store import CrmStore
from routing import AgentConfig, build_config
from routing.simulation import Arrival, StaffedAgent, arrivals_from_records, side_by_side, simulate

T0 = 1_800_000.0  # an interval boundary (1000 × 1800 s)
SPEC = ReportSpec(start=T0, end=T0 + 3600, interval_s=1800, threshold_s=20, short_abandon_s=5)


def arrived(cid: str, t: float, channel: str = "voice") -> dict[str, Any]:
    return ev("ContactArrived", cid, t, channel=channel, direction="inbound", ani="+441632960001")


def known_events() -> dict[str, list[dict[str, Any]]]:
    """Eight contacts over two 30-minute intervals; the figures are worked out in the tests."""
    t = T0
    return {
        # answered in 15 s after IVR, 10 s on hold, talk 90, wrap-up 20
        "A": [
            arrived("A", t),
            ev("FlowEntered", "A", t + 1, flow="main"),
            ev("IvrCompleted", "A", t + 10, outcome="queued"),
            ev("ContactQueued", "A", t + 10, queue="support", priority=1, skills={"en": 1}),
            ev("AgentOffered", "A", t + 20, agent_id="a1", queue="support", reservation_id="r1"),
            ev("ContactConnected", "A", t + 25, agent_id="a1"),
            ev("ContactHeld", "A", t + 30, agent_id="a1", on_hold=True),
            ev("ContactHeld", "A", t + 40, agent_id="a1", on_hold=False),
            ev("ContactEnded", "A", t + 125, reason="hangup", ended_by="caller"),
            ev("WrapUpCompleted", "A", t + 145, agent_id="a1", disposition="done"),
        ],
        # answered after 60 s by a1, transferred to a2: talk 39 + 60, wrap-up 10, agent a2
        "B": [
            arrived("B", t + 100),
            ev("ContactQueued", "B", t + 101, queue="support", priority=0),
            ev("ContactConnected", "B", t + 161, agent_id="a1"),
            ev("ContactTransferred", "B", t + 200, from_agent="a1", target="agent:a2"),
            ev("ContactConnected", "B", t + 202, agent_id="a2"),
            ev("ContactEnded", "B", t + 262, reason="hangup", ended_by="agent"),
            ev("WrapUpCompleted", "B", t + 272, agent_id="a2"),
        ],
        # abandoned after 30 s
        "C": [
            arrived("C", t + 300),
            ev("ContactQueued", "C", t + 301, queue="support", priority=0),
            ev("ContactAbandoned", "C", t + 331, waited_s=30.0, where="queue"),
            ev("ContactEnded", "C", t + 331, reason="hangup", ended_by="caller"),
        ],
        # short abandon (2 s)
        "D": [
            arrived("D", t + 400),
            ev("ContactQueued", "D", t + 401, queue="support", priority=0),
            ev("ContactAbandoned", "D", t + 403, waited_s=2.0, where="queue"),
            ev("ContactEnded", "D", t + 403, reason="hangup", ended_by="caller"),
        ],
        # self-served in the IVR, never queued
        "E": [
            arrived("E", t + 500),
            ev("FlowEntered", "E", t + 501, flow="main"),
            ev("IvrCompleted", "E", t + 560, outcome="self_served"),
            ev("ContactEnded", "E", t + 560, reason="hangup", ended_by="caller"),
        ],
        # asked for a callback after 49 s in queue
        "F": [
            arrived("F", t + 600),
            ev("ContactQueued", "F", t + 601, queue="support", priority=0),
            ev("CallbackRequested", "F", t + 650, number="+441632960099"),
            ev("ContactEnded", "F", t + 651, reason="callback", ended_by="system"),
        ],
        # second interval: an email answered after 100 s, 300 s handling, 10 s wrap-up
        "G": [
            arrived("G", t + 1805, channel="email"),
            ev("ContactQueued", "G", t + 1806, queue="email", priority=0),
            ev("ContactConnected", "G", t + 1906, agent_id="a3"),
            ev("ContactEnded", "G", t + 2206, reason="replied", ended_by="agent"),
            ev("WrapUpCompleted", "G", t + 2216, agent_id="a3"),
        ],
        # second interval: a call answered in 4 s, talk 60, no wrap-up event
        "H": [
            arrived("H", t + 1900),
            ev("ContactQueued", "H", t + 1901, queue="support", priority=0),
            ev("ContactConnected", "H", t + 1905, agent_id="a1"),
            ev("ContactEnded", "H", t + 1965, reason="hangup", ended_by="caller"),
        ],
        # outside the range (next hour): must not count
        "Z": [
            arrived("Z", t + 3600),
            ev("ContactQueued", "Z", t + 3601, queue="support", priority=0),
            ev("ContactAbandoned", "Z", t + 3610, waited_s=9.0, where="queue"),
        ],
    }


async def loaded(store: CrmStore) -> None:
    events = [e for evs in known_events().values() for e in evs]
    result = await store.apply_events(events)
    assert result.records == 9


def by_key(rows: list[dict[str, Any]]) -> dict[tuple[float, str, str], dict[str, Any]]:
    return {(r["interval_start"], r["queue"], r["channel"]): r for r in rows}


@pytest.mark.parametrize("rollup", [False, True], ids=["raw", "rollup"])
async def test_queue_report_equals_hand_computed_figures(store: CrmStore, rollup: bool) -> None:
    await loaded(store)
    if rollup:
        await refresh_rollup(store.engine, 20, 5)
    rows = by_key(await queue_report(store.engine, SPEC, rollup=rollup))
    assert set(rows) == {
        (T0, "support", "voice"),
        (T0, "", "voice"),
        (T0 + 1800, "email", "email"),
        (T0 + 1800, "support", "voice"),
    }
    first = rows[(T0, "support", "voice")]
    expected = {
        "arrived": 5,  # A B C D F
        "offered": 5,
        "answered": 2,  # A B
        "abandoned": 2,  # C D
        "short_abandoned": 1,  # D
        "answered_within": 1,  # A (15 s)
        "transfers": 1,  # B
        "callbacks": 1,  # F
        "self_served": 0,
    }
    assert {k: first[k] for k in expected} == expected
    assert first["service_level"] == pytest.approx(1 / (2 + 2 - 1))
    assert first["asa_s"] == pytest.approx((15 + 60) / 2)
    assert first["talk_s"] == pytest.approx((90 + 99) / 2)
    assert first["hold_s"] == pytest.approx((10 + 0) / 2)
    assert first["wrap_up_s"] == pytest.approx((20 + 10) / 2)
    assert first["aht_s"] == pytest.approx((120 + 109) / 2)
    assert first["longest_wait_s"] == pytest.approx(60)

    ivr = rows[(T0, "", "voice")]
    assert (ivr["arrived"], ivr["offered"], ivr["self_served"], ivr["service_level"]) == (1, 0, 1, None)

    email = rows[(T0 + 1800, "email", "email")]
    assert (email["answered"], email["answered_within"], email["service_level"]) == (1, 0, 0.0)
    assert email["asa_s"] == pytest.approx(100) and email["aht_s"] == pytest.approx(310)

    later = rows[(T0 + 1800, "support", "voice")]
    assert (later["answered"], later["answered_within"], later["service_level"]) == (1, 1, 1.0)
    assert later["wrap_up_s"] is None and later["aht_s"] == pytest.approx(60)

    total = totals(list(rows.values()))
    assert (total["offered"], total["answered"], total["abandoned"]) == (7, 4, 2)
    assert total["service_level"] == pytest.approx(2 / (4 + 2 - 1))
    assert total["asa_s"] == pytest.approx((15 + 60 + 100 + 4) / 4)


async def test_fifteen_minute_intervals_and_queue_filter(store: CrmStore) -> None:
    await loaded(store)
    spec = ReportSpec(start=T0, end=T0 + 3600, interval_s=900, queues=("support",))
    rows = by_key(await queue_report(store.engine, spec))
    assert set(rows) == {(T0, "support", "voice"), (T0 + 1800, "support", "voice")}
    assert rows[(T0, "support", "voice")]["offered"] == 5


async def test_agent_report(store: CrmStore) -> None:
    await loaded(store)
    rows = {(r["agent_id"], r["channel"]): r for r in await agent_report(store.engine, SPEC)}
    assert set(rows) == {("a1", "voice"), ("a2", "voice"), ("a3", "email")}
    a1 = rows[("a1", "voice")]
    assert a1["handled"] == 2  # A and H; B ended with a2
    assert a1["aht_s"] == pytest.approx((120 + 60) / 2)
    assert a1["talk_s"] == pytest.approx((90 + 60) / 2)
    assert rows[("a2", "voice")]["handled"] == 1 and rows[("a2", "voice")]["aht_s"] == pytest.approx(109)
    assert rows[("a3", "email")]["aht_s"] == pytest.approx(310)


async def test_rollup_follows_new_and_changed_records(store: CrmStore) -> None:
    events = known_events()
    late_wrap_up = events["H"]
    first_part = [e for cid, evs in events.items() if cid not in ("G", "H") for e in evs]
    await store.apply_events(first_part)
    await store.apply_events(late_wrap_up)  # H without its wrap-up yet
    await refresh_rollup(store.engine, 20, 5, lag_s=0)
    # More contacts, and a change to one already rolled up: H's wrap-up completes.
    await store.apply_events(events["G"])
    await store.apply_events([ev("WrapUpCompleted", "H", T0 + 1975, agent_id="a1")])
    # lag_s=0: nothing else writes here (in production the lag re-reads the last minutes).
    info = await refresh_rollup(store.engine, 20, 5, lag_s=0)
    assert info["ranges"] == 1  # only the second interval's buckets were re-aggregated
    raw = await queue_report(store.engine, SPEC)
    rolled = await queue_report(store.engine, SPEC, rollup=True)
    assert rolled == raw
    assert by_key(rolled)[(T0 + 1800, "support", "voice")]["wrap_up_s"] == pytest.approx(10)
    # Other thresholds have no rollup of their own: refused, not silently wrong.
    with pytest.raises(ValueError, match="refresh_rollup"):
        await queue_report(store.engine, ReportSpec(T0, T0 + 3600, threshold_s=30), rollup=True)
    # A range that does not fall on 15-minute buckets reads the records instead.
    odd = ReportSpec(T0 + 60, T0 + 3600, interval_s=1800)
    assert await queue_report(store.engine, odd, rollup=True) == await queue_report(store.engine, odd)


def test_spec_refuses_an_empty_range() -> None:
    with pytest.raises(ValueError):
        ReportSpec(start=T0, end=T0)


def records() -> list[dict[str, Any]]:
    return [dict(build_record(cid, evs)) for cid, evs in known_events().items()]


def test_records_become_simulator_arrivals() -> None:
    recs = {r["id"]: r for r in records()}
    a = Arrival.from_record(recs["A"])
    assert a is not None
    assert (a.at, a.queue, a.channel, a.priority, a.handle_s) == (T0 + 10, "support", "voice", 1, 100)
    assert math.isinf(a.patience_s) and a.arrived_at == T0
    assert a.required == {"en": 1}  # ContactQueued.skills, kept in the record's queue segment
    assert recs["A"]["segments"][1]["skills"] == {"en": 1}
    b = Arrival.from_record(recs["B"])
    assert b is not None and b.handle_s == pytest.approx(99)  # both agents' talk
    c = Arrival.from_record(recs["C"], unanswered_handle_s=42)
    assert c is not None and c.patience_s == 30 and c.handle_s == 42
    f = Arrival.from_record(recs["F"])
    assert f is not None and f.patience_s == pytest.approx(50)  # left the queue for a callback
    assert Arrival.from_record(recs["E"]) is None  # never queued
    capped = Arrival.from_record(recs["A"], answered_patience_s=300)
    assert capped is not None and capped.patience_s == 300

    arrivals = arrivals_from_records(recs.values())
    assert [x.id for x in arrivals] == ["A", "B", "C", "D", "F", "G", "H", "Z"]
    answered_mean = (100 + 99 + 300 + 60) / 4
    assert arrivals[2].handle_s == pytest.approx(answered_mean)


def test_recorded_day_replays_through_the_router() -> None:
    config = build_config(
        {"skills": {"en": {}, "mail": {}}},
        {"queues": {"support": {"required_skills": {"en": 1}}, "email": {"required_skills": {"mail": 1}}}},
    )
    staff = [
        StaffedAgent(AgentConfig(id="a1", skills={"en": 5})),
        StaffedAgent(AgentConfig(id="a3", skills={"mail": 5}, capacity={"email": 3})),
    ]
    result = simulate(arrivals_from_records(records()), config, staff, interval_s=1800, start=T0)
    rows = {(r["interval_start"], r["queue"], r["channel"]): r for r in result.intervals}
    first = rows[(T0, "support", "voice")]
    # The same offered contacts as the report, bucketed by their recorded arrival.
    assert first["offered"] == 5
    # By hand, one agent a1: A 10-110; B waits 101-110, talks to 209; C (handle = mean
    # answered 139.75) is answered at once at 301; D leaves after 2 s (short abandon)
    # while a1 talks to C; F is answered at once at 601.
    assert (first["answered"], first["abandoned"], first["short_abandoned"]) == (4, 1, 1)
    assert first["answered_within"] == 4 and first["service_level"] == pytest.approx(4 / (4 + 1 - 1))
    assert first["asa_s"] == pytest.approx(9 / 4)
    assert rows[(T0 + 1800, "email", "email")]["asa_s"] == 0


async def test_recorded_and_simulated_side_by_side(store: CrmStore) -> None:
    await loaded(store)
    actual = await queue_report(store.engine, SPEC)
    config = build_config(
        {"skills": {"en": {}, "mail": {}}},
        {"queues": {"support": {"required_skills": {"en": 1}}, "email": {"required_skills": {"mail": 1}}}},
    )
    staff = [StaffedAgent.from_dict({"id": "a1", "skills": {"en": 5}, "shifts": [[T0, T0 + 3600]]})]
    recs = [r for r in records() if r["id"] != "Z"]
    simulated = simulate(arrivals_from_records(recs), config, staff, interval_s=1800, start=T0).intervals
    rows = {(r["interval_start"], r["queue"], r["channel"]): r for r in side_by_side(actual, simulated)}
    assert set(rows) == {(T0, "support", "voice"), (T0, "", "voice"), (T0 + 1800, "email", "email"),
                         (T0 + 1800, "support", "voice")}  # fmt: skip
    pair = rows[(T0, "support", "voice")]
    assert pair["actual"]["offered"] == pair["simulated"]["offered"] == 5
    assert pair["actual"]["service_level"] == pytest.approx(1 / 3)
    assert pair["simulated"]["service_level"] == pytest.approx(1.0)
    assert rows[(T0, "", "voice")]["simulated"] is None  # self-served: never routed
    # Nobody staffed for email in this staffing: the email waits, unanswered.
    assert rows[(T0 + 1800, "email", "email")]["simulated"]["answered"] == 0
