"""UA core features against real SIPp peers: outbound calls with digest auth, CANCEL,
B2BUA bridging, in-dialog INFO/re-INVITE/REFER, session timers, media timeout, shutdown,
and freedom from reference cycles."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from callcenter.sip.b2bua import bridge_call
from callcenter.sip.calls import Call, CallFailed, CallState, SipCredentials

ServerFactory = Callable[..., Awaitable[Any]]
Sipp = Callable[..., Awaitable[Any]]


async def answer_and_wait(call: Call) -> None:
    await call.answer()
    await call.ended.wait()


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
        # Let the transaction timers that still hold messages (Timer J/I/K, ≤ 32 s) not matter:
        # transactions hold messages, not calls.
        await asyncio.sleep(0)
        alive = [r() for r in refs if r() is not None]
        assert len(refs) == 10
        assert alive == [], alive
    finally:
        gc.enable()


class _NoKeep(list):  # type: ignore[type-arg]
    def append(self, item: Any) -> None:
        pass
