"""Per-account throttling of SIP digest guesses on the wire (issue 20 item 4).

Our real stack (UDP transport → UA core → Registrar) on an ephemeral port; the guessers are
UDP sockets bound to different loopback addresses (127.0.0.x), so per-source lockout alone
would never stop them. The throttle's clock is injected: the test moves it past a delay
instead of waiting.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest

from callcenter.sip.bindings import RegisterPolicy
from callcenter.sip.digest import Credentials, answer_challenge
from callcenter.sip.message import SipMessage
from callcenter.sip.registrar import Registrar
from callcenter.sip.transport import SipTransportLayer
from callcenter.sip.ua import UserAgent
from callcenter.throttle import AccountPolicy, LockoutPolicy
from tests.support import free_udp_port

REALM = "callcenter.test"
_seq = itertools.count(1)


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def server() -> AsyncIterator[tuple[Registrar, int, Clock]]:
    clock = Clock()
    creds = {"1001": Credentials.from_password("1001", REALM, "right-password")}
    registrar = Registrar(
        REALM, creds,
        policy=RegisterPolicy(min_expires=60, default_expires=300, max_expires=3600),
        lockout=LockoutPolicy(max_failures=3, window=600, lockout=300),
        account_delay=AccountPolicy(free_failures=2, delay=1.0, max_delay=60),
        monotonic=clock,
    )  # fmt: skip
    ua = UserAgent(None, registrar=registrar)
    port = free_udp_port()
    layer = SipTransportLayer([("udp", "127.0.0.1", port)], ua.on_message)
    await layer.start()
    for t in layer.transports:
        ua.add_transport(t, t.advertised, t.name)
    await ua.start()
    try:
        yield registrar, port, clock
    finally:
        await ua.stop()
        await layer.stop()


class Phone(asyncio.DatagramProtocol):
    """A minimal REGISTER client on one loopback source address."""

    def __init__(self) -> None:
        self.replies: asyncio.Queue[SipMessage] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.replies.put_nowait(SipMessage.parse(data))

    @classmethod
    async def open(cls, ip: str, server_port: int) -> tuple[Phone, asyncio.DatagramTransport]:
        loop = asyncio.get_running_loop()
        transport, phone = await loop.create_datagram_endpoint(
            cls, local_addr=(ip, 0), remote_addr=("127.0.0.1", server_port)
        )
        return phone, transport

    async def send(self, transport: asyncio.DatagramTransport, auth: str | None) -> SipMessage:
        ip, port = transport.get_extra_info("sockname")
        n = next(_seq)
        headers = [
            ("Via", f"SIP/2.0/UDP {ip}:{port};branch=z9hG4bK-thr-{n};rport"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:1001@{REALM}>;tag=t{n}"),
            ("To", f"<sip:1001@{REALM}>"),
            ("Call-ID", f"thr-{n}@{ip}"),
            ("CSeq", f"{n} REGISTER"),
            ("Contact", f"<sip:1001@{ip}:{port}>"),
            ("Expires", "300"),
        ]
        if auth is not None:
            headers.append(("Authorization", auth))
        transport.sendto(SipMessage.request("REGISTER", f"sip:{REALM}", headers).to_bytes())
        return await asyncio.wait_for(self.replies.get(), 5)


async def attempt(ip: str, port: int, password: str) -> int:
    """Challenge, then answer it with ``password`` from ``ip``: the final status."""
    phone, transport = await Phone.open(ip, port)
    try:
        first = await phone.send(transport, None)
        if first.status != 401:
            return first.status
        auth = answer_challenge(first.headers.get_all("WWW-Authenticate"), "REGISTER",
                                f"sip:{REALM}", "1001", password)  # fmt: skip
        final = await phone.send(transport, auth)
        if final.status == 503:
            assert int(final.headers.get("Retry-After") or 0) >= 1
        return final.status
    finally:
        transport.close()


async def test_guesses_from_many_addresses_are_delayed_per_account(
    server: tuple[Registrar, int, Clock],
) -> None:
    registrar, port, clock = server
    # One guess each from 8 addresses: no source reaches its lockout (3), yet after the
    # account's free failures the rest are refused unchecked with 503 + Retry-After.
    statuses = [await attempt(f"127.0.0.{10 + i}", port, f"guess-{i}") for i in range(8)]
    assert statuses == [401, 401, 401, 503, 503, 503, 503, 503]
    assert registrar.throttle.counts["failures"] == 3
    assert registrar.throttle.counts["refused_account_delayed"] == 5
    assert not list(registrar.lockout.locked_sources())
    # The real user, from its own address, is delayed too (a delay, not a ban) ...
    assert await attempt("127.0.0.50", port, "right-password") == 503
    clock.now += 1.0  # the 3rd failure imposed 1 s
    assert await attempt("127.0.0.50", port, "right-password") == 200
    # ... and the success resets the account: a typo now is an ordinary 401.
    assert await attempt("127.0.0.50", port, "typo") == 401


async def test_persistent_guesser_is_locked_while_the_user_gets_in(
    server: tuple[Registrar, int, Clock],
) -> None:
    registrar, port, clock = server
    guesser = "127.0.0.20"
    assert [await attempt(guesser, port, f"guess-{i}") for i in range(4)] == [401, 401, 401, 403]
    assert registrar.lockout.is_locked(guesser)
    assert registrar.throttle.counts["source_locks"] == 1
    # The locked source stays refused even with the right password, while another
    # source with the right password gets in once the account's delay is over.
    assert await attempt(guesser, port, "right-password") == 403
    assert await attempt("127.0.0.51", port, "right-password") == 503
    clock.now += 1.0
    assert await attempt("127.0.0.51", port, "right-password") == 200
    assert await attempt(guesser, port, "right-password") == 403
    # A source that comes back guessing after its lock is locked twice as long.
    clock.now += 300
    assert [await attempt(guesser, port, f"again-{i}") for i in range(3)] == [401, 401, 401]
    clock.now += 300
    assert await attempt(guesser, port, "guess") == 403
    clock.now += 300
    assert await attempt(guesser, port, "right-password") == 200
