"""One interface over the routing stores: the :class:`RoutingStore` Protocol.

Two stores make the ACD's decisions: the in-memory :class:`routing.router.Router`
(one process, synchronous) and :class:`routing.redis_store.RedisRouter` (several
processes sharing Redis, asynchronous). Code that must work with either — the
parity and property tests, the benchmarks, a multi-node server configured with
``routing.backend: redis`` — is written against :class:`RoutingStore`, whose
methods are coroutines returning the same :class:`Decision` lists.

``RedisRouter`` satisfies the Protocol as it is. The in-memory router gets an
async face through :class:`MemoryStore`, a thin adapter, rather than async methods
on ``Router`` itself, because the server's core (``callcenter/routing_driver.py``)
calls ``Router`` synchronously and its ordering guarantees rest on that: a call
reads and changes the router's state and returns its decisions with no await in
between, so no other event can interleave. Coroutine methods on ``Router`` would
make every caller await and open those interleaving points; async twins beside the
sync methods would double the surface of one class. The adapter keeps ``Router``
unchanged and costs one coroutine frame per call (``bench/routing.py`` runs the
in-memory router through it too, next to the direct run).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from routing.config import AgentConfig, Queue, RoutingConfig
from routing.model import Decision
from routing.router import Router


@runtime_checkable
class RoutingStore(Protocol):
    """What every routing store offers: the router's events in, decisions out.

    Methods raise :class:`routing.router.RoutingError` for a call that cannot apply
    (unknown id, wrong phase), leaving the state unchanged.
    """

    config: RoutingConfig
    queues: dict[str, Queue]

    async def add_agent(self, agent: AgentConfig | Mapping[str, Any]) -> list[Decision]: ...

    async def remove_agent(self, agent_id: str) -> list[Decision]: ...

    async def login(self, agent_id: str, *, ready: bool = False) -> list[Decision]: ...

    async def logout(self, agent_id: str) -> list[Decision]: ...

    async def set_agent_state(self, agent_id: str, state: str, reason: str = "") -> list[Decision]: ...

    async def set_softphone(self, agent_id: str, registered: bool) -> list[Decision]: ...

    async def submit(
        self,
        task_id: str,
        queue: str,
        channel: str = "voice",
        *,
        required: Mapping[str, int] | None = None,
        preferred: Mapping[str, int] | None = None,
        priority: int = 0,
        attributes: Mapping[str, Any] | None = None,
        preferred_agent: str | None = None,
        created: float | None = None,
    ) -> list[Decision]: ...

    async def accept(self, reservation_id: str) -> list[Decision]: ...

    async def reject(self, reservation_id: str, reason: str = "rejected") -> list[Decision]: ...

    async def timeout(self, reservation_id: str) -> list[Decision]: ...

    async def cancel(self, task_id: str, reason: str = "abandoned") -> list[Decision]: ...

    async def complete(self, task_id: str) -> list[Decision]: ...

    async def end_wrap_up(self, task_id: str) -> list[Decision]: ...

    def next_deadline(self) -> float | None:
        """When to call :meth:`tick` next (None: no timer of this store pending).
        Synchronous in every store: it only reads local timers."""
        ...

    async def tick(self) -> list[Decision]: ...

    async def position(self, task_id: str) -> int | None:
        """1-based place of a waiting task in its queue (None unless waiting)."""
        ...


class MemoryStore:
    """The in-memory :class:`Router` as a :class:`RoutingStore` (see the module
    docstring for why an adapter). ``router`` stays usable synchronously."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.config = router.config
        self.queues = router.queues

    async def add_agent(self, agent: AgentConfig | Mapping[str, Any]) -> list[Decision]:
        return self.router.add_agent(agent)

    async def remove_agent(self, agent_id: str) -> list[Decision]:
        return self.router.remove_agent(agent_id)

    async def login(self, agent_id: str, *, ready: bool = False) -> list[Decision]:
        return self.router.login(agent_id, ready=ready)

    async def logout(self, agent_id: str) -> list[Decision]:
        return self.router.logout(agent_id)

    async def set_agent_state(self, agent_id: str, state: str, reason: str = "") -> list[Decision]:
        return self.router.set_agent_state(agent_id, state, reason)

    async def set_softphone(self, agent_id: str, registered: bool) -> list[Decision]:
        return self.router.set_softphone(agent_id, registered)

    async def submit(
        self,
        task_id: str,
        queue: str,
        channel: str = "voice",
        *,
        required: Mapping[str, int] | None = None,
        preferred: Mapping[str, int] | None = None,
        priority: int = 0,
        attributes: Mapping[str, Any] | None = None,
        preferred_agent: str | None = None,
        created: float | None = None,
    ) -> list[Decision]:
        return self.router.submit(
            task_id,
            queue,
            channel,
            required=required,
            preferred=preferred,
            priority=priority,
            attributes=attributes,
            preferred_agent=preferred_agent,
            created=created,
        )

    async def accept(self, reservation_id: str) -> list[Decision]:
        return self.router.accept(reservation_id)

    async def reject(self, reservation_id: str, reason: str = "rejected") -> list[Decision]:
        return self.router.reject(reservation_id, reason)

    async def timeout(self, reservation_id: str) -> list[Decision]:
        return self.router.timeout(reservation_id)

    async def cancel(self, task_id: str, reason: str = "abandoned") -> list[Decision]:
        return self.router.cancel(task_id, reason)

    async def complete(self, task_id: str) -> list[Decision]:
        return self.router.complete(task_id)

    async def end_wrap_up(self, task_id: str) -> list[Decision]:
        return self.router.end_wrap_up(task_id)

    def next_deadline(self) -> float | None:
        return self.router.next_deadline()

    async def tick(self) -> list[Decision]:
        return self.router.tick()

    async def position(self, task_id: str) -> int | None:
        return self.router.position(task_id)
