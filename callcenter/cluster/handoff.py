"""Moving a waiting caller to the node that has an agent free for them.

Each node routes with its own in-memory router (docs/cluster.md says why), so without
help a caller waits for the agents signed in on the node the edge chose. A node that has
a caller waiting in a queue, and no agent of its own free for them, looks at the agents
the other nodes have free (their heartbeats and live state events: cluster/elsewhere.py)
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
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

log = logging.getLogger(__name__)

HANDOFF_HEADER = "X-Callcenter-Handoff"
KEY_TTL_S = 30  # a key not taken by then is gone (the move failed or was never made)
AGENT_CLAIM_MS = 3000  # the longest one node has a free agent to itself while it moves a caller
# Delete a claim only if it is still this move's (an expired one may be another node's now).
RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


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
