"""The Redis store on a real Redis Cluster: three primaries (Debian's redis-server, started
by the test with `cluster-enabled yes`, joined with `redis-cli --cluster create`). Cluster
refuses a script whose keys span slots (CROSSSLOT); the router's keys all carry the hash tag
``{prefix}``, so its whole state sits in one slot on one primary, and two routers ("two
nodes") on the Cluster share one pool of agents and tasks there."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ClusterCrossSlotError
from routing_helpers import make_config

from routing import DecisionKind, ManualClock
from routing.redis_store import RedisRouter, slot_owner
from tests.support.polling import eventually

AG = {"id": "a1", "skills": {"billing": 5}, "capacity": {"voice": 1}}


def cluster_ports(n: int = 3) -> list[int]:
    """``n`` ports free for Redis and for its cluster bus (port + 10000), both off the
    ephemeral range and the test peers' 32000-39990."""
    ports: list[int] = []
    for port in range(12000 + uuid.uuid4().int % 2000, 15000):
        socks = []
        try:
            for p in (port, port + 10000):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        ports.append(port)
        if len(ports) == n:
            return ports
    raise RuntimeError("no free ports for a Redis Cluster")


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[RedisCluster]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    assert server and cli, "Debian's redis-server and redis-cli are needed (redis-server package)"
    ports = cluster_ports()
    procs = []
    for port in ports:
        d = tmp_path / str(port)
        d.mkdir()
        procs.append(subprocess.Popen(
            [server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", "nodes.conf", "--dir", str(d), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
    clients = [Redis(port=p) for p in ports]
    try:
        async def up() -> bool:
            for c in clients:
                with contextlib.suppress(OSError, ConnectionError):
                    await c.ping()
                    continue
                return False
            return True

        await eventually(up, 20, what="three redis-server processes")
        create = await asyncio.create_subprocess_exec(
            cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports), "--cluster-replicas", "0",
            "--cluster-yes", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)  # fmt: skip
        out, _ = await create.communicate()
        assert create.returncode == 0, out.decode()

        async def ok() -> bool:
            infos = [await c.execute_command("CLUSTER", "INFO") for c in clients]
            return all(b"cluster_state:ok" in (i if isinstance(i, bytes) else str(i).encode()) for i in infos)

        await eventually(ok, 20, what="cluster_state:ok on every node")
        rc = RedisCluster(host="127.0.0.1", port=ports[0])
        await rc.initialize()
        try:
            yield rc
        finally:
            await rc.aclose()
    finally:
        for c in clients:
            await c.aclose()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


async def keys_by_node(cluster: RedisCluster, prefix: str) -> dict[int, int]:
    """How many of the router's keys each primary holds, by port."""
    counts: dict[int, int] = {}
    for node in cluster.get_primaries():
        async with Redis(host=node.host, port=node.port) as c:
            counts[node.port] = len([k async for k in c.scan_iter(match="{" + prefix + "}:*")])
    return counts


async def test_router_state_lives_in_one_slot_and_is_shared(cluster: RedisCluster) -> None:
    # Cluster itself: a script whose keys span slots is refused by the server.
    node = cluster.get_primaries()[0]
    async with Redis(host=node.host, port=node.port) as direct:
        with pytest.raises(ClusterCrossSlotError, match="don't hash to the same slot"):
            await direct.eval("return 1", 2, "a-key", "another-key")

    prefix = f"test-cluster-{uuid.uuid4().hex}"
    clock = ManualClock(1000.0)
    cfg = make_config({"q": {"required_skills": {"billing": 3}}}, [AG, dict(AG, id="a2")])
    node_a, node_b = await slot_owner(cluster, prefix), await slot_owner(cluster, prefix)
    a = RedisRouter(cfg, node_a, prefix=prefix, clock=clock)
    b = RedisRouter(cfg, node_b, prefix=prefix, clock=clock)
    try:
        await a.start()
        await b.start()
        for agent in ("a1", "a2"):
            await a.set_softphone(agent, True)
            await a.set_agent_state(agent, "available")

        # Node A takes a call and offers it; node B sees the agent reserved and routes to the other.
        (o1,) = await a.submit("t1", "q")
        assert o1.kind is DecisionKind.OFFER and o1.agent_id == "a1"
        (o2,) = await b.submit("t2", "q")
        assert o2.kind is DecisionKind.OFFER and o2.agent_id == "a2"
        (q3,) = await b.submit("t3", "q")
        assert q3.kind is DecisionKind.QUEUED
        assert await a.waiting("q") == 1  # A sees B's waiting task
        await a.accept(o1.reservation.id)
        ds = await a.complete("t1")  # a1 is free again: agent-first picks B's waiting task
        assert [(d.kind, d.task_id, d.agent_id) for d in ds] == [(DecisionKind.OFFER, "t3", "a1")]

        # Every key of the router is in the prefix's slot, on the one primary that owns it.
        slot = await cluster.cluster_keyslot("{" + prefix + "}")
        owner = cluster.get_node_from_key("{" + prefix + "}")
        counts = await keys_by_node(cluster, prefix)
        assert counts[owner.port] > 0
        assert {port: n for port, n in counts.items() if port != owner.port} == dict.fromkeys(
            [p for p in counts if p != owner.port], 0)  # fmt: skip
        async with Redis(host=owner.host, port=owner.port) as c:
            keys = [k async for k in c.scan_iter(match="{" + prefix + "}:*")]
            assert {await c.execute_command("CLUSTER", "KEYSLOT", k) for k in keys} == {slot}
    finally:
        await a.clear()
        for router, client in ((a, node_a), (b, node_b)):
            await router.aclose()
            await client.aclose()

