"""Erlang C against the closed form (computed here independently, with exact fractions)
and against the figures issue 18 measured with simpy."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from routing.erlang import (
    agents_for_service_level,
    asa,
    erlang_b,
    erlang_c,
    erlang_c_report,
    service_level,
    traffic,
)


def closed_form_p_wait(load: int, agents: int) -> float:
    """P(wait) = (A^N/N! · N/(N−A)) / (Σ_{k<N} A^k/k! + A^N/N! · N/(N−A)), exactly."""
    a = Fraction(load)
    top = a**agents / math.factorial(agents) * Fraction(agents, agents - load)
    bottom = sum(a**k / math.factorial(k) for k in range(agents)) + top
    return float(top / bottom)


@pytest.mark.parametrize(("load", "agents"), [(1, 2), (10, 11), (10, 13), (10, 15), (50, 60), (100, 110)])
def test_probability_of_wait_matches_the_factorial_form(load: int, agents: int) -> None:
    assert erlang_c(load, agents) == pytest.approx(closed_form_p_wait(load, agents), rel=1e-12)


def test_issue_figures_100_calls_per_30_min_aht_180() -> None:
    # Traffic 10 erlangs; issue 18 measured SL(20 s) 0.79 / 0.88 / 0.93 with simpy.
    assert traffic(100, 1800, 180) == pytest.approx(10.0)
    got = [erlang_c_report(100, 1800, 180, n, 20).service_level for n in (13, 14, 15)]
    for value, measured in zip(got, (0.79, 0.88, 0.93), strict=True):
        assert abs(value - measured) <= 0.02
    # And the exact formula, evaluated independently.
    for n, value in zip((13, 14, 15), got, strict=True):
        expected = 1 - closed_form_p_wait(10, n) * math.exp(-(n - 10) * 20 / 180)
        assert value == pytest.approx(expected, rel=1e-12)


def test_asa_and_occupancy() -> None:
    report = erlang_c_report(100, 1800, 180, 14, 20)
    assert report.asa_s == pytest.approx(closed_form_p_wait(10, 14) * 180 / 4, rel=1e-12)
    assert report.occupancy == pytest.approx(10 / 14)
    assert report.to_dict()["service_level"] == report.service_level


def test_stable_for_thousands_of_agents() -> None:
    # A^N/N! overflows a float far below these sizes; the recursion does not.
    p = erlang_c(900.0, 950)
    assert 0.0 < p < 1.0
    assert 0.0 < erlang_b(4000.0, 4100) < 1.0
    assert service_level(900.0, 950, 180, 20) > 0.9
    # Agreement with exact arithmetic at a size where floats of A^N would overflow.
    assert erlang_c(400, 420) == pytest.approx(closed_form_p_wait(400, 420), rel=1e-9)


def test_unstable_load_waits_forever() -> None:
    assert erlang_c(10, 10) == 1.0
    assert service_level(12, 10, 180, 20) == 0.0
    assert math.isinf(asa(12, 10, 180))
    assert erlang_c_report(200, 1800, 180, 10, 20).to_dict()["asa_s"] is None


def test_no_traffic_never_waits() -> None:
    assert erlang_c(0, 3) == 0.0
    assert service_level(0, 3, 180, 20) == 1.0


def test_agents_for_service_level_is_the_smallest_that_reaches_it() -> None:
    n = agents_for_service_level(100, 1800, 180, 20, 0.80)
    assert n == 14
    assert erlang_c_report(100, 1800, 180, n, 20).service_level >= 0.80
    assert erlang_c_report(100, 1800, 180, n - 1, 20).service_level < 0.80
    big = agents_for_service_level(5000, 1800, 300, 20, 0.9)
    assert service_level(traffic(5000, 1800, 300), big, 300, 20) >= 0.9
    assert service_level(traffic(5000, 1800, 300), big - 1, 300, 20) < 0.9


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        traffic(10, 0, 180)
    with pytest.raises(ValueError):
        agents_for_service_level(10, 1800, 180, 20, 1.5)
