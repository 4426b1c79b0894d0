"""Drives the routing library from the event loop.

``routing.Router`` is a functional core: every call returns the decisions the
caller must act on, and time only moves when we call ``tick``. This driver is
the imperative shell around it: it hands each decision to a handler, keeps ONE
loop timer armed at the router's next deadline (escalation, RONA, max wait,
wrap-up end), and turns refused calls (``RoutingError``) into log lines rather
than crashes — a stale click on a desktop must never take a call down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from routing.model import Decision
from routing.router import Router, RoutingError

log = logging.getLogger(__name__)


class RoutingDriver:
    def __init__(self, router: Router, on_decision: Callable[[Decision], None]) -> None:
        self.router = router
        self._on_decision = on_decision
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None

    def call(self, method: Callable[..., list[Decision]], *args: Any, **kwargs: Any) -> bool:
        """Run one router call and act on its decisions; False if the router refused it."""
        try:
            decisions = method(*args, **kwargs)
        except RoutingError as exc:
            log.info("routing refused %s: %s", getattr(method, "__name__", method), exc)
            self._rearm()
            return False
        self.apply(decisions)
        return True

    def apply(self, decisions: list[Decision]) -> None:
        for decision in decisions:
            try:
                self._on_decision(decision)
            except Exception:
                log.exception("acting on routing decision %s failed", decision.kind)
        self._rearm()

    def _rearm(self) -> None:
        deadline = self.router.next_deadline()
        if deadline == self._armed_for:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed_for = deadline
        if deadline is not None:
            # The router's clock is time.monotonic, as is the default loop's.
            delay = max(0.0, deadline - time.monotonic())
            self._timer = asyncio.get_running_loop().call_later(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._armed_for = None
        self.apply(self.router.tick())

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
