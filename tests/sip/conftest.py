"""Fixtures for the SIP call tests: our server in the test's loop, real SIPp/baresip as peers.

Everything listens on 127.0.0.1 with ports the OS or a free-port probe picks, so
these tests run next to other helpers' tests (never 5060/8080). When CI=true a
missing tool fails the test instead of skipping it.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from callcenter.media.engine import MediaEngine
from callcenter.media.worker import MediaPool
from callcenter.sip.calls import Call
from callcenter.sip.transport import SipTransportLayer
from callcenter.sip.ua import UserAgent
from tests.support import free_udp_port, require_tool, unavailable

HERE = Path(__file__).parent
SCENARIOS = HERE / "sipp"
SIPP_PCAP_DIR = Path("/usr/share/sip-tester")


def rtp_range() -> tuple[int, int]:
    """A 200-port RTP range for one test's media engine (parallel-safe enough: the engine
    skips ports another process holds)."""
    base = random.randrange(61000, 65200) & ~1  # above the kernel's ephemeral ports
    return base, base + 199


@dataclass
class Server:
    ua: UserAgent
    engine: MediaEngine | MediaPool
    port: int
    calls: list[Call] = field(default_factory=list)
    tcp_port: int = 0
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def uri_host(self) -> str:
        return f"127.0.0.1:{self.port}"


async def start_server(
    on_call: Callable[[Call], Awaitable[None]] | None = None, *, media_workers: int = 1, **ua_kwargs: Any
) -> Server:
    """Our UA on ephemeral ports; ``media_workers`` >= 2 puts media in that many worker
    processes (``rtp.workers``), as the server does."""
    lo, hi = rtp_range()
    engine: MediaEngine | MediaPool = (
        MediaPool("127.0.0.1", lo, hi, media_workers)
        if media_workers > 1
        else MediaEngine("127.0.0.1", lo, hi)
    )
    await engine.start()
    server: Server | None = None

    async def record_and_run(call: Call) -> None:
        if server is not None:
            server.calls.append(call)
        if on_call is not None:
            await on_call(call)

    ua = UserAgent(engine, on_call=record_and_run, **ua_kwargs)
    closers: list[Callable[[], Awaitable[None]]] = []
    port, tcp_port = await _attach_transports(ua, closers)
    await ua.start()
    server = Server(ua, engine, port, [], tcp_port, closers)
    return server


async def _attach_transports(ua: UserAgent, closers: list[Callable[[], Awaitable[None]]]) -> tuple[int, int]:
    """SIP-A's transport layer on an ephemeral UDP port (and TCP on another), feeding our UA."""
    layer = SipTransportLayer([("udp", "127.0.0.1", 0), ("tcp", "127.0.0.1", 0)], ua.on_message)
    await layer.start()
    ua.attach(layer)
    closers.append(layer.stop)
    return layer.get("udp").local[1], layer.get("tcp").local[1]


async def stop_server(server: Server) -> None:
    await server.ua.stop()
    for close in server.closers:
        await close()
    await server.engine.stop()


@pytest.fixture
async def server_factory() -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    servers: list[Server] = []

    async def make(on_call: Callable[[Call], Awaitable[None]] | None = None, **kw: Any) -> Server:
        server = await start_server(on_call, **kw)
        servers.append(server)
        return server

    yield make
    for server in servers:
        await stop_server(server)


@dataclass
class SippResult:
    returncode: int
    stdout: str
    stderr: str
    errors: str


class SippProcess:
    """A running SIPp: ``port`` is its SIP port; ``await wait()`` gives the result."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int, errors: Path, timeout: float) -> None:
        self.proc = proc
        self.port = port
        self.errors = errors
        self.timeout = timeout

    @property
    def uri_host(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def wait(self) -> SippResult:
        try:
            out, err = await asyncio.wait_for(self.proc.communicate(), self.timeout)
        except TimeoutError:
            self.proc.kill()
            out, err = await self.proc.communicate()
        error_text = self.errors.read_text(errors="replace") if self.errors.exists() else ""
        code = self.proc.returncode if self.proc.returncode is not None else -1
        return SippResult(code, out.decode(errors="replace"), err.decode(errors="replace"), error_text)


async def start_sipp(
    target: str | None,
    *,
    tmp: Path,
    scenario: str | None = None,
    builtin: str | None = None,
    calls: int = 1,
    rate: float = 10,
    service: str = "600",
    duration_ms: int | None = None,
    extra: list[str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60.0,
    local_ip: str = "127.0.0.1",
) -> SippProcess:
    """Start SIPp bounded in calls and time, on ephemeral ports (UAS when target is None);
    ``local_ip`` another loopback address (127.0.0.2) makes it another source."""
    sipp = require_tool("sipp")
    port = free_udp_port()
    media_port = free_udp_port(even=True, span=4)
    errors = tmp / f"sipp_{port}_errors.log"
    args = [sipp] + ([target] if target else [])
    args += [
        "-i",
        local_ip,
        "-mi",
        local_ip,
        "-p",
        str(port),
        "-mp",
        str(media_port),
        "-m",
        str(calls),
        "-nostdin",
        "-timeout",
        f"{int(timeout) - 5}s",
        "-timeout_error",
        "-trace_err",
        "-error_file",
        str(errors),
        "-max_recv_loops",
        "100",
    ]
    if target:
        args += ["-r", str(rate), "-s", service]
    if builtin:
        args += ["-sn", builtin]
    if scenario:
        args += ["-sf", str(SCENARIOS / scenario)]
    if duration_ms is not None:
        args += ["-d", str(duration_ms)]
    args += extra or []
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=str(cwd or tmp), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    return SippProcess(proc, port, errors, timeout)


async def run_sipp(target: str | None, **kwargs: Any) -> SippResult:
    """Run SIPp to completion; ``returncode`` 0 means every call succeeded."""
    return await (await start_sipp(target, **kwargs)).wait()


@pytest.fixture
def sipp(tmp_path: Path) -> Callable[..., Awaitable[SippResult]]:
    """``await sipp(target, builtin=... | scenario=..., calls=N, ...)`` → SippResult."""

    async def run(target: str, **kwargs: Any) -> SippResult:
        kwargs.setdefault("tmp", tmp_path)
        return await run_sipp(target, **kwargs)

    return run


@pytest.fixture
def free_port() -> Callable[[], int]:
    return free_udp_port


@pytest.fixture
def tool() -> Callable[[str], str]:
    """``tool("baresip")`` → its path; skips (fails when CI=true) when it is missing."""
    return require_tool


@pytest.fixture
def sipp_start(tmp_path: Path) -> Callable[..., Awaitable[SippProcess]]:
    """``proc = await sipp_start(target_or_None, ...)``; ``await proc.wait()`` later."""

    async def start(target: str | None, **kwargs: Any) -> SippProcess:
        kwargs.setdefault("tmp", tmp_path)
        return await start_sipp(target, **kwargs)

    return start


@pytest.fixture
def sipp_pcap_cwd(tmp_path: Path) -> Path:
    """A working directory where SIPp's uac_pcap finds its captures as ./pcap."""
    require_tool("sipp")
    if not SIPP_PCAP_DIR.is_dir():
        unavailable("SIPp's pcap files", f"{SIPP_PCAP_DIR} (apt-get install sip-tester)")
    (tmp_path / "pcap").symlink_to(SIPP_PCAP_DIR)
    return tmp_path
