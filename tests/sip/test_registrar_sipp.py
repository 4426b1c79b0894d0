"""The registrar on the wire: SIPp REGISTER scenarios with [authentication] over UDP.

The server side is the real stack: our UDP socket → SipMessage parser → the UA core's
transaction layer (absorbs retransmissions) → Registrar. SIPp is the peer we did not write.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sip_helpers import challenge_shape

from callcenter.sip.bindings import RegisterPolicy
from callcenter.sip.digest import Credentials
from callcenter.sip.message import SipMessage
from callcenter.sip.registrar import Registrar
from callcenter.sip.transport import SipTransportLayer
from callcenter.sip.ua import UserAgent
from callcenter.throttle import LockoutPolicy
from tests.support import free_udp_port, free_udp_tcp_port, require_tool

SCENARIOS = Path(__file__).parent / "sipp_register"
REALM = "callcenter.test"


class _Recording:
    """Wraps one of SIP-A's transports to keep a parsed copy of every message we send."""

    def __init__(self, inner: Any, sent: list[SipMessage]) -> None:
        self._inner = inner
        self._sent = sent
        self.name = inner.name
        self.reliable = inner.reliable
        self.local = inner.local
        self.advertised = inner.advertised

    def _record(self, data: bytes | SipMessage) -> None:
        self._sent.append(SipMessage.parse(data if isinstance(data, bytes) else data.to_bytes()))

    def send_nowait(self, data: bytes | SipMessage, addr: tuple[str, int]) -> None:
        self._record(data)
        self._inner.send_nowait(data, addr)

    async def send(self, data: bytes | SipMessage, addr: tuple[str, int]) -> None:
        self._record(data)
        await self._inner.send(data, addr)


@dataclass
class Server:
    registrar: Registrar
    port: int
    sent: list[SipMessage]
    changes: list[tuple[str, bool]] = field(default_factory=list)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    """Our real stack on ephemeral ports: SIP-A's transports → UA core → Registrar."""
    creds = {u: Credentials.from_password(u, REALM, f"demo-{u}") for u in ("1001", "1002")}
    registrar = Registrar(
        REALM,
        creds,
        policy=RegisterPolicy(min_expires=60, default_expires=300, max_expires=3600),
        lockout=LockoutPolicy(max_failures=3, window=60, lockout=300),
    )
    ua = UserAgent(None, registrar=registrar)
    sent: list[SipMessage] = []
    wrapped: dict[int, _Recording] = {}

    def on_message(msg: SipMessage, addr: tuple[str, int], transport: Any) -> None:
        rec = wrapped.get(id(transport))
        if rec is None:  # a TCP connection object, say: wrap it once
            rec = wrapped[id(transport)] = _Recording(transport, sent)
        ua.on_message(msg, addr, rec)

    # one free port for both UDP and TCP, as SIP servers usually listen
    port = free_udp_tcp_port()
    layer = SipTransportLayer([("udp", "127.0.0.1", port), ("tcp", "127.0.0.1", port)], on_message)
    await layer.start()
    for t in layer.transports:
        rec = wrapped[id(t)] = _Recording(t, sent)
        ua.add_transport(rec, t.advertised, t.name)
    await ua.start()
    srv = Server(registrar, port, sent)
    registrar.on_change(lambda user, up: srv.changes.append((user, up)))
    try:
        yield srv
    finally:
        await ua.stop()
        await layer.stop()


@dataclass
class SippResult:
    rc: int
    port: int
    output: str


async def run_sipp(
    srv: Server,
    scenario: str,
    user: str,
    password: str,
    *,
    expires: int = 300,
    calls: int = 1,
    tcp: bool = False,
) -> SippResult:
    sipp = require_tool("sipp", "sip-tester")
    port = free_udp_port(tcp=tcp)  # SIPp binds its -p port for the transport it uses
    args = [
        sipp,
        "-sf",
        str(SCENARIOS / scenario),
        f"127.0.0.1:{srv.port}",
        "-i",
        "127.0.0.1",
        "-p",
        str(port),
        "-s",
        user,
        "-au",
        user,
        "-ap",
        password,
        "-key",
        "expires",
        str(expires),
        "-m",
        str(calls),
        "-l",
        "1",
        "-nostdin",
        "-timeout",
        "20s",
        "-timeout_error",
        "-max_recv_loops",
        "1000",
    ]
    if tcp:
        args += ["-t", "t1"]
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
    return SippResult(proc.returncode or 0, port, out.decode(errors="replace"))


def _finals(srv: Server, status: int) -> list[SipMessage]:
    return [m for m in srv.sent if m.status == status]


