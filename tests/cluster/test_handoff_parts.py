"""The parts of moving a caller between nodes (callcenter/cluster/handoff.py): who is free
elsewhere, the one-time keys in a real Redis (exactly one node owns a contact), and the
router taking a contact in with the wait it has had."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callcenter import events as ev
from callcenter.cluster.elsewhere import AgentsElsewhere
from callcenter.cluster.handoff import HandoffKeys
from routing import ManualClock
from routing.model import DecisionKind
from tests.routing.routing_helpers import make_config, ready_router
from tests.support.services import require_redis


def view(agent_id: str, **over: Any) -> dict[str, Any]:
    base = {"agent_id": agent_id, "state": "available", "softphone": True, "queues": ["sales"],
            "skills": {"sales": 7, "english": 9}, "in_state_s": 10.0}  # fmt: skip
    return base | over


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def nobody_here(_agent: str) -> bool:
    return False


def test_free_agents_elsewhere_longest_idle_first_with_the_skills_and_a_phone() -> None:
    clock = Clock()
    elsewhere = AgentsElsewhere("a", stale_s=2.0, clock=clock)
    elsewhere.heard(ev.NodeAgents(node="b", sip="sip:handoff@127.0.0.3:5060", agents=[
        view("1001", in_state_s=5.0), view("1003", in_state_s=50.0),
        view("1002", softphone=False), view("1004", state="not_ready"),
        view("1005", queues=["support"]), view("1006", skills={"sales": 7, "english": 3})]))  # fmt: skip
    elsewhere.heard(ev.NodeAgents(node="a", sip="sip:x@here", agents=[view("1007")]))  # its own: ignored
    free = elsewhere.free_for("sales", {"english": 5}, nobody_here)
    assert [(f.node, f.agent_id, f.sip) for f in free] == [
        ("b", "1003", "sip:handoff@127.0.0.3:5060"), ("b", "1001", "sip:handoff@127.0.0.3:5060")]
    # An agent signed in here is this node's router's business.
    here = elsewhere.free_for("sales", {"english": 5}, lambda a: a == "1003")
    assert [f.agent_id for f in here] == ["1001"]


def test_state_events_between_heartbeats_and_silent_or_failed_nodes() -> None:
    clock = Clock()
    elsewhere = AgentsElsewhere("a", stale_s=2.0, clock=clock)
    elsewhere.heard(ev.NodeAgents(node="b", sip="sip:h@b", agents=[view("1001"), view("1003")]))
    elsewhere.state_changed("b", "1003", "busy")
    elsewhere.state_changed("c", "1001", "busy")  # not the node she is signed in on: ignored
    elsewhere.state_changed("b", "1002", "available")  # not heard of yet: waits for b's heartbeat
    assert [f.agent_id for f in elsewhere.free_for("sales", {}, nobody_here)] == ["1001"]
    assert elsewhere.anyone_free()
    elsewhere.state_changed("b", "1001", "offline")
    assert elsewhere.free_for("sales", {}, nobody_here) == []
    assert not elsewhere.anyone_free()
    elsewhere.heard(ev.NodeAgents(node="b", sip="sip:h@b", agents=[view("1001")]))
    clock.now += 2.5  # b silent past the lease
    assert elsewhere.free_for("sales", {}, nobody_here) == []
    elsewhere.heard(ev.NodeAgents(node="b", sip="sip:h@b", agents=[view("1001")]))
    elsewhere.drop("b")  # b did not take a caller: not again until heard from again
    assert elsewhere.free_for("sales", {}, nobody_here) == []
    elsewhere.heard(ev.NodeAgents(node="b", sip="sip:h@b", agents=[view("1001")]))
    assert [f.agent_id for f in elsewhere.free_for("sales", {}, nobody_here)] == ["1001"]


Keys = tuple[HandoffKeys, HandoffKeys, Any]


@pytest.fixture
async def keys() -> AsyncIterator[Keys]:
    redis = await require_redis()
    tag = "{hotest-" + uuid.uuid4().hex[:8] + "}"

    def key(*parts: str) -> str:
        return ":".join((tag, *parts))

    try:
        yield HandoffKeys(redis, key, "a"), HandoffKeys(redis, key, "b"), redis
    finally:
        found = [k async for k in redis.scan_iter(match=tag.replace("{", "[{]") + "*")]
        if found:
            await redis.delete(*found)
        await redis.aclose()


async def test_the_node_that_takes_the_key_owns_the_contact(keys: Keys) -> None:
    a, b, redis = keys
    await redis.sadd(a.key("open", "a"), "c1")
    header = await a.put("c1", {"contact_id": "c1", "queue": "sales"})
    forged = header.split(";")[0] + ";key=guessed"
    assert await b.take(forged) is None  # a wrong key takes nothing, and spoils nothing
    assert await b.take("c1") is None
    data = await b.take(header)
    assert data == {"contact_id": "c1", "queue": "sales", "from_node": "a"}
    assert await b.take(header) is None  # once
    assert not await a.take_back("c1")  # b owns it now: a must not record it
    # ...and a lease takeover finds the contact on b, not on a.
    assert await redis.smembers(a.key("open", "b")) == {b"c1"}
    assert await redis.smembers(a.key("open", "a")) == set()


async def test_the_key_taken_back_first_keeps_the_contact_home(keys: Keys) -> None:
    a, b, _redis = keys
    header = await a.put("c2", {"contact_id": "c2"})
    assert await a.take_back("c2")
    assert await b.take(header) is None
    # An agent is claimed by one node at a time.
    assert await a.claim_agent("1003", "c2")
    assert not await b.claim_agent("1003", "c3")
    await b.release_agent("1003", "c3")  # not b's claim: it stays
    assert not await b.claim_agent("1003", "c3")
    await a.release_agent("1003", "c2")  # a's move is over
    assert await b.claim_agent("1003", "c3")


def test_a_contact_handed_over_keeps_its_wait_and_is_not_counted_twice() -> None:
    clock = ManualClock(1000.0)
    config = make_config({"sales": {"max_wait_s": 60, "required_skills": {"sales": 1}}},
                         [{"id": "1003", "name": "Carol", "skills": {"sales": 7}, "capacity": {"voice": 1}}])
    router = ready_router(config, clock)
    router.set_agent_state("1003", "not_ready")
    router.submit("c1", "sales")
    clock.advance(10)
    router.cancel("c1", "handed_off", abandoned=False)  # moved to another node
    stats = router.queue_stats("sales")
    assert (stats.offered, stats.abandoned, stats.waiting) == (1, 0, 0)
    # Taken in from another node: waiting since 50 s ago, not a new arrival.
    (queued,) = router.submit("c2", "sales", waiting_since=clock() - 50)
    assert queued.kind is DecisionKind.QUEUED
    stats = router.queue_stats("sales")
    assert (stats.offered, stats.waiting, stats.longest_wait_s) == (1, 1, 50.0)
    clock.advance(10)  # its maximum wait (60 s) counts from its first queue entry
    assert [d.kind for d in router.tick()] == [DecisionKind.EXITED]
