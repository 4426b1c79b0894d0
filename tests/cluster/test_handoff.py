"""A caller queued on node a is answered by an agent whose desk and phone are on node b
(callcenter/cluster/handoff.py), with Kamailio in front and the real components: a
SIP caller through the edge, Carol's baresip registered through the edge, her desk on
node b, one Redis and one PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from callcenter.events import NodeAgents
from crm_bridge.schema import interaction_events, interactions
from tests.cluster.rig import Deployment, start_kamailio
from tests.cluster.test_nodes import SALES, _calls_in, _rows, _today_sales
from tests.support import eventually
from tests.support.peers import Baresip, Caller, Desktop
from tests.support.ports import free_udp_port


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    dep = Deployment(tmp_path)
    await dep.setup()
    try:
        yield dep
    finally:
        await dep.teardown()


def _line(dep: Deployment, node: str, text: str) -> dict[str, Any] | None:
    return next((ln for ln in dep.nodes[node].lines if text in str(ln.get("msg", ""))), None)


async def test_caller_queued_on_a_is_answered_by_an_agent_on_b(deployment: Deployment,
                                                                 tmp_path: Path) -> None:  # fmt: skip
    dep = deployment
    await dep.start_node("a", "127.0.0.2")
    b = await dep.start_node("b", "127.0.0.3")
    kam = await start_kamailio(tmp_path, [dep.addrs["a"], dep.addrs["b"]])
    phone = Baresip(tmp_path / "baresip", "1003", "demo-1003", kam.sip)
    caller = Caller()
    carol = Desktop(b.http, "1003", "demo-1003")
    boss = Desktop(dep.nodes["a"].http, "supervisor", "demo-supervisor")
    try:
        await phone.start()
        await carol.login()  # signed in on b, not ready yet: no call may reach her before it queues on a
        await boss.login()
        await caller.start()
        # Round robin: place calls until one arrives on node a.
        for _attempt in range(3):
            before = (await _calls_in(dep))["a"]
            call = await caller.call("5000", kam.sip, ani="+441632960002")
            if (await _calls_in(dep))["a"] > before:
                break
            await call.hangup()
        else:
            raise AssertionError("no call of three reached node a")
        call.media.send_dtmf(SALES)

        async def queued_on_a() -> bool:
            snap = (await boss.get("/api/supervisor/snapshot")).json()
            return any(q["queue"] == "sales" and q["waiting"] == 1 for q in snap["queues"])

        await eventually(queued_on_a, 30, interval=0.1, what="the caller waiting in sales on node a")

        # A node that says it has an agent free but does not answer (its SIP port is closed):
        # node a tries it, gets no answer, and keeps the caller waiting in its queue.
        ghost = NodeAgents(node="ghost", sip=f"sip:handoff@127.0.0.1:{free_udp_port()}", agents=[
            {"agent_id": "1001", "state": "available", "softphone": True, "queues": ["sales"],
             "skills": {"sales": 10, "english": 10}, "in_state_s": 60.0}])  # fmt: skip
        heartbeat = json.dumps({"node": "ghost", "event": ghost.as_dict()})
        await dep.redis.publish(f"{{{dep.prefix}}}:events", heartbeat)
        tried = await eventually(lambda: _line(dep, "a", "did not take it"), 30, interval=0.1,
                                 what="a's try at ghost")  # fmt: skip
        assert tried["to_node"] == "ghost"
        assert await queued_on_a()

        # Carol becomes available on b: node a moves its caller to b, whose router offers her the
        # call; b rings her phone through the edge and the desk on b gets the screen-pop.
        assert (await carol.post("/api/agent/state", {"state": "available"})).status_code == 200
        offer = await carol.wait(lambda m: m.get("type") == "offer", 30)
        connected = await carol.wait(lambda m: m.get("type") == "connected", 30)
        cid = connected["contact_id"]
        assert offer["interaction_id"] == cid
        assert offer["contact"]["ani"] == "+441632960002" and offer["contact"]["queue"] == "sales"
        assert offer["ivr"]["path"], offer["ivr"]  # what the caller did on node a came along
        moved = _line(dep, "a", "moved to node b")
        taken = _line(dep, "b", "taken over from node a")
        assert moved is not None and moved["contact_id"] == cid
        assert taken is not None and taken["contact_id"] == cid

        await call.hangup()
        await carol.wait(lambda m: m.get("type") == "wrapup", 30)

        # One record for the call, built once: arrived on a, handed to b, ended on b.
        async def record() -> list[Any] | None:
            got = await _rows(dep.db_url, select(interactions.c.id, interactions.c.status,
                                                 interactions.c.agent_id, interactions.c.queue)
                              .where(interactions.c.id == cid))  # fmt: skip
            return got if got and got[0].status == "ended" else None

        (rec,) = await eventually(record, 30, interval=0.2, what="the record ended")
        assert (rec.agent_id, rec.queue) == ("1003", "sales")
        counts = dict(await _rows(dep.db_url, select(interaction_events.c.type, func.count())
                                  .where(interaction_events.c.contact_id == cid)
                                  .group_by(interaction_events.c.type)))  # fmt: skip
        assert counts["ContactArrived"] == 1 and counts["ContactEnded"] == 1
        assert counts["ContactHandedOff"] == 1 and counts["ContactConnected"] == 1
        assert counts["ContactQueued"] == 1  # queued once: the wait went on across the move

        # The boards count the call once: offered once, answered once.
        today = await eventually(lambda: (s := _today_sales(boss)) and s.get("answered") == 1 and s,
                                 30, interval=0.1, what="a's board counting the answer")  # fmt: skip
        assert today["offered"] == 1
    finally:
        await carol.close()
        await boss.close()
        await caller.stop()
        await phone.stop()
        await kam.stop()
