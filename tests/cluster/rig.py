"""A small deployment on loopback: Kamailio (deploy/kamailio/kamailio.cfg, unchanged) on
127.0.0.1 in front of ``callcenter serve`` nodes on 127.0.0.2 and 127.0.0.3, sharing one
Redis (a prefix of its own) and one PostgreSQL database (migrated once, dropped after)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from crm_bridge.migrate import upgrade
from tests.crm_bridge.crm_pg import PG_ADMIN_DB, PG_HOST, PG_PORT, PG_USER, pg_admin, pg_url
from tests.support import eventually, require_postgres, require_tool
from tests.support.peers import make_config_dir
from tests.support.ports import free_udp_port, free_udp_tcp_port
from tests.support.serve_process import Served, serve
from tests.support.services import ROOT, require_redis

KAMAILIO_CFG = ROOT / "deploy" / "kamailio" / "kamailio.cfg"
LEASE_S = 2.0  # short leases keep the takeover test bounded


@dataclass
class Kamailio:
    proc: asyncio.subprocess.Process
    port: int
    log: list[str] = field(default_factory=list)

    @property
    def sip(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()


async def options_ok(addr: tuple[str, int]) -> bool:
    """One SIP OPTIONS over UDP; True on a 200 (the edge's keepalive answer)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    port = sock.getsockname()[1]
    branch = "z9hG4bK" + uuid.uuid4().hex[:12]
    msg = (f"OPTIONS sip:{addr[0]}:{addr[1]} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch={branch}\r\n"
           f"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:{addr[0]}>\r\n"
           f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")  # fmt: skip
    try:
        await loop.sock_sendto(sock, msg.encode(), addr)
        data = await asyncio.wait_for(loop.sock_recv(sock, 4096), 0.5)
        return data.startswith(b"SIP/2.0 200")
    except (TimeoutError, OSError):
        return False
    finally:
        sock.close()


async def start_kamailio(workdir: Path, nodes: list[tuple[str, int]]) -> Kamailio:
    binary = require_tool("kamailio")
    ds_list = workdir / "dispatcher.list"
    ds_list.write_text("".join(f"1 sip:{h}:{p} 0 0\n" for h, p in nodes))
    port = free_udp_port()
    (workdir / "run").mkdir(exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        binary, "-DD", "-E", "-f", str(KAMAILIO_CFG), "-Y", str(workdir / "run"),
        "-A", f"LISTEN=udp:127.0.0.1:{port}", "-A", f'DS_LIST="{ds_list}"',
        "-A", "DS_PING_S=1", "-A", "FR_MS=1000", "-A", "NO_TCP",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    kam = Kamailio(proc, port)

    async def drain() -> None:
        assert proc.stderr is not None
        async for line in proc.stderr:
            kam.log.append(line.decode(errors="replace").rstrip())

    asyncio.get_running_loop().create_task(drain())

    async def up() -> bool:
        if proc.returncode is not None:
            raise AssertionError("kamailio exited:\n" + "\n".join(kam.log[-30:]))
        return await options_ok(kam.sip)

    await eventually(up, 20, interval=0.1, what="kamailio answering OPTIONS")
    return kam


class PrivateRedis:
    """A redis-server of the test's own on a free port: the test may stop and restart it."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_udp_tcp_port()
        self.workdir = workdir
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            require_tool("redis-server", "redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        client = await eventually(lambda: _ping(self.url), 10, interval=0.05, what="redis-server up")
        await client.aclose()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


async def _ping(url: str) -> Any:
    try:
        return await require_redis(url)
    except BaseException:  # not up yet (require_redis fails or skips)
        return None


class Deployment:
    """Databases and config for the nodes; ``start_node`` runs one."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.db = f"cluster_test_{uuid.uuid4().hex[:10]}"
        self.prefix = f"cctest-{uuid.uuid4().hex[:8]}"
        self.nodes: dict[str, Served] = {}
        self.addrs: dict[str, tuple[str, int]] = {}
        self.redis: Any = None
        self.private_redis = PrivateRedis(tmp)

    @property
    def db_url(self) -> str:
        return pg_url(self.db)

    async def setup(self) -> None:
        await asyncio.to_thread(require_postgres, PG_HOST, PG_PORT, PG_USER, PG_ADMIN_DB)
        await self.private_redis.start()
        self.redis = await require_redis(self.private_redis.url)
        await pg_admin(f'CREATE DATABASE "{self.db}"')
        await upgrade(self.db_url)  # once, before any node: no two nodes migrating at once

    def configure(self, name: str, host: str, *, cluster_on: bool = True,
                  media_timeout_s: float | None = None, **cluster: Any) -> Path:  # fmt: skip
        port = free_udp_tcp_port()
        self.addrs[name] = (host, port)

        def edit(server: dict[str, Any]) -> None:
            server["sip"]["listen"] = [{"transport": "udp", "host": host, "port": port}]
            server["rtp"]["host"] = host
            server["http"]["host"] = host
            server["database"]["url"] = self.db_url
            server["crm"]["seed_demo"] = False
            if media_timeout_s is not None:  # a call whose far end died ends this soon
                server["sip"].setdefault("session", {})["media_timeout_s"] = media_timeout_s
            server["cluster"] = {"enabled": cluster_on, "node_id": name, "prefix": self.prefix,
                                 "redis_url": self.private_redis.url,
                                 "lease_s": LEASE_S, "probe_s": 0.5, **cluster}  # fmt: skip

        (self.tmp / name).mkdir()
        return make_config_dir(self.tmp / name, server_edit=edit)

    async def start_node(self, name: str, host: str, *, cluster_on: bool = True,
                         media_timeout_s: float | None = None, **cluster: Any) -> Served:  # fmt: skip
        """``cluster_on=False``: a single node as before (in-memory state, no Redis)."""
        cfg = self.configure(name, host, cluster_on=cluster_on, media_timeout_s=media_timeout_s, **cluster)
        cwd = self.tmp / name / "cwd"
        cwd.mkdir()
        self.nodes[name] = await serve(cfg, cwd)
        return self.nodes[name]

    async def teardown(self) -> None:
        for served in self.nodes.values():
            await served.stop()
        if self.redis is not None:
            await self.redis.aclose()
        await self.private_redis.stop()
        await pg_admin(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')


async def metric(served: Served, name: str) -> dict[str, float]:
    """Every sample of ``name`` on a node's /metrics, by its label text."""
    async with httpx.AsyncClient(base_url=served.http) as client:
        text = (await client.get("/metrics")).text
    out = {}
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", line)
        if m:
            out[m.group(1) or ""] = float(m.group(2))
    return out


async def health(served: Served) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=served.http) as client:
        r = await client.get("/healthz")
    return r.status_code, r.json()


def kill(served: Served) -> None:
    os.killpg(served.proc.pid, signal.SIGKILL)


def sipp_calls(kam: Kamailio, workdir: Path, calls: int, dnis: str = "600", rate: float = 5,
               hold_ms: int = 300) -> list[str]:  # fmt: skip
    """SIPp's UAC (its built-in one, with ACK and BYE along the route set: uac_routed.xml):
    ``calls`` calls to ``dnis`` through the edge at ``rate``/s, each held ``hold_ms``."""
    port = free_udp_port()
    return ["sipp", "-sf", str(Path(__file__).with_name("uac_routed.xml")), f"{kam.sip[0]}:{kam.sip[1]}",
            "-s", dnis, "-m", str(calls), "-r", str(rate), "-l", str(max(5, int(rate * 2))),
            "-d", str(hold_ms), "-i", "127.0.0.1", "-p", str(port), "-nostdin",
            "-timeout", "60s", "-timeout_error", "-trace_stat", "-stf", str(workdir / f"sipp-{port}.csv"),
            "-mi", "127.0.0.1", "-mp", str(free_udp_port(even=True, span=4))]  # fmt: skip


async def run(cmd: list[str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*cmd, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)  # fmt: skip
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")


def yaml_of(path: Path) -> Any:
    return yaml.safe_load(path.read_text())
