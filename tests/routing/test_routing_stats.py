"""Erlang C and the sliding windows."""

from __future__ import annotations

import math

import pytest

from routing.stats import AgentTracker, Window, erlang_c, erlang_c_wait, position_wait


def erlang_c_factorial(a: float, n: int) -> float:
    """Textbook form, independent of the implementation's Erlang B recursion."""
    top = a**n / math.factorial(n) * n / (n - a)
    return top / (sum(a**k / math.factorial(k) for k in range(n)) + top)


@pytest.mark.parametrize(("traffic", "agents"), [(0.5, 1), (2.0, 3), (10.0, 12), (25.0, 30)])
def test_erlang_c_matches_the_textbook_formula(traffic: float, agents: int) -> None:
    assert erlang_c(traffic, agents) == pytest.approx(erlang_c_factorial(traffic, agents))


def test_single_agent_is_m_m_1() -> None:
    lam, aht = 1 / 120, 60.0  # rho = 0.5
    assert erlang_c(lam * aht, 1) == pytest.approx(0.5)
    # M/M/1 mean wait in queue = rho / (mu - lambda)
    assert erlang_c_wait(lam, aht, 1) == pytest.approx(0.5 / (1 / aht - lam))


def test_erlang_c_unstable_and_large() -> None:
    assert erlang_c(12.0, 12) is None
    assert erlang_c(0.0, 3) == 0.0
    big = erlang_c(950.0, 1000)  # factorials would overflow; the recursion does not
    assert big is not None and 0 < big < 1


def test_window_forgets_old_values() -> None:
    w = Window(60)
    w.add(0, 10)
    w.add(30, 20)
    assert w.mean(30) == 15
    assert w.mean(61) == 20  # the value at t=0 left the window
    assert w.mean(200) is None


def test_agent_occupancy_counts_handling_over_available() -> None:
    tr = AgentTracker(3600, now=0)
    tr.mark(0, "idle")
    tr.mark(100, "handling")
    tr.mark(400, "off")  # break: not counted
    tr.mark(1000, "idle")
    assert tr.occupancy(1100) == pytest.approx(100 * 300 / (300 + 200))


def test_position_wait() -> None:
    assert position_wait(3, 180, 6) == 90
    assert position_wait(1, 180, 0) == math.inf
