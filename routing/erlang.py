"""Erlang C (M/M/N queue): the textbook staffing model the simulator is checked against.

Assumptions: Poisson arrivals at a constant rate, exponential handle times, N identical
agents, first come first served, infinite queue, nobody abandons. Under them, with
traffic A = arrivals per second × AHT (in erlangs):

- P(wait) = C(N, A) = N·B / (N − A·(1 − B)), B = Erlang B(N, A);
- service level at threshold t = 1 − P(wait) · exp(−(N − A) · t / AHT);
- ASA = P(wait) · AHT / (N − A); occupancy = A / N.

B comes from the recursion B(0) = 1, B(n) = A·B(n−1) / (n + A·B(n−1)), which stays
within [0, 1] at every step, so hundreds or thousands of agents cost N multiplications
and never overflow the way A^N / N! does. When A ≥ N the queue grows without bound:
P(wait) = 1, service level 0 and ASA infinite (rather than None), so a staffing table
can show the row.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


def traffic(arrivals: float, interval_s: float, aht_s: float) -> float:
    """Offered load in erlangs: ``arrivals`` per ``interval_s`` seconds, each lasting ``aht_s``."""
    if interval_s <= 0 or aht_s < 0 or arrivals < 0:
        raise ValueError("interval must be positive, arrivals and AHT not negative")
    return arrivals / interval_s * aht_s


def erlang_b(load: float, agents: int) -> float:
    """Blocking probability of an M/M/N/N system (Erlang B), by the stable recursion."""
    if agents < 0 or load < 0:
        raise ValueError("agents and load must not be negative")
    b = 1.0
    for n in range(1, agents + 1):
        b = load * b / (n + load * b)
    return b


def erlang_c(load: float, agents: int) -> float:
    """Probability that an arriving contact waits (Erlang C); 1.0 when ``load >= agents``."""
    if agents <= 0 or load >= agents:
        return 1.0
    if load <= 0:
        return 0.0
    b = erlang_b(load, agents)
    return agents * b / (agents - load * (1 - b))


def service_level(load: float, agents: int, aht_s: float, threshold_s: float) -> float:
    """Share of contacts answered within ``threshold_s`` (0..1)."""
    if agents <= 0 or load >= agents:
        return 0.0
    return 1.0 - erlang_c(load, agents) * math.exp(-(agents - load) * threshold_s / aht_s)


def asa(load: float, agents: int, aht_s: float) -> float:
    """Average speed of answer in seconds (mean wait over all contacts); inf when unstable."""
    if agents <= 0 or load >= agents:
        return math.inf
    return erlang_c(load, agents) * aht_s / (agents - load)


@dataclass(frozen=True, slots=True)
class ErlangC:
    """Erlang C figures for one interval: the inputs, and what the model predicts."""

    arrivals: float
    interval_s: float
    aht_s: float
    agents: int
    threshold_s: float
    traffic: float  # erlangs
    occupancy: float  # traffic / agents, capped at 1
    probability_wait: float
    service_level: float  # 0..1
    asa_s: float  # inf when arrivals exceed capacity

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["asa_s"] = None if math.isinf(self.asa_s) else self.asa_s  # JSON has no infinity
        return out


def erlang_c_report(
    arrivals: float, interval_s: float, aht_s: float, agents: int, threshold_s: float
) -> ErlangC:
    """Erlang C for ``arrivals`` per ``interval_s``, AHT ``aht_s``, ``agents`` agents."""
    load = traffic(arrivals, interval_s, aht_s)
    return ErlangC(
        arrivals=arrivals,
        interval_s=interval_s,
        aht_s=aht_s,
        agents=agents,
        threshold_s=threshold_s,
        traffic=load,
        occupancy=min(1.0, load / agents) if agents > 0 else 1.0,
        probability_wait=erlang_c(load, agents),
        service_level=service_level(load, agents, aht_s, threshold_s),
        asa_s=asa(load, agents, aht_s),
    )


def agents_for_service_level(
    arrivals: float,
    interval_s: float,
    aht_s: float,
    threshold_s: float,
    target: float,
    max_agents: int = 100_000,
) -> int:
    """Fewest agents whose Erlang C service level reaches ``target`` (0..1).

    Walks N upwards carrying Erlang B along (one recursion step per N), so the search
    costs O(answer) rather than O(answer²).
    """
    if not 0 < target < 1:
        raise ValueError("target is a share between 0 and 1 (exclusive)")
    load = traffic(arrivals, interval_s, aht_s)
    if load <= 0:
        return 0
    b = 1.0
    for n in range(1, max_agents + 1):
        b = load * b / (n + load * b)
        if n <= load:
            continue
        p_wait = n * b / (n - load * (1 - b))
        if 1.0 - p_wait * math.exp(-(n - load) * threshold_s / aht_s) >= target:
            return n
    raise ValueError(f"no staffing up to {max_agents} agents reaches {target:.0%}")
