"""A caller queued on node a is answered by an agent whose desk and phone are on node b
(callcenter/cluster/handoff.py), with Kamailio in front and the real components: a
SIP caller through the edge, Carol's baresip registered through the edge, her desk on
node b, one Redis and one PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from callcenter.events import NodeAgents
from crm_bridge.schema import interaction_events, interactions
from tests.cluster.rig import Deployment, Kamailio, health, kill, start_kamailio
from tests.cluster.test_nodes import SALES, _calls_in, _rows, _today_sales
from tests.support import eventually
from tests.support.peers import Baresip, Caller, Desktop
from tests.support.ports import free_udp_port

MEDIA_TIMEOUT_S = 2.0  # a node whose peer node died hangs up this soon


def _line(dep: Deployment, node: str, text: str) -> dict[str, Any] | None:
    return next((ln for ln in dep.nodes[node].lines if text in str(ln.get("msg", ""))), None)


@dataclass
class Scene:
    """Nodes a and b behind Kamailio; Carol's phone through the edge, her desk on b (signed
    in, not ready); a supervisor on a; a caller on node a waiting in sales."""

    dep: Deployment
    kam: Kamailio
    phone: Baresip
    caller: Caller
    carol: Desktop
    boss: Desktop
    call: Any = None

    async def queued_on_a(self) -> bool:
        snap = (await self.boss.get("/api/supervisor/snapshot")).json()
        return any(q["queue"] == "sales" and q["waiting"] == 1 for q in snap["queues"])

    async def close(self) -> None:
        for desk in (self.carol, self.boss):
            await desk.close()
        await self.caller.stop()
        await self.phone.stop()
        await self.kam.stop()


@pytest.fixture
async def scene(deployment: Deployment, tmp_path: Path) -> AsyncIterator[Scene]:
    dep = deployment
    await dep.start_node("a", "127.0.0.2", media_timeout_s=MEDIA_TIMEOUT_S)
    b = await dep.start_node("b", "127.0.0.3", media_timeout_s=MEDIA_TIMEOUT_S)
    kam = await start_kamailio(tmp_path, [dep.addrs["a"], dep.addrs["b"]])
    boss = Desktop(dep.nodes["a"].http, "supervisor", "demo-supervisor")
    sc = Scene(dep, kam, Baresip(tmp_path / "baresip", "1003", "demo-1003", kam.sip), Caller(),
               Desktop(b.http, "1003", "demo-1003"), boss)  # fmt: skip
    try:
        await sc.phone.start()
        await sc.carol.login()  # not ready yet: no call may reach her before it queues on a
        await sc.boss.login()
        await sc.caller.start()
        for _attempt in range(3):  # round robin: place calls until one arrives on node a
            before = (await _calls_in(dep))["a"]
            sc.call = await sc.caller.call("5000", kam.sip, ani="+441632960002")
            if (await _calls_in(dep))["a"] > before:
                break
            await sc.call.hangup()
        else:
            raise AssertionError("no call of three reached node a")
        sc.call.media.send_dtmf(SALES)
        await eventually(sc.queued_on_a, 30, interval=0.1, what="the caller waiting in sales on node a")
        yield sc
    finally:
        await sc.close()


async def _carol_takes_it(sc: Scene) -> str:
    """Carol becomes available on b: node a moves its caller to b, whose router offers her the
    call; b rings her phone through the edge and her desk on b gets the screen-pop."""
    assert (await sc.carol.post("/api/agent/state", {"state": "available"})).status_code == 200
    offer = await sc.carol.wait(lambda m: m.get("type") == "offer", 30)
    connected = await sc.carol.wait(lambda m: m.get("type") == "connected", 30)
    cid: str = connected["contact_id"]
    assert offer["interaction_id"] == cid
    assert offer["contact"]["ani"] == "+441632960002" and offer["contact"]["queue"] == "sales"
    assert offer["ivr"]["path"], offer["ivr"]  # what the caller did on node a came along
    moved = _line(sc.dep, "a", "moved to node b")
    taken = _line(sc.dep, "b", "taken over from node a")
    assert moved is not None and moved["contact_id"] == cid
    assert taken is not None and taken["contact_id"] == cid
    assert (await health(sc.dep.nodes["b"]))[1]["cluster"]["handoffs"]["in"] == 1
    return cid


async def _event_counts(dep: Deployment, cid: str) -> dict[str, int]:
    return dict(await _rows(dep.db_url, select(interaction_events.c.type, func.count())
                            .where(interaction_events.c.contact_id == cid)
                            .group_by(interaction_events.c.type)))  # fmt: skip


async def _ended(dep: Deployment, cid: str) -> Any:
    async def record() -> list[Any] | None:
        got = await _rows(dep.db_url, select(interactions.c.status, interactions.c.agent_id,
                                             interactions.c.queue, interactions.c.end_reason)
                          .where(interactions.c.id == cid))  # fmt: skip
        return got if got and got[0].status == "ended" else None

    (rec,) = await eventually(record, 30, interval=0.2, what="the record ended")
    return rec


async def test_caller_queued_on_a_is_answered_by_an_agent_on_b(scene: Scene) -> None:
    sc, dep = scene, scene.dep
    # A node that says it has an agent free but does not answer its SIP port: node a tries
    # it, gets no answer, and keeps the caller waiting in its queue.
    ghost = NodeAgents(node="ghost", sip=f"sip:handoff@127.0.0.1:{free_udp_port()}", agents=[
        {"agent_id": "1001", "state": "available", "softphone": True, "queues": ["sales"],
         "skills": {"sales": 10, "english": 10}, "in_state_s": 60.0}])  # fmt: skip
    heartbeat = json.dumps({"node": "ghost", "event": ghost.as_dict()})
    await dep.redis.publish(f"{{{dep.prefix}}}:events", heartbeat)
    tried = await eventually(lambda: _line(dep, "a", "did not take it"), 30, interval=0.1,
                             what="a's try at ghost")  # fmt: skip
    assert tried["to_node"] == "ghost"
    assert await sc.queued_on_a()
    assert (await health(dep.nodes["a"]))[1]["cluster"]["handoffs"] == {"out": 0, "in": 0, "failed": 1}

    cid = await _carol_takes_it(sc)
    await sc.call.hangup()
    await sc.carol.wait(lambda m: m.get("type") == "wrapup", 30)

    # One record for the call, built once: arrived on a, handed to b, ended on b.
    rec = await _ended(dep, cid)
    assert (rec.agent_id, rec.queue) == ("1003", "sales")
    counts = await _event_counts(dep, cid)
    assert counts["ContactArrived"] == 1 and counts["ContactEnded"] == 1
    assert counts["ContactHandedOff"] == 1 and counts["ContactConnected"] == 1
    assert counts["ContactQueued"] == 1  # queued once: the wait went on across the move

    # The boards count the call once: offered once, answered once.
    today = await eventually(lambda: (s := _today_sales(sc.boss)) and s.get("answered") == 1 and s,
                             30, interval=0.1, what="a's board counting the answer")  # fmt: skip
    assert today["offered"] == 1

    # A caller from outside cannot pose as a node moving a caller: the edge removes the
    # header (a node would refuse a key it does not know with 403), so this is an ordinary call.
    forged = await sc.caller.call("5000", sc.kam.sip, headers=[("X-Callcenter-Handoff", f"{cid};key=guess")])
    assert forged.is_active
    await forged.hangup()


async def test_the_agents_node_dies_during_a_moved_call(scene: Scene) -> None:
    """kill -9 of node b while Carol talks to the caller it took over: the contact was b's
    (its open set), so node a closes its record as node_lost after the lease, once; node a,
    still bridging the caller, hangs up when b's media stops."""
    sc, dep = scene, scene.dep
    cid = await _carol_takes_it(sc)
    kill(dep.nodes["b"])
    rec = await _ended(dep, cid)
    assert rec.end_reason == "node_lost"
    await eventually(lambda: not sc.call.is_active, 30, interval=0.1, what="node a hanging up the caller")
    # b's own events of the call may have died with it, unwritten (they are written in
    # batches); the record is there and ends once.
    assert (await _event_counts(dep, cid))["ContactEnded"] == 1


async def test_the_callers_node_dies_during_a_moved_call(scene: Scene) -> None:
    """kill -9 of node a, which still bridges the caller it moved to b: b's call loses its
    media, b ends it after the media timeout and closes the record once (a's lease
    takeover does not: the contact had left a's open set)."""
    sc, dep = scene, scene.dep
    cid = await _carol_takes_it(sc)
    kill(dep.nodes["a"])
    await sc.carol.wait(lambda m: m.get("type") == "wrapup" and m.get("contact_id") == cid, 30)
    rec = await _ended(dep, cid)
    assert (rec.agent_id, rec.end_reason) == ("1003", "media_timeout")
    await eventually(lambda: _line(dep, "b", "lost its lease"), 30, interval=0.1, what="b taking a over")
    assert (await _event_counts(dep, cid))["ContactEnded"] == 1
