"""The agents signed in on the other nodes, as each node knows them.

Every node's heartbeat (``NodeAgents``, every third of a lease) carries its signed-in
agents as its board shows them (state, phone, skills, queues served) and its SIP address;
their state events keep that live in between. Two readers: the supervisor boards show an
agent signed in elsewhere as that node sees them (cluster/queue_view.py), and a node with
a caller and no agent of its own free looks here for one to move the caller to
(cluster/handoff.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from callcenter.events import NodeAgents

View = tuple[str, dict[str, Any], float]


@dataclass(frozen=True)
class FreeAgent:
    node: str
    sip: str  # where that node takes handed-over callers
    agent_id: str
    idle_s: float


def serves(view: Mapping[str, Any], queue: str, skills: Mapping[str, int]) -> bool:
    """Whether an agent (as their node's board shows them) could take a voice contact of
    ``queue`` needing ``skills`` now: available, a phone registered, the queue among the
    queues they serve (their node checked the queue's own requirements), the skills met."""
    if view.get("state") != "available" or not view.get("softphone"):
        return False
    if queue not in (view.get("queues") or ()):
        return False
    have = view.get("skills") or {}
    return all(int(have.get(skill, 0)) >= int(level) for skill, level in skills.items())


class AgentsElsewhere:
    """The agents signed in on the other nodes, kept from their heartbeats (``NodeAgents``,
    every third of a lease) and their state events in between; a node silent for a lease
    counts no more."""

    def __init__(self, node: str, stale_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.node = node
        self.stale_s = stale_s
        self.clock = clock
        self._nodes: dict[str, tuple[float, str]] = {}  # node -> (heard at, its handoff SIP URI)
        self._views: dict[str, View] = {}  # agent -> (node, view, in its state since)
        self._skipped: set[str] = set()  # nodes that did not take a caller, until heard again

    def heard(self, event: NodeAgents) -> None:
        if not event.node or event.node == self.node:
            return
        now = self.clock()
        self._nodes[event.node] = (now, event.sip)
        self._skipped.discard(event.node)
        for agent_id in [a for a, (n, _v, _s) in self._views.items() if n == event.node]:
            del self._views[agent_id]
        for view in event.agents:
            since = now - float(view.get("in_state_s") or 0.0)
            self._views[str(view["agent_id"])] = (event.node, dict(view), since)

    def state_changed(self, node: str, agent_id: str, state: str) -> None:
        """An agent's state event from ``node``; an agent not heard of yet waits for the
        node's next heartbeat (it carries their skills and queues)."""
        entry = self._views.get(agent_id)
        if entry is None or entry[0] != node:
            return
        if state == "offline":
            del self._views[agent_id]
            return
        self._views[agent_id] = (node, entry[1] | {"state": state}, self.clock())

    def anyone_free(self) -> bool:
        """Some agent elsewhere is available with a phone (before looking any closer)."""
        return any(v.get("state") == "available" and v.get("softphone") for _n, v, _s in self._views.values())

    def views(self) -> dict[str, View]:
        """Agent → (node, view as that node shows them, in their state since), for the nodes
        heard from within the lease (a dead node's agents are gone with it)."""
        now = self.clock()
        for node in [n for n, (at, _sip) in self._nodes.items() if now - at > self.stale_s]:
            del self._nodes[node]
            self._skipped.discard(node)
        for agent_id in [a for a, (n, _v, _s) in self._views.items() if n not in self._nodes]:
            del self._views[agent_id]
        return self._views

    def drop(self, node: str) -> None:
        """A node that did not take a caller: none of its agents are sent callers until it
        is heard again (the boards still show them)."""
        self._skipped.add(node)

    def free_for(self, queue: str, skills: Mapping[str, int], here: Callable[[str], bool]) -> list[FreeAgent]:
        """Agents elsewhere who could take the contact now, longest idle first; ``here``:
        whether an agent is signed in on this node (then this node's router decides)."""
        now = self.clock()
        free = [
            FreeAgent(node, self._nodes[node][1], agent_id, now - since)
            for agent_id, (node, view, since) in self.views().items()
            if node not in self._skipped and self._nodes[node][1] and not here(agent_id)
            and serves(view, queue, skills)
        ]  # fmt: skip
        return sorted(free, key=lambda f: -f.idle_s)
