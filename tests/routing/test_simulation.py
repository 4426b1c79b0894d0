"""The what-if simulator drives the real Router: hand-computed small runs, skills and
shifts, determinism, and agreement with Erlang C where its assumptions hold."""

from __future__ import annotations

import json
import math

import pytest

from routing import AgentConfig, build_config
from routing.simulation import (
    SL_FORMULA,
    Arrival,
    StaffedAgent,
    run_synthetic,
    simulate,
    synthetic_arrivals,
)


def one_queue(wrap_up_s: float = 0.0):
    return build_config(
        {"skills": {"en": {}, "fr": {}}},
        {
            "queues": {
                "en": {"required_skills": {"en": 1}, "wrap_up_s": wrap_up_s},
                "fr": {"required_skills": {"fr": 1}},
            }
        },
    )


def agent(agent_id: str, *skills: str, shifts=()) -> StaffedAgent:
    return StaffedAgent(AgentConfig(id=agent_id, skills=dict.fromkeys(skills, 5)), tuple(shifts))


def small_day() -> list[Arrival]:
    return [
        Arrival(at=0, queue="en", handle_s=100),  # answered at once
        Arrival(at=10, queue="en", handle_s=50),  # waits for the agent until 100
        Arrival(at=20, queue="en", handle_s=9, patience_s=30),  # abandons at 50 after 30 s
        Arrival(at=30, queue="en", handle_s=9, patience_s=3),  # short abandon at 33
        Arrival(at=150, queue="en", handle_s=10),  # next interval; the agent frees at 150
    ]


def test_hand_computed_intervals_and_agent() -> None:
    result = simulate(
        small_day(), one_queue(), [agent("a1", "en")], interval_s=100, threshold_s=20, short_abandon_s=5
    )
    first, second = result.intervals
    assert (first["interval_start"], first["queue"], first["channel"]) == (0, "en", "voice")
    assert {
        k: first[k] for k in ("offered", "answered", "abandoned", "short_abandoned", "answered_within")
    } == {
        "offered": 4,
        "answered": 2,
        "abandoned": 2,
        "short_abandoned": 1,
        "answered_within": 1,
    }
    assert first["service_level"] == pytest.approx(1 / (2 + 2 - 1))  # the stated formula
    assert first["asa_s"] == pytest.approx((0 + 90) / 2)
    assert first["aht_s"] == pytest.approx((100 + 50) / 2)
    assert first["longest_wait_s"] == pytest.approx(90)
    assert second["interval_start"] == 100
    assert (second["offered"], second["answered"], second["answered_within"]) == (1, 1, 1)
    assert second["service_level"] == 1.0
    (a1,) = result.agents
    assert a1["handled"] == 3
    assert a1["busy_s"] == pytest.approx(160)
    assert a1["occupancy"] == pytest.approx(160 / result.end) and result.end == 160
    assert result.totals["offered"] == 5 and result.totals["service_level"] == pytest.approx(2 / 4)
    assert result.to_dict()["service_level_formula"] == SL_FORMULA


def test_wrap_up_runs_on_the_routers_timer() -> None:
    result = simulate(small_day()[:2], one_queue(wrap_up_s=10), [agent("a1", "en")], interval_s=100)
    (row,) = result.intervals
    # The second caller waits for the call (100 s) plus the wrap-up (10 s).
    assert row["asa_s"] == pytest.approx((0 + 100) / 2)
    assert row["wrap_up_s"] == pytest.approx(10)
    assert row["aht_s"] == pytest.approx((100 + 50) / 2 + 10)
    assert result.agents[0]["busy_s"] == pytest.approx(100 + 50 + 20)


