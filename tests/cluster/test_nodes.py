"""Two ``callcenter serve`` nodes (127.0.0.2, 127.0.0.3) behind Kamailio (127.0.0.1, the
shipped deploy/kamailio/kamailio.cfg), sharing Redis and one PostgreSQL database.

Real components only: Kamailio's dispatcher spreads SIPp's and our test phone's calls
over the nodes, supervisors connected to different nodes see the same day's figures
(events bridged over Redis), a node killed with a caller queued is taken over by the
survivor after its lease (the record closed once, as ``node_lost``), new calls fail over
to the survivor, and a Redis restart is survived."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from crm_bridge.schema import interaction_events, interactions
from tests.cluster.rig import (
    Deployment,
    Kamailio,
    health,
    kill,
    metric,
    options_ok,
    run,
    sipp_calls,
    start_kamailio,
)
from tests.support import eventually, require_tool
from tests.support.peers import Baresip, Caller, Desktop

SALES = "3"  # the main menu's key for the sales queue (ivr_flows/main.yaml)


async def _rows(url: str, query: Any) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(query)).all())
    finally:
        await engine.dispose()


async def _calls_in(dep: Deployment) -> dict[str, float]:
    out = {}
    for name, served in dep.nodes.items():
        if served.proc.returncode is None:
            samples = await metric(served, "callcenter_sip_ua_calls_in_total")
            out[name] = samples[f'{{node="{name}"}}']
    return out


def _waiting(queues: list[dict[str, Any]]) -> int:
    return next(int(q["waiting"]) for q in queues if q["queue"] == "sales")


def _today_sales(desk: Desktop) -> dict[str, Any] | None:
    today = [m for m in desk.messages if m.get("type") == "today"]
    return today[-1]["queues"].get("sales") if today else None


async def test_two_nodes_behind_kamailio(deployment: Deployment, tmp_path: Path) -> None:
    require_tool("sipp", "sip-tester")
    dep = deployment
    a = await dep.start_node("a", "127.0.0.2")
    b = await dep.start_node("b", "127.0.0.3")
    kam: Kamailio = await start_kamailio(tmp_path, [dep.addrs["a"], dep.addrs["b"]])
    caller = Caller()
    desks = [Desktop(n.http, "supervisor", "demo-supervisor") for n in (a, b)]
    carol = Desktop(b.http, "1003", "demo-1003")
    try:
        # Ops: the node id on every log line and metric; /healthz says Redis and PostgreSQL are reachable.
        for name, served in (("a", a), ("b", b)):
            status, body = await health(served)
            assert status == 200 and body["cluster"]["node"] == name
            assert body["cluster"]["redis"] is True and body["cluster"]["postgres"] is True
            assert served.lines and all(line.get("node") == name for line in served.lines)
            assert await options_ok(dep.addrs[name])  # what Kamailio's dispatcher probe asks

        for desk in desks:
            await desk.login()
        await caller.start()

        # Two callers through the edge: round robin puts one on each node; both queue for sales.
        calls = [await caller.call("5000", kam.sip) for _ in range(2)]
        assert await _calls_in(dep) == {"a": 1.0, "b": 1.0}
        for call in calls:
            call.media.send_dtmf(SALES)

        # Supervisors on either node count both callers: the other node's events came over Redis.
        def both_offered() -> bool:
            return all((_today_sales(d) or {}).get("offered") == 2 for d in desks)

        await eventually(both_offered, 30, interval=0.1, what="both supervisors counting 2 offered")

        # ...and both callers waiting: each node's board adds the other node's queue figures,
        # in the snapshot and in the live "queues" messages.
        async def both_waiting() -> bool:
            for desk in desks:
                snap = (await desk.get("/api/supervisor/snapshot")).json()
                live = [m for m in desk.messages if m.get("type") == "queues"]
                if not live or _waiting(snap["queues"]) != 2 or _waiting(live[-1]["queues"]) != 2:
                    return False
            return True

        await eventually(both_waiting, 30, interval=0.1, what="both supervisors seeing 2 waiting in sales")

        # An agent signed in on node b shows on node a's board as b sees her.
        await carol.login()
        r = await carol.post("/api/agent/state", {"state": "available"})
        assert r.status_code == 200, r.text

        async def carol_on_a() -> bool:
            snap = (await desks[0].get("/api/supervisor/snapshot")).json()
            view = next(x for x in snap["agents"] if x["agent_id"] == "1003")
            return (view["state"], view.get("node")) == ("available", "b")

        await eventually(carol_on_a, 30, interval=0.2, what="node a's board showing Carol, signed in on b")

        # Kill -9 the node holding the first caller (queued): the survivor closes its record
        # after the lease, once; the caller's media died with that node.
        rows = await eventually(lambda: _rows(dep.db_url, select(interactions.c.id, interactions.c.status)),
                                20, interval=0.1, what="records")  # fmt: skip
        assert len(rows) == 2 and {r.status for r in rows} == {"open"}
        first_node = "a"  # round robin started at a (asserted by the per-node counts above)
        kill(dep.nodes[first_node])
        survivor = dep.nodes["b"]

        async def lost_closed() -> list[Any]:
            got = await _rows(dep.db_url, select(interactions.c.id, interactions.c.end_reason)
                              .where(interactions.c.end_reason == "node_lost"))  # fmt: skip
            return got or None  # type: ignore[return-value]

        lost = await eventually(lost_closed, 30, interval=0.2, what="dead node's record closed by b")
        assert len(lost) == 1

        # The dead node's queue figures stop counting on the survivor's board.
        async def one_waiting() -> bool:
            snap = (await desks[1].get("/api/supervisor/snapshot")).json()
            return _waiting(snap["queues"]) == 1

        await eventually(one_waiting, 30, interval=0.2, what="b's board without a's caller")
        assert (await health(survivor))[1]["cluster"]["queue_figures_from"] == []
        assert any(ln.get("lost_node") == first_node for ln in survivor.lines)

        # New calls during the failure go to the survivor (Kamailio fails over on the timeout
        # and then the probe keeps the dead node out): SIPp sees every call succeed.
        before = (await _calls_in(dep))["b"]
        rc, out = await run(sipp_calls(kam, tmp_path, 6))
        assert rc == 0, out[:3000] + "\n".join(kam.log[-40:])
        assert (await _calls_in(dep))["b"] == before + 6

        for call in calls:
            if call.is_active:
                await call.hangup()

        async def all_closed() -> list[Any] | None:
            got = await _rows(dep.db_url, select(interactions.c.status))
            return got if len(got) == 8 and all(r.status == "ended" for r in got) else None

        await eventually(all_closed, 30, interval=0.2, what="8 records, all ended")
        ends = await _rows(dep.db_url, select(interaction_events.c.contact_id, func.count())
                           .where(interaction_events.c.type == "ContactEnded")
                           .group_by(interaction_events.c.contact_id))  # fmt: skip
        assert len(ends) == 8 and all(n == 1 for _cid, n in ends)  # no record ended twice

        # Redis restart: the node says so (healthz 503, OPTIONS 503 so the edge skips it),
        # reconnects when Redis is back, and its events flow again.
        await dep.private_redis.stop()
        await eventually(lambda: _status_is(survivor, 503), 20, interval=0.1, what="healthz 503")
        assert not await options_ok(dep.addrs["b"])
        await dep.private_redis.start()
        await eventually(lambda: _status_is(survivor, 200), 20, interval=0.1, what="healthz 200 again")
        body = (await health(survivor))[1]
        assert body["cluster"]["events"]["reconnects"] >= 1

        async def edge_routes_again() -> bool:
            rc, _ = await run(sipp_calls(kam, tmp_path, 1))
            return rc == 0

        await eventually(edge_routes_again, 30, interval=0.5, what="a call through the edge again")
    finally:
        for desk in [*desks, carol]:
            await desk.close()
        await caller.stop()
        await kam.stop()


async def _status_is(served: Any, code: int) -> bool:
    try:
        return (await health(served))[0] == code
    except Exception:
        return False


async def test_agent_registered_through_the_edge_is_called_through_it(deployment: Deployment,
                                                                      tmp_path: Path) -> None:  # fmt: skip
    """Carol's baresip registers with the edge only. Her desk is on the OTHER node than the
    one that took the REGISTER: the binding is in Redis and the registration reaches that
    node over the bridge, which then rings her through the edge for a caller that arrived
    on it."""
    dep = deployment
    await dep.start_node("a", "127.0.0.2")
    await dep.start_node("b", "127.0.0.3")
    kam = await start_kamailio(tmp_path, [dep.addrs["a"], dep.addrs["b"]])
    phone = Baresip(tmp_path / "baresip", "1003", "demo-1003", kam.sip)
    caller = Caller()
    desk = None
    try:
        await phone.start()

        def registrar_node() -> str | None:
            changes = ((name, ln) for name, served in dep.nodes.items() for ln in served.lines
                       if ln.get("event") == "sip.register.change")  # fmt: skip
            return next((name for name, ln in changes if ln.get("aor") == "1003"), None)

        took = await eventually(registrar_node, 20, interval=0.05, what="a node took the REGISTER")
        other = "b" if took == "a" else "a"
        desk = Desktop(dep.nodes[other].http, "1003", "demo-1003")
        await desk.login()
        assert (await desk.post("/api/agent/state", {"state": "available"})).status_code == 200
        await caller.start()
        # Routing is per node (docs/cluster.md): place calls until one arrives on the desk's node.
        for _attempt in range(3):
            before = (await _calls_in(dep))[other]
            call = await caller.call("5000", kam.sip, ani="+441632960002")
            if (await _calls_in(dep))[other] > before:
                break
            await call.hangup()
        else:
            raise AssertionError(f"no call of three reached node {other}")
        call.media.send_dtmf(SALES)
        connected = await desk.wait(lambda m: m.get("type") == "connected", 30)
        assert connected["contact_id"]
        # The agent leg went from the desk's node to the edge, which relayed it to the phone.
        node_ip = dep.addrs[other][0]
        assert any("INVITE" in ln and f"from node {node_ip}" in ln for ln in kam.log), kam.log[-20:]
        await call.hangup()
    finally:
        if desk is not None:
            await desk.close()
        await caller.stop()
        await phone.stop()
        await kam.stop()
