"""Moving a waiting caller to the node that has an agent free for them.

Each node routes with its own in-memory router (docs/cluster.md says why), so without
help a caller waits for the agents signed in on the node the edge chose. A node that has
a caller waiting in a queue, and no agent of its own free for them, looks at the agents
the other nodes have free (their heartbeats and live state events: :class:`AgentsElsewhere`)
and, when one serves the queue with the caller's skills, moves the caller there: it
stores what the contact is so far (customer, IVR path and data, queue, priority,
skills, when it queued) under a one-time key in Redis, and places a SIP call to that node
with the key in ``X-Callcenter-Handoff``; the other node takes the key, answers, and
queues the contact with the wait it has had. The first node bridges the caller to that
call, as a B2BUA does for any transfer. This is what the large ACDs call a translation
route (the call moves between sites with its data re-attached by a token).

Ownership of the record moves with the key: whichever node deletes it owns the contact.
The other node deletes it when it takes the call; the first node deletes it when its call
fails or the caller hangs up meanwhile. If the first node deletes it, the contact stays
there (back in routing with its place); otherwise the other node records what follows,
the abandon included. One contact, one record, whatever happens in between.

Two nodes may aim at the same free agent: the agent is claimed in Redis for a moment
(SET NX), so only one caller is sent for them. A caller moved is not moved again.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from callcenter.events import NodeAgents

log = logging.getLogger(__name__)

HANDOFF_HEADER = "X-Callcenter-Handoff"
KEY_TTL_S = 30  # a key not taken by then is gone (the move failed or was never made)
AGENT_CLAIM_MS = 3000  # the longest one node has a free agent to itself while it moves a caller
# Delete a claim only if it is still this move's (an expired one may be another node's now).
RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


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
        self._views: dict[str, tuple[str, dict[str, Any], float]] = {}  # agent -> (node, view, since)

    def heard(self, event: NodeAgents) -> None:
        if not event.node or event.node == self.node:
            return
        now = self.clock()
        self._nodes[event.node] = (now, event.sip)
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

    def drop(self, node: str) -> None:
        """A node that did not take a caller: none of its agents count until it is heard again."""
        self._nodes.pop(node, None)

    def free_for(self, queue: str, skills: Mapping[str, int], here: Callable[[str], bool]) -> list[FreeAgent]:
        """Agents elsewhere who could take the contact now, longest idle first; ``here``:
        whether an agent is signed in on this node (then this node's router decides)."""
        now = self.clock()
        for node in [n for n, (at, _sip) in self._nodes.items() if now - at > self.stale_s]:
            del self._nodes[node]
        free = [
            FreeAgent(node, self._nodes[node][1], agent_id, now - since)
            for agent_id, (node, view, since) in self._views.items()
            if node in self._nodes and self._nodes[node][1] and not here(agent_id)
            and serves(view, queue, skills)
        ]  # fmt: skip
        return sorted(free, key=lambda f: -f.idle_s)


class HandoffKeys:
    """The one-time keys in Redis that carry a contact from one node to another."""

    def __init__(self, redis: Redis, key: Callable[..., str], node: str) -> None:
        self.redis = redis
        self.key = key
        self.node = node

    async def claim_agent(self, agent_id: str, contact_id: str) -> bool:
        return bool(await self.redis.set(self.key("handoff-agent", agent_id), contact_id,
                                          nx=True, px=AGENT_CLAIM_MS))  # fmt: skip

    async def release_agent(self, agent_id: str, contact_id: str) -> None:
        """The move is over (the agent's own node has them now, or the move failed): other
        nodes may send them callers again as soon as their state says they are free."""
        await self.redis.eval(RELEASE, 1, self.key("handoff-agent", agent_id), contact_id)

    async def put(self, contact_id: str, data: dict[str, Any]) -> str:
        """Store the contact; returns the header value that lets the other node take it."""
        secret = secrets.token_urlsafe(18)
        value = json.dumps(data | {"secret": secret, "from_node": self.node}, default=str)
        await self.redis.set(self.key("handoff", contact_id), value, ex=KEY_TTL_S)
        return f"{contact_id};key={secret}"

    async def take(self, header: str) -> dict[str, Any] | None:
        """The contact a handoff header names, now this node's; None when the header is
        wrong, or the key expired or was taken back."""
        contact_id, _, rest = header.strip().partition(";")
        secret = rest.strip().removeprefix("key=")
        if not contact_id or not secret:
            return None
        key = self.key("handoff", contact_id)
        raw = await self.redis.get(key)
        if raw is None:
            return None
        data: dict[str, Any] = json.loads(raw)
        if not secrets.compare_digest(str(data.get("secret", "")), secret):
            return None
        if await self.redis.delete(key) != 1:
            return None  # taken back by the node that put it, a moment ago
        data.pop("secret", None)
        await self.redis.smove(self.key("open", str(data["from_node"])), self.key("open", self.node),
                               contact_id)  # a lease takeover of either node finds it where it is now
        return data

    async def take_back(self, contact_id: str) -> bool:
        """True when the key was still there: the contact stays with this node."""
        return await self.redis.delete(self.key("handoff", contact_id)) == 1
