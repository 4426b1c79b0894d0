"""Timer scheduling for SIP transactions and dialogs.

Every RFC 3261 timer (A..K, plus the RFC 6026 timers L and M) is a single
``call_later`` handle on the event loop: no task per transaction, no polling.
asyncio keeps timers in a heap, so arming and cancelling cost O(log n) and a
cancelled handle is dropped lazily — cheap enough for thousands of live
transactions.

Anything with ``call_later(delay, callback, *args) -> handle`` (``handle.cancel()``)
is a :class:`Scheduler`; the running loop is one. Tests inject
:class:`ManualScheduler` and advance its clock by hand, so timer behaviour is
tested without sleeping.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle: ...

    def time(self) -> float: ...


@dataclass(frozen=True, slots=True)
class SipTimers:
    """RFC 3261 timer base values (section 17.1.1.1 / table 4), in seconds."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def timeout_64t1(self) -> float:
        """Timers B, F, H, J, L, M all last 64*T1."""
        return 64 * self.t1

    def timer_d(self, reliable: bool) -> float:
        return 0.0 if reliable else max(32.0, 64 * self.t1)


class _ManualHandle:
    __slots__ = ("args", "callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback: Callable[..., Any] | None = callback
        self.args: tuple[Any, ...] = args
        self.cancelled = False

    def cancel(self) -> None:
        # Drop the callback so a cancelled handle keeps nothing alive.
        self.cancelled = True
        self.callback = None
        self.args = ()


class ManualScheduler:
    """A deterministic scheduler for tests: time only moves when :meth:`advance` is called."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._heap: list[tuple[float, int, _ManualHandle]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> _ManualHandle:
        handle = _ManualHandle(self._now + max(0.0, delay), callback, args)
        heapq.heappush(self._heap, (handle.when, next(self._seq), handle))
        return handle

    def pending(self) -> int:
        return sum(1 for _, _, h in self._heap if not h.cancelled)

    def advance(self, seconds: float) -> None:
        """Move the clock forward, firing due timers in order (including ones they arm)."""
        target = self._now + seconds
        while self._heap and self._heap[0][0] <= target:
            when, _, handle = heapq.heappop(self._heap)
            if handle.cancelled or handle.callback is None:
                continue
            self._now = max(self._now, when)
            callback, args = handle.callback, handle.args
            handle.cancel()
            callback(*args)
        self._now = target
