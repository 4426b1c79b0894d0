"""UA core features against real SIPp peers: outbound calls with digest auth, CANCEL,
B2BUA bridging, in-dialog INFO/re-INVITE/REFER, session timers, media timeout, shutdown,
and freedom from reference cycles."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from sip_helpers import ServerFactory, Sipp, answer_and_wait

from callcenter.sip.b2bua import bridge_call, bridge_legs
from callcenter.sip.calls import Call, CallFailed, CallState, SipCredentials


async def test_place_call_to_sipp_uas_and_hang_up(server_factory: ServerFactory, sipp_start: Sipp) -> None:
    server = await server_factory(None)
    uas = await sipp_start(None, builtin="uas", calls=1, timeout=30)
    call = await server.ua.place_call(f"sip:bob@{uas.uri_host}", from_uri="sip:cc@127.0.0.1")
    assert call.state is CallState.ANSWERED
    assert call.media.remote is not None  # SIPp's SDP answer was applied
    await call.hangup()
    result = await uas.wait()
    assert result.returncode == 0, result.errors or result.stdout[-2000:]
    assert call.end_reason == "local_hangup"
    assert server.ua.calls == {}


async def test_place_call_answers_digest_challenge(server_factory: ServerFactory, sipp_start: Sipp) -> None:
    server = await server_factory(None)
    uas = await sipp_start(None, scenario="uas_auth.xml", calls=1, timeout=30)
    call = await server.ua.place_call(
        f"sip:agent@{uas.uri_host}",
        credentials=SipCredentials("agent", "s3cret"),
        headers={"X-Interaction-Id": "ix-1"},
    )
    assert call.state is CallState.ANSWERED
    await call.hangup()
    result = await uas.wait()
    assert result.returncode == 0, result.errors or result.stdout[-2000:]


async def test_place_call_wrong_password_fails(server_factory: ServerFactory, sipp_start: Sipp) -> None:
    server = await server_factory(None)
    uas = await sipp_start(None, scenario="uas_auth.xml", calls=1, timeout=30)
    with pytest.raises(CallFailed) as failure:
        await server.ua.place_call(f"sip:agent@{uas.uri_host}", credentials=("agent", "wrong"))
    assert failure.value.status == 403
    await uas.wait()
    assert server.ua.calls == {}


async def test_place_call_ring_timeout_cancels(server_factory: ServerFactory, sipp_start: Sipp) -> None:
    server = await server_factory(None)
    uas = await sipp_start(None, scenario="uas_ring_cancel.xml", calls=1, timeout=30)
    with pytest.raises(CallFailed) as failure:
        await server.ua.place_call(f"sip:agent@{uas.uri_host}", timeout=1.0)
    assert failure.value.status == 487
    result = await uas.wait()
    assert result.returncode == 0, result.errors or result.stdout[-2000:]


async def test_place_call_unreachable_times_out(
    server_factory: ServerFactory, free_port: Callable[[], int]
) -> None:
    """Nobody listens: Timer B ends the INVITE transaction with 408 (timer shortened)."""
    from callcenter.sip.timers import SipTimers

    server = await server_factory(None, timers=SipTimers(t1=0.01, t2=0.04, t4=0.05))
    port = free_port()
    with pytest.raises(CallFailed) as failure:
        await server.ua.place_call(f"sip:nobody@127.0.0.1:{port}", timeout=10)
    assert failure.value.status == 408


async def test_b2bua_bridges_caller_to_agent(
    server_factory: ServerFactory, sipp: Sipp, sipp_start: Sipp
) -> None:
    agent = await sipp_start(None, scenario="uas_b2bua_leg.xml", calls=1, timeout=40)
    legs: list[Call] = []

    async def route_to_agent(call: Call) -> None:
        outbound = await bridge_call(
            server.ua,
            call,
            f"sip:agent@{agent.uri_host}",
            headers={"X-Interaction-Id": "ix-42"},
        )
        legs.append(outbound)
        await call.ended.wait()

    server = await server_factory(route_to_agent)
    caller = await sipp(server.uri_host, builtin="uac", calls=1, duration_ms=500, timeout=40)
    assert caller.returncode == 0, caller.errors or caller.stdout[-2000:]
    result = await agent.wait()
    assert result.returncode == 0, result.errors or result.stdout[-2000:]
    inbound = server.calls[0]
    assert inbound.end_reason == "remote_bye"
    assert legs and legs[0].end_reason == "bridged_leg_ended"
    assert server.ua.calls == {}


async def test_b2bua_bridges_a_leg_placed_elsewhere(
    server_factory: ServerFactory, sipp: Sipp, sipp_start: Sipp
) -> None:
    """bridge_legs: a caller who hears music on hold is bridged to a leg the application
    placed itself (an external transfer target): the music stops, the media is relayed,
    and when the caller hangs up the other leg gets BYE."""
    agent = await sipp_start(None, scenario="uas_b2bua_leg.xml", calls=1, timeout=40)
    seen: list[tuple[bool, bool]] = []
    legs: list[Call] = []

    async def transfer_out(call: Call) -> None:
        await call.answer()
        music = asyncio.ensure_future(call.media.play(b"\x00\x00" * 1600, loop=True))
        outbound = await server.ua.place_call(
            f"sip:agent@{agent.uri_host}",
            from_uri=f"sip:{call.ani}@127.0.0.1",
            headers={"X-Interaction-Id": "ix-7", "P-Asserted-Identity": f"<{call.from_uri}>"},
            media_near=call.media,
        )
        legs.append(outbound)
        bridge_legs(call, outbound)
        seen.append((await music, call.media.bridged_to is outbound.media))
        await call.ended.wait()

    server = await server_factory(transfer_out)
    caller = await sipp(server.uri_host, builtin="uac", calls=1, duration_ms=500, timeout=40)
    assert caller.returncode == 0, caller.errors or caller.stdout[-2000:]
    result = await agent.wait()
    assert result.returncode == 0, result.errors or result.stdout[-2000:]
    assert seen == [(False, True)]  # the looping music was cut short by the bridge
    assert server.calls[0].end_reason == "remote_bye"
    assert legs and legs[0].end_reason == "bridged_leg_ended"
    assert server.ua.calls == {}


async def test_in_dialog_info_hold_refer(server_factory: ServerFactory, sipp: Sipp) -> None:
    digits: list[tuple[str, str]] = []
    holds: list[bool] = []
    transfers: list[str] = []

    async def handler(call: Call) -> None:
        call.on_hold_changed = lambda _c, held: holds.append(held)

        async def transfer(_c: Call, target: str) -> int:
            transfers.append(target)
            return 200

        call.on_transfer = transfer
        await call.answer()
        call.media.on_dtmf = lambda digit, source: digits.append((digit, source))
        await call.ended.wait()

    server = await server_factory(handler)
    result = await sipp(server.uri_host, scenario="uac_in_dialog.xml", calls=1, timeout=30)
    assert result.returncode == 0, result.errors or result.stdout[-2000:]
    assert digits == [("5", "info")]
    assert holds == [True, False]
    assert transfers == ["sip:700@127.0.0.1"]
    assert server.calls[0].end_reason == "remote_bye"


async def test_session_interval_too_small_gets_422(server_factory: ServerFactory, sipp: Sipp) -> None:
    server = await server_factory(answer_and_wait)
    result = await sipp(server.uri_host, scenario="uac_session_too_small.xml", calls=1)
    assert result.returncode == 0, result.errors or result.stdout[-2000:]
    assert server.calls == []


async def test_media_timeout_hangs_up_silent_call(server_factory: ServerFactory, sipp: Sipp) -> None:
    """The caller sends no RTP: after media_timeout the server sends BYE (SIPp answers 200)."""
    server = await server_factory(answer_and_wait, media_timeout=0.5, sweep_interval=0.1)
    result = await sipp(server.uri_host, scenario="uac_server_bye.xml", calls=1, timeout=30)
    assert result.returncode == 0, result.errors or result.stdout[-2000:]
    assert server.calls[0].end_reason == "media_timeout"
    assert server.ua.stats["media_timeouts"] == 1


async def test_shutdown_sends_bye_to_active_calls(server_factory: ServerFactory, sipp_start: Sipp) -> None:
    answered = asyncio.Queue[Call]()

    async def handler(call: Call) -> None:
        await call.answer()
        await call.confirmed.wait()
        answered.put_nowait(call)
        await call.ended.wait()

    server = await server_factory(handler)
    caller = await sipp_start(server.uri_host, scenario="uac_server_bye.xml", calls=3, rate=20, timeout=30)
    for _ in range(3):
        await asyncio.wait_for(answered.get(), 20)
    await server.ua.stop()
    result = await caller.wait()
    assert result.returncode == 0, result.errors or result.stdout[-2000:]
    assert [c.end_reason for c in server.calls] == ["shutdown"] * 3


async def test_finished_calls_are_freed_without_gc(server_factory: ServerFactory, sipp: Sipp) -> None:
    """Per-call objects hold no reference cycles: with the cyclic GC off, they die on release."""
    refs: list[weakref.ref[Any]] = []

    async def handler(call: Call) -> None:
        refs.append(weakref.ref(call))
        refs.append(weakref.ref(call.media))
        await call.answer()
        await call.ended.wait()

    server = await server_factory(handler)
    server.calls = _NoKeep()  # the fixture must not keep calls alive for this test
    gc.collect()
    gc.disable()
    try:
        result = await sipp(server.uri_host, builtin="uac", calls=5, rate=20, duration_ms=200)
        assert result.returncode == 0, result.errors or result.stdout[-2000:]
        # The handlers have returned (transactions still alive for Timer J/K hold only
        # messages, never calls).
        assert await server.ua.wait_idle(5)
        alive = [r() for r in refs if r() is not None]
        assert len(refs) == 10
        assert alive == [], alive
    finally:
        gc.enable()


class _NoKeep(list):  # type: ignore[type-arg]
    def append(self, item: Any) -> None:
        pass


class _RawPeer(asyncio.DatagramProtocol):
    """A bare UDP SIP peer: sends the exact bytes we give it, queues what comes back."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait(data)

    async def next_status(self) -> int:
        data = await asyncio.wait_for(self.received.get(), 5)
        return int(data.split(b" ", 2)[1])


