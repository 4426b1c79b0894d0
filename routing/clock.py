"""Clocks. The router reads time only through an injected ``Callable[[], float]``."""

from __future__ import annotations


class ManualClock:
    """A clock that moves only when told to: for tests, simulators and benchmarks."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self.now += seconds
        return self.now

    def set(self, when: float) -> float:
        if when < self.now:
            raise ValueError("time does not go backwards")
        self.now = when
        return self.now
