"""Node leases: a node that stops renewing its lease is taken over by a survivor.

Each node keeps ``node:<id>`` alive in Redis (PX = the lease) and a set ``open:<id>``
of its contacts that have arrived and not ended. A survivor that finds a known node's
lease gone claims the takeover (SET NX, one survivor wins) and ends each of the dead
node's open contacts with a ``ContactEnded`` (reason ``node_lost``): a dead node's
calls lost their media with it (the RTP and the B2BUA legs lived in its process), so
waiting and ringing callers are gone and their records are closed, not re-queued. The
event id is derived from the contact (``<contact>:node_lost``), so if two survivors or
a restart of the same node end the same contact the record gets one end, not two.

Callback requests are the exception: they have no media, so they are handed over, not
ended. A node claims each callback request it takes (``cb:<contact>``, set on
``CallbackRequested``); the survivor that takes a dead node over moves that node's claimed
requests to itself and puts them back in its queues (``on_callbacks``: the callback
keeper's restore, limited to those ids), with their original place. At start-up a node
restores only the kept requests it can claim (``claim_callback``): its own, or unclaimed
ones, never another live node's.

Agents are not stuck reserved: a node's reservations live in its own router, which
died with it (routing is per node, docs/cluster.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from callcenter import events as ev
from callcenter.bus import EventBus

log = logging.getLogger(__name__)

LOST_REASON = "node_lost"
CLAIM_TTL_S = 7 * 24 * 3600  # a callback request's claim outlives any request


def lost_event_id(contact_id: str) -> str:
    return f"{contact_id}:{LOST_REASON}"


class NodeLeases:
    def __init__(
        self, redis: Redis, key: Callable[..., str], node: str, lease_s: float, bus: EventBus,
        is_remote: Callable[[ev.Event], bool],
    ) -> None:  # fmt: skip
        self.redis = redis
        self.is_remote = is_remote
        self.key = key
        self.node = node
        self.lease_ms = int(lease_s * 1000)
        self.bus = bus
        self._task: asyncio.Task[None] | None = None
        self.taken_over: list[str] = []  # nodes this one has taken over (for logs and tests)
        # set by Center: put these callback requests (ids) back in this node's queues
        self.on_callbacks: Callable[[set[str]], Awaitable[object]] | None = None

    def start(self) -> None:
        tracked = (ev.ContactArrived, ev.ContactEnded, ev.CallbackRequested)
        self.bus.subscribe("cluster-open", self._track, tracked)
        self._task = asyncio.create_task(self._run(), name="cluster-leases")

    async def close(self, *, clean: bool) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if clean:  # a stopped node ended its contacts itself: nothing left to take over
            with contextlib.suppress(RedisError, OSError):
                await self.redis.delete(self.key("node", self.node), self.key("open", self.node))
                await self.redis.srem(self.key("nodes"), self.node)

    async def _track(self, event: ev.Event) -> None:
        """Keep this node's set of open contacts (remote events are not ours)."""
        if self.is_remote(event) or lost_event_id(event.contact_id) == event.event_id:
            return
        try:
            if isinstance(event, ev.ContactArrived):
                await self.redis.sadd(self.key("open", self.node), event.contact_id)
            elif isinstance(event, ev.CallbackRequested):
                await self.redis.set(self.key("cb", event.contact_id), self.node, ex=CLAIM_TTL_S)
            else:
                await self.redis.srem(self.key("open", self.node), event.contact_id)
        except (RedisError, OSError) as exc:
            log.warning("cluster: open-contact set not updated for %s: %s", event.contact_id, exc)

    async def take_over_own_past(self) -> int:
        """At start-up: what a previous run of this node id left open is ended now, except
        its callback requests, which the start-up recovery restores (``claim_callback``)."""
        ended, _kept = await self._end_open(self.node)
        return ended

    async def claim_callback(self, contact_id: str) -> bool:
        """May this node restore a kept callback request? Yes if unclaimed or its own."""
        key = self.key("cb", contact_id)
        if await self.redis.set(key, self.node, nx=True, ex=CLAIM_TTL_S):
            return True
        owner = await self.redis.get(key)
        return (owner.decode() if isinstance(owner, bytes) else owner) == self.node

    async def _end_open(self, node: str) -> tuple[int, set[str]]:
        """End ``node``'s open contacts except its claimed callback requests, which become
        this node's (returned; left in place when ``node`` is this node)."""
        ended, handed = 0, set()
        for raw in await self.redis.smembers(self.key("open", node)):
            cid = raw.decode() if isinstance(raw, bytes) else raw
            owner = await self.redis.get(self.key("cb", cid))
            if (owner.decode() if isinstance(owner, bytes) else owner) == node:
                if node != self.node:
                    await self.redis.set(self.key("cb", cid), self.node, ex=CLAIM_TTL_S)
                    await self.redis.smove(self.key("open", node), self.key("open", self.node), cid)
                    handed.add(cid)
                continue
            self.bus.publish(ev.ContactEnded(contact_id=cid, event_id=lost_event_id(cid),
                                             reason=LOST_REASON, ended_by="system"))  # fmt: skip
            await self.redis.srem(self.key("open", node), cid)
            ended += 1
        return ended, handed

    async def _renew(self) -> None:
        await self.redis.set(self.key("node", self.node), "1", px=self.lease_ms)
        await self.redis.sadd(self.key("nodes"), self.node)

    async def sweep(self) -> None:
        """Take over every known node whose lease expired (one survivor per dead node)."""
        for raw in await self.redis.smembers(self.key("nodes")):
            node = raw.decode() if isinstance(raw, bytes) else raw
            if node == self.node or await self.redis.exists(self.key("node", node)):
                continue
            if not await self.redis.set(self.key("takeover", node), self.node, nx=True, px=self.lease_ms):
                continue  # another survivor is on it
            ended, handed = await self._end_open(node)
            await self.redis.srem(self.key("nodes"), node)
            self.taken_over.append(node)
            log.warning("cluster: node %s lost its lease; %d open contact(s) ended as %s, %d callback "
                        "request(s) taken over", node, ended, LOST_REASON, len(handed),
                        extra={"lost_node": node, "ended": ended,
                               "callbacks_taken": len(handed)})  # fmt: skip
            if handed and self.on_callbacks is not None:
                try:
                    await self.on_callbacks(handed)
                except Exception:
                    log.exception("cluster: taken-over callback requests could not be restored")

    async def _run(self) -> None:
        every = self.lease_ms / 3000.0
        while True:
            try:
                await self._renew()
                await self.sweep()
            except (RedisError, OSError) as exc:
                # Redis away: keep trying; the lease is renewed (and this node's open set
                # kept) once it is back. A restarted Redis lost the sets: only contacts
                # arriving afterwards are covered until then.
                log.warning("cluster: lease renewal failed: %s", exc)
            await asyncio.sleep(every)