def test_skills_and_shifts_decide_who_answers() -> None:
    arrivals = [
        Arrival(at=0, queue="fr", handle_s=30, channel="voice"),
        Arrival(at=5, queue="en", handle_s=30, channel="voice"),
    ]
    staff = [agent("en1", "en"), agent("fr1", "fr", shifts=[(60, 200)])]
    result = simulate(arrivals, one_queue(), staff, interval_s=100, threshold_s=20)
    rows = {r["queue"]: r for r in result.intervals}
    # The English agent is free from the start but cannot take French: it waits for the shift.
    assert rows["fr"]["asa_s"] == pytest.approx(60) and rows["fr"]["answered_within"] == 0
    assert rows["en"]["asa_s"] == 0 and rows["en"]["answered_within"] == 1
    by_id = {a["agent_id"]: a for a in result.agents}
    assert by_id["en1"]["handled"] == 1 and by_id["fr1"]["handled"] == 1
    assert by_id["fr1"]["staffed_s"] == pytest.approx(result.end - 60)


def test_nobody_staffed_means_callers_abandon_and_none_answered() -> None:
    arrivals = [Arrival(at=t, queue="fr", handle_s=10, patience_s=40) for t in (0, 1, 2)]
    result = simulate(arrivals, one_queue(), [agent("en1", "en")], interval_s=100, short_abandon_s=5)
    assert result.totals["answered"] == 0 and result.totals["abandoned"] == 3
    assert result.totals["service_level"] == 0.0
    assert result.totals["longest_wait_s"] == pytest.approx(40)


def test_unsorted_arrivals_are_refused() -> None:
    with pytest.raises(ValueError, match="sorted"):
        simulate(list(reversed(small_day())), one_queue(), [agent("a1", "en")])


def test_synthetic_runs_are_deterministic_with_a_seed() -> None:
    a = run_synthetic(100, 180, 14, duration_s=86_400, patience_s=120, seed=7)
    b = run_synthetic(100, 180, 14, duration_s=86_400, patience_s=120, seed=7)
    c = run_synthetic(100, 180, 14, duration_s=86_400, patience_s=120, seed=8)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert a["intervals"] != c["intervals"]
    assert list(a)[:2] == ["service_level", "erlang_c_service_level"]
    assert 0.0 <= a["service_level"] <= 1.0
    assert len(a["intervals"]) >= 48  # every 30-minute interval of the day


def test_synthetic_arrivals_follow_the_rate_and_aht() -> None:
    arrivals = synthetic_arrivals(100, 1800, 10 * 86_400, 180, seed=3)
    expected = 100 * 10 * 86_400 / 1800
    assert abs(len(arrivals) - expected) < 4 * math.sqrt(expected)
    mean = sum(a.handle_s for a in arrivals) / len(arrivals)
    assert mean == pytest.approx(180, rel=0.02)
    assert all(math.isinf(a.patience_s) for a in arrivals)


@pytest.mark.parametrize("agents", [13, 14, 15])
def test_agrees_with_erlang_c_without_abandons(agents: int) -> None:
    # Poisson, exponential AHT, one skill, FCFS, no abandons: Erlang C's world. A month
    # of simulated time keeps the run's own noise well inside the ±2 points.
    out = run_synthetic(100, 180, agents, threshold_s=20, duration_s=30 * 86_400, seed=1)
    assert abs(out["service_level"] - out["erlang_c_service_level"]) <= 0.02
    assert out["totals"]["abandoned"] == 0


def test_abandons_show_what_erlang_c_misses() -> None:
    patient = run_synthetic(100, 180, 12, duration_s=5 * 86_400, seed=2)
    leaving = run_synthetic(100, 180, 12, duration_s=5 * 86_400, patience_s=60, seed=2)
    # Erlang C predicts the same for both; callers who hang up shorten everyone's wait.
    assert patient["erlang_c_service_level"] == leaving["erlang_c_service_level"]
    assert leaving["totals"]["abandoned"] > 0
    assert leaving["totals"]["asa_s"] < patient["totals"]["asa_s"]
    assert leaving["service_level"] > patient["service_level"]
