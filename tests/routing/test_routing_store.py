"""The RoutingStore Protocol: both stores offer every method of it, as coroutines
(next_deadline, a local read, synchronously), so code written against the Protocol
drives either one. The parity tests (test_routing_redis_parity.py) drive both stores
through it and compare their decisions."""

from __future__ import annotations

import inspect

import pytest
from routing_helpers import make_config, ready_router

from routing import DecisionKind, ManualClock, MemoryStore, Router, RoutingStore
from routing.redis_store import RedisRouter

METHODS = sorted(
    name
    for name, value in vars(RoutingStore).items()
    if inspect.isfunction(value) and not name.startswith("_")
)


@pytest.mark.parametrize("store_class", [MemoryStore, RedisRouter])
def test_every_protocol_method_is_offered_with_the_protocols_kind(store_class: type) -> None:
    assert "submit" in METHODS and "tick" in METHODS
    for name in METHODS:
        declared = inspect.iscoroutinefunction(getattr(RoutingStore, name))
        offered = getattr(store_class, name)
        assert inspect.iscoroutinefunction(offered) == declared, name
        wanted = inspect.signature(getattr(RoutingStore, name)).parameters
        got = inspect.signature(offered).parameters
        # Same parameters in the same order; a store may add optional ones at the end.
        assert list(got)[: len(wanted)] == list(wanted), name
        assert all(p.default is not inspect.Parameter.empty for p in list(got.values())[len(wanted) :]), name
    assert not inspect.iscoroutinefunction(RoutingStore.next_deadline)


async def test_memory_store_is_the_router_behind_an_async_face() -> None:
    clock = ManualClock(1000.0)
    cfg = make_config(
        {"q": {"reservation_timeout_s": 10}},
        [{"id": "a1", "skills": {"billing": 3}, "capacity": {"voice": 1}}],
    )
    router = ready_router(cfg, clock)
    store: RoutingStore = MemoryStore(router)
    assert isinstance(store, RoutingStore)
    (offer,) = await store.submit("t1", "q")
    assert offer.kind is DecisionKind.OFFER and offer.agent_id == "a1"
    assert store.next_deadline() == 1010.0
    (queued,) = await store.submit("t2", "q")
    assert queued.kind is DecisionKind.QUEUED and await store.position("t2") == 1
    # The same state, read through the router's own synchronous API.
    assert isinstance(router, Router) and router.position("t2") == 1
    clock.advance(10)
    kinds = [d.kind for d in await store.tick()]
    assert kinds == [DecisionKind.RONA]
    assert router.agents["a1"].presence == "not_ready" and router.agents["a1"].reason == "rona"
