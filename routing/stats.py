"""Sliding-window statistics for queues and agents, and Erlang C.

Fed by the Router as things happen (arrival, answer, abandon, contact end,
agent state change); read as snapshots for the supervisor view, Prometheus
and queue announcements. Windows are time-based (``Settings.stats_window_s``)
with running sums, so recording and reading are O(1) amortised.

Definitions (written down because ACDs disagree):
- service level = answered within the target / (answered + abandoned), all in
  the window; abandoned contacts count against it (the strict industry form).
- ASA = mean wait of answered contacts; AHT = mean time from accept to the end
  of wrap-up; abandon rate = abandoned / (answered + abandoned).
- occupancy = time handling contacts / (time handling + time available idle),
  not-ready time excluded.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


class Window:
    """Values observed in the last ``span`` seconds, with running count and sum."""

    __slots__ = ("_items", "count", "span", "total")

    def __init__(self, span: float) -> None:
        self.span = span
        self._items: deque[tuple[float, float]] = deque()
        self.count = 0
        self.total = 0.0

    def add(self, now: float, value: float = 1.0) -> None:
        self._items.append((now, value))
        self.count += 1
        self.total += value
        self.prune(now)

    def prune(self, now: float) -> None:
        cutoff = now - self.span
        items = self._items
        while items and items[0][0] < cutoff:
            _, v = items.popleft()
            self.count -= 1
            self.total -= v

    def mean(self, now: float) -> float | None:
        self.prune(now)
        return self.total / self.count if self.count else None


def erlang_c(traffic: float, agents: int) -> float | None:
    """Probability that an arriving contact waits (Erlang C), or None if unstable.

    Uses the Erlang B recursion, which stays numerically stable for thousands
    of agents where the factorial form overflows.
    """
    if agents <= 0 or traffic >= agents:
        return None
    if traffic <= 0:
        return 0.0
    b = 1.0
    for n in range(1, agents + 1):
        b = traffic * b / (n + traffic * b)
    return agents * b / (agents - traffic * (1 - b))


def erlang_c_wait(arrival_rate: float, aht: float, agents: int) -> float | None:
    """Mean wait of an arriving contact (M/M/N); None when arrivals exceed capacity."""
    traffic = arrival_rate * aht
    p_wait = erlang_c(traffic, agents)
    if p_wait is None:
        return None
    return p_wait * aht / (agents - traffic)


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue: str
    waiting: int
    reserved: int
    longest_wait_s: float
    offered: int
    answered: int
    abandoned: int
    service_level: float | None  # percent, None before any answered/abandoned contact
    service_level_target: float
    service_level_seconds: float
    asa_s: float | None
    aht_s: float | None
    abandon_rate: float | None  # percent
    staffed: int  # logged-in agents able to serve the queue's base requirements
    available: int  # of those, routable now
    occupancy: float | None  # percent over the staffed agents
    ewt_s: float  # estimated wait for a new task, see Router.estimated_wait
    ewt_erlang_c_s: float | None  # M/M/N mean wait from the window's rates, None if unstable
    window_s: float


@dataclass(frozen=True, slots=True)
class AgentStats:
    agent_id: str
    state: str
    reason: str
    in_state_s: float
    load: dict[str, int]
    capacity: dict[str, int]
    contacts_today: int
    rejected_today: int
    rona_today: int
    handled: int  # contacts ended in the window
    aht_s: float | None
    occupancy: float | None  # percent in the window


class QueueTracker:
    __slots__ = ("abandoned", "answered", "arrivals", "handle", "sl_seconds", "within_sl")

    def __init__(self, span: float, sl_seconds: float) -> None:
        self.sl_seconds = sl_seconds
        self.arrivals = Window(span)
        self.answered = Window(span)  # value = wait
        self.within_sl = Window(span)  # value = 1 when answered within target
        self.abandoned = Window(span)  # value = wait
        self.handle = Window(span)  # value = handle time

    def on_answer(self, now: float, wait: float) -> None:
        self.answered.add(now, wait)
        if wait <= self.sl_seconds:
            self.within_sl.add(now)

    def service_level(self, now: float) -> float | None:
        for w in (self.answered, self.within_sl, self.abandoned):
            w.prune(now)
        denom = self.answered.count + self.abandoned.count
        return 100.0 * self.within_sl.count / denom if denom else None

    def abandon_rate(self, now: float) -> float | None:
        self.answered.prune(now)
        self.abandoned.prune(now)
        denom = self.answered.count + self.abandoned.count
        return 100.0 * self.abandoned.count / denom if denom else None

    def arrival_rate(self, now: float) -> float:
        self.arrivals.prune(now)
        return self.arrivals.count / self.arrivals.span


class AgentTracker:
    """Time spent handling vs idle-available, over the window, from state intervals."""

    __slots__ = ("_intervals", "_kind", "_since", "handle", "span")

    def __init__(self, span: float, now: float) -> None:
        self.span = span
        self._intervals: deque[tuple[float, float, str]] = deque()
        self._kind = "off"
        self._since = now
        self.handle = Window(span)

    def mark(self, now: float, kind: str) -> None:
        """kind: 'handling', 'idle' (available, nothing to do) or 'off' (offline/not ready)."""
        if kind == self._kind:
            return
        if now > self._since:
            self._intervals.append((self._since, now, self._kind))
        self._kind = kind
        self._since = now
        cutoff = now - self.span
        while self._intervals and self._intervals[0][1] < cutoff:
            self._intervals.popleft()

    def times(self, now: float) -> tuple[float, float]:
        cutoff = now - self.span
        handling = idle = 0.0
        for start, end, kind in (*self._intervals, (self._since, now, self._kind)):
            length = end - max(start, cutoff)
            if length <= 0:
                continue
            if kind == "handling":
                handling += length
            elif kind == "idle":
                idle += length
        return handling, idle

    def occupancy(self, now: float) -> float | None:
        handling, idle = self.times(now)
        total = handling + idle
        return 100.0 * handling / total if total > 0 else None


def position_wait(position: int, aht: float, agents: int) -> float:
    """Expected wait of the task at ``position`` (1 = next) when ``agents`` serve the queue.

    Each agent frees up every AHT seconds on average, so the queue drains at
    agents/AHT per second.
    """
    if agents <= 0:
        return math.inf
    return position * aht / agents
