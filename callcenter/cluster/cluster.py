"""``Cluster``: what a node of a multi-node deployment runs besides the single-node server.

Built by ``Center`` when ``cluster.enabled`` is true in server.yaml (docs/cluster.md):
one Redis client for the event bridge, the node leases and the shared SIP bindings, and
a background check of Redis and PostgreSQL for /healthz and the SIP OPTIONS answer that
Kamailio's dispatcher probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.bus import EventBus
from callcenter.cluster.bridge import EventBridge
from callcenter.cluster.elsewhere import AgentsElsewhere
from callcenter.cluster.handoff import HandoffKeys
from callcenter.cluster.leases import NodeLeases
from callcenter.cluster.queue_view import ClusterQueues, Figures
from callcenter.cluster.reach import Reachability
from callcenter.config import ClusterCfg
from callcenter.events import AgentDeviceChanged, AgentStateChanged, Event, NodeAgents, QueueFigures

log = logging.getLogger(__name__)


class Cluster:
    def __init__(self, cfg: ClusterCfg, node: str, bus: EventBus) -> None:
        self.cfg = cfg
        self.node = node
        # Every key shares one hash tag: on Redis Cluster they sit in one slot, so the
        # multi-key commands (and routing's Lua scripts) are allowed.
        self.tag = "{" + cfg.prefix + "}"
        self.redis = Redis.from_url(cfg.redis_url, socket_timeout=2.0, socket_connect_timeout=1.0,
                                    health_check_interval=5)  # fmt: skip
        self.bridge = EventBridge(self.redis, self.key("events"), node, bus)
        self.bus = bus
        self.leases = NodeLeases(self.redis, self.key, node, cfg.lease_s, bus, self.bridge.remote)
        self.reach: Reachability | None = None
        self.queues: ClusterQueues | None = None  # every node's queue figures (follow_queues)
        self._signed_in: Callable[[], Figures] = list
        self.agents_changed: Callable[[], None] | None = None  # told after news of another node's agents
        self.sip = ""  # where other nodes send the callers they hand over (set once SIP listens)
        self._heartbeat: asyncio.Task[None] | None = None

    def key(self, *parts: str) -> str:
        return ":".join((self.tag, *parts))

    def remote(self, event: Event) -> bool:
        return self.bridge.remote(event)

    async def start(self, engine: AsyncEngine | None) -> None:
        self.reach = Reachability(self.redis, engine, self.cfg.probe_s)
        await self.reach.check()
        self.reach.start()
        self.bridge.start()
        self.leases.start()
        self._heartbeat = asyncio.create_task(self._publish_queues(), name="cluster-queue-figures")
        if self.reach.redis_ok:
            ended = await self.leases.take_over_own_past()
            if ended:
                log.warning("cluster: %d contact(s) left open by this node's previous run ended", ended)
        log.info("cluster node %s joined (redis %s)", self.node, self.cfg.redis_url,
                 extra={"redis": self.reach.redis_ok, "postgres": self.reach.postgres_ok})  # fmt: skip

    def follow_devices(self, set_reachable: Callable[[str, bool], None]) -> None:
        """A phone registered through another node (the edge hashes REGISTERs over the nodes):
        this node's router learns it too, so an agent signed in here is offered calls. The
        change announced here again is not announced back (it is no change there)."""

        def on_device(event: Event) -> None:
            if isinstance(event, AgentDeviceChanged) and self.remote(event):
                set_reachable(event.agent_id, event.softphone)

        self.bus.subscribe("cluster-devices", on_device, (AgentDeviceChanged,))

    def follow_queues(self, local: Callable[[], Figures], signed_in: Callable[[], Figures]
                      ) -> Callable[[QueueFigures], Figures]:  # fmt: skip
        """Keep every node's queue figures and signed-in agents (``local``: this node's
        figures, ``signed_in``: its signed-in agents' views); returns what the desk feed sends
        supervisors for a ``QueueFigures`` from any node (the cluster's sum). This node
        republishes both every third of a lease, so the others can tell a quiet node from a
        dead one."""
        queues = self.queues = ClusterQueues(self.node, local, stale_s=self.cfg.lease_s)
        self._signed_in = signed_in

        def on_agents(event: Event) -> None:
            if isinstance(event, NodeAgents):
                queues.heard(event)
            elif isinstance(event, AgentStateChanged) and (node := self.bridge.origin(event)):
                queues.elsewhere.state_changed(node, event.agent_id, event.new)
            else:
                return  # an agent of this node: its router knows
            if self.agents_changed is not None:
                self.agents_changed()

        self.bus.subscribe("cluster-agents", on_agents, (NodeAgents, AgentStateChanged))
        return queues.on_figures

    async def _publish_queues(self) -> None:
        every = self.cfg.lease_s / 3
        while True:
            await asyncio.sleep(every)
            if self.queues is not None:
                self.bus.publish(QueueFigures(queues=self.queues.local(), node=self.node))
                self.bus.publish(NodeAgents(node=self.node, agents=self._signed_in(), sip=self.sip))

    def handoff(self) -> tuple[AgentsElsewhere, HandoffKeys]:
        """What moving callers between nodes needs (cluster/handoff.py): the agents the
        boards know on the other nodes (after ``follow_queues``), and the keys."""
        assert self.queues is not None, "follow_queues first"
        return self.queues.elsewhere, HandoffKeys(self.redis, self.key, self.node)

    def healthy(self) -> bool:
        return self.reach is not None and self.reach.ok

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {"node": self.node, "events": dict(self.bridge.stats)}
        if self.queues is not None:  # the other nodes whose queue figures the board counts
            out["queue_figures_from"] = self.queues.nodes()
        if self.reach is not None:
            out.update(self.reach.as_dict())
        return out

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        await self.leases.close(clean=True)
        await self.bridge.close()
        if self.reach is not None:
            await self.reach.close()
        await self.redis.aclose()