async def test_sipp_registers_with_digest_auth(server: Server) -> None:
    res = await run_sipp(server, "register_auth.xml", "1001", "demo-1001", expires=300)
    assert res.rc == 0, res.output
    bindings = await server.registrar.contacts("1001")
    assert len(bindings) == 1
    b = bindings[0]
    assert b.uri == f"sip:1001@127.0.0.1:{res.port}"
    assert b.source == ("127.0.0.1", res.port)
    assert b.transport == "udp"
    assert 0 < b.expires_in(b.registered_at) <= 300
    assert server.changes == [("1001", True)]
    ok = _finals(server, 200)[-1]
    assert ok.headers.get_all("Contact")[0].startswith(f"<sip:1001@127.0.0.1:{res.port}>;expires=")


async def test_sipp_registers_over_tcp(server: Server) -> None:
    res = await run_sipp(server, "register_auth.xml", "1002", "demo-1002", tcp=True)
    assert res.rc == 0, res.output
    (b,) = await server.registrar.contacts("1002")
    assert b.transport == "tcp"
    assert b.source[0] == "127.0.0.1"


async def test_sipp_wrong_password_gets_401_then_source_is_locked_out(server: Server) -> None:
    res = await run_sipp(server, "register_rejected.xml", "1001", "not-the-password", calls=3)
    assert res.rc == 0, res.output  # each of the 3 attempts ended in 401
    assert server.registrar.lockout.is_locked("127.0.0.1")
    locked = await run_sipp(server, "register_locked.xml", "1001", "demo-1001")
    assert locked.rc == 0, locked.output  # 403 without a challenge
    assert "WWW-Authenticate" not in _finals(server, 403)[-1].headers
    # the right password does not help while locked
    good = await run_sipp(server, "register_auth.xml", "1001", "demo-1001")
    assert good.rc != 0
    assert await server.registrar.contacts("1001") == []


async def test_sipp_unknown_user_answered_like_wrong_password(server: Server) -> None:
    wrong = await run_sipp(server, "register_rejected.xml", "1001", "guess")
    wrong_final = _finals(server, 401)[-1]
    unknown = await run_sipp(server, "register_rejected.xml", "9999", "guess")
    unknown_final = _finals(server, 401)[-1]
    assert wrong.rc == 0 and unknown.rc == 0, wrong.output + unknown.output
    assert wrong_final is not unknown_final
    assert challenge_shape(wrong_final) == challenge_shape(unknown_final)
    first_challenge = _finals(server, 401)[0]
    assert challenge_shape(first_challenge) == challenge_shape(wrong_final)


async def test_sipp_expires_zero_unregisters(server: Server) -> None:
    assert (await run_sipp(server, "register_auth.xml", "1002", "demo-1002")).rc == 0
    assert len(await server.registrar.contacts("1002")) == 1
    res = await run_sipp(server, "register_auth.xml", "1002", "demo-1002", expires=0)
    assert res.rc == 0, res.output
    # the new SIPp run used another port = another contact; Expires: 0 removes only it
    remaining = await server.registrar.contacts("1002")
    assert all(b.source[1] != res.port for b in remaining)
    assert len(remaining) == 1


async def test_sipp_short_expiry_gets_423(server: Server) -> None:
    res = await run_sipp(server, "register_brief.xml", "1001", "demo-1001", expires=10)
    assert res.rc == 0, res.output
    resp = _finals(server, 423)[-1]
    assert resp.headers.get("Min-Expires") == "60"
    assert await server.registrar.contacts("1001") == []


async def test_retransmitted_register_gets_the_identical_response(server: Server) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            queue.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(Client, local_addr=("127.0.0.1", 0))
    lport = transport.get_extra_info("sockname")[1]
    request = (
        f"REGISTER sip:{REALM} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK-retrans-1;rport\r\n"
        f"From: <sip:1001@{REALM}>;tag=abc\r\nTo: <sip:1001@{REALM}>\r\n"
        f"Call-ID: retrans-1\r\nCSeq: 1 REGISTER\r\nContact: <sip:1001@127.0.0.1:{lport}>\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    try:
        transport.sendto(request, ("127.0.0.1", server.port))
        first = await asyncio.wait_for(queue.get(), 5)
        transport.sendto(request, ("127.0.0.1", server.port))
        second = await asyncio.wait_for(queue.get(), 5)
    finally:
        transport.close()
    assert first.startswith(b"SIP/2.0 401 ")
    assert first == second  # same nonce, same To tag: absorbed by the transaction layer
