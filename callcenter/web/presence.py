"""Desk presence: an agent counts as at their desk while a desk WebSocket of theirs is open.

Closing the browser (or losing the network) must not leave an agent Available for hours:
when an agent's last desk connection goes away, a grace period starts; a desk that
reconnects within it (a reload, a short network drop) changes nothing, otherwise ``on_gone``
is called (the center sets an Available agent Not ready, reason ``disconnected``). Half-open
connections are found by the WebSocket heartbeat (uvicorn's ping/pong, ``desk.heartbeat_s``),
which closes them like any other disconnect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class DeskPresence:
    def __init__(self, grace_s: float | None, on_gone: Callable[[str], None]) -> None:
        self.grace_s = grace_s  # None: never act on a missing desk
        self._on_gone = on_gone
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def desks_changed(self, agent_id: str, open_desks: int) -> None:
        """The hub's count of the agent's open desk connections changed."""
        if open_desks:
            timer = self._timers.pop(agent_id, None)
            if timer is not None:
                timer.cancel()
                log.info("agent %s's desk is back within the grace period", agent_id,
                         extra={"agent": agent_id})  # fmt: skip
        elif self.grace_s is not None and agent_id not in self._timers:
            self._timers[agent_id] = asyncio.get_running_loop().call_later(self.grace_s, self._gone, agent_id)

    def _gone(self, agent_id: str) -> None:
        del self._timers[agent_id]
        log.info("agent %s has had no desk for %.0f s", agent_id, self.grace_s, extra={"agent": agent_id})
        self._on_gone(agent_id)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
