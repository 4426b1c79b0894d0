"""Shared fixtures for media tests: engines on random, disjoint RTP port ranges."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from callcenter.media import MediaEngine

EngineFactory = Callable[..., Awaitable[MediaEngine]]


def port_range(width: int = 64) -> tuple[int, int]:
    """A random even range away from the demo range (20000-29999); busy ports are skipped."""
    base = random.randrange(40000, 60000 - width) & ~1
    return base, base + width - 1


@pytest.fixture
async def make_engine() -> AsyncIterator[EngineFactory]:
    engines: list[MediaEngine] = []

    async def factory(**kw: object) -> MediaEngine:
        lo, hi = port_range(int(kw.pop("width", 64)))  # type: ignore[call-overload]
        engine = MediaEngine("127.0.0.1", lo, hi, **kw)  # type: ignore[arg-type]
        await engine.start()
        engines.append(engine)
        return engine

    yield factory
    for e in engines:
        await e.stop()


class UdpPeer:
    """A plain UDP socket standing in for a phone's RTP port (what arrives, exactly)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.setblocking(False)
        self.addr: tuple[str, int] = self.sock.getsockname()
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.fileno(), self._readable)

    def _readable(self) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(4096)
            except BlockingIOError:
                return
            self.queue.put_nowait((data, addr))

    async def recv(self, timeout: float = 5.0) -> tuple[bytes, tuple[str, int]]:
        return await asyncio.wait_for(self.queue.get(), timeout)

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sock.sendto(data, addr)

    def close(self) -> None:
        self._loop.remove_reader(self.sock.fileno())
        self.sock.close()


def offer_sdp(port: int, pts: str = "0 8 101", host: str = "127.0.0.1", extra: str = "") -> str:
    lines = [
        "v=0", f"o=phone 1 1 IN IP4 {host}", "s=-", f"c=IN IP4 {host}", "t=0 0",
        f"m=audio {port} RTP/AVP {pts}",
        "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16",
    ]
    if extra:
        lines.append(extra)
    return "\r\n".join(lines) + "\r\n"