def _raw_invite(port: int, peer_port: int, method: str = "INVITE") -> bytes:
    return (
        f"{method} sip:600@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{peer_port};branch=z9hG4bKretrans1\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:alice@127.0.0.1:{peer_port}>;tag=rt1\r\n"
        f"To: <sip:600@127.0.0.1:{port}>\r\n"
        "Call-ID: retrans-test@127.0.0.1\r\n"
        f"CSeq: 1 {method}\r\n"
        f"Contact: <sip:alice@127.0.0.1:{peer_port}>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


async def test_retransmitted_invite_is_one_call(server_factory: ServerFactory) -> None:
    """A retransmitted INVITE replays the last provisional; it never makes a second call."""
    rang = asyncio.Event()

    async def ring(call: Call) -> None:
        await call.ringing()
        rang.set()
        await call.ended.wait()

    server = await server_factory(ring, trying_delay=0.0)  # 100 at once, then 180
    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_datagram_endpoint(_RawPeer, local_addr=("127.0.0.1", 0))
    try:
        peer_port = transport.get_extra_info("sockname")[1]
        dest = ("127.0.0.1", server.port)
        transport.sendto(_raw_invite(server.port, peer_port), dest)
        assert await peer.next_status() == 100
        await asyncio.wait_for(rang.wait(), 5)
        assert await peer.next_status() == 180
        transport.sendto(_raw_invite(server.port, peer_port), dest)  # retransmission
        assert await peer.next_status() == 180
        assert len(server.calls) == 1
        transport.sendto(_raw_invite(server.port, peer_port, "CANCEL"), dest)
        statuses = {await peer.next_status(), await peer.next_status()}
        assert statuses == {200, 487}
        await asyncio.wait_for(server.calls[0].ended.wait(), 5)
        assert server.calls[0].end_reason == "cancelled"
    finally:
        transport.close()


async def test_unrefreshed_session_timer_ends_call(server_factory: ServerFactory, sipp: Sipp) -> None:
    """RFC 4028 with a tiny Min-SE: no refresh within Session-Expires → the server sends BYE."""
    server = await server_factory(answer_and_wait, min_se=1, sweep_interval=0.1, media_timeout=0)
    result = await sipp(server.uri_host, scenario="uac_session_expires.xml", calls=1, timeout=30)
    assert result.returncode == 0, result.errors or result.stdout[-2000:]
    assert server.calls[0].end_reason == "session_expired"
    assert server.ua.stats["session_expired"] == 1


async def test_call_limit_sheds_load_with_503(server_factory: ServerFactory, sipp: Sipp) -> None:
    server = await server_factory(answer_and_wait, max_calls=0)
    result = await sipp(server.uri_host, scenario="uac_expect_503.xml", calls=2)
    assert result.returncode == 0, result.errors or result.stdout[-2000:]
    assert server.calls == []
    assert server.ua.stats["rejected_overload"] == 2
    assert server.engine.sessions == []


async def test_b2bua_caller_cancel_cancels_agent_leg(
    server_factory: ServerFactory, sipp: Sipp, sipp_start: Sipp
) -> None:
    """The agent rings (its 180 is relayed to the caller), the caller CANCELs, so the B2BUA
    CANCELs the agent's INVITE: both SIPp scenarios must complete."""
    agent = await sipp_start(None, scenario="uas_ring_cancel.xml", calls=1, timeout=30)
    outcome: list[str] = []

    async def route(call: Call) -> None:
        try:
            await bridge_call(server.ua, call, f"sip:agent@{agent.uri_host}")
        except CallFailed as exc:
            outcome.append(f"failed {exc.status}")

    server = await server_factory(route)
    caller = await sipp(server.uri_host, scenario="uac_cancel.xml", calls=1, timeout=30)
    assert caller.returncode == 0, caller.errors or caller.stdout[-2000:]
    result = await agent.wait()
    assert result.returncode == 0, result.errors or result.stdout[-2000:]
    assert await server.ua.wait_idle(5)
    assert outcome == ["failed 487"]
    assert server.calls[0].end_reason == "cancelled"
