"""Our own re-INVITE (``Call.hold``) against real SIPp peers: hold and resume with the SDP
checked by SIPp, 491 Request Pending retried, a refused offer leaving the call as it was,
glare (their re-INVITE while ours is pending gets 491), and no reference cycles."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

from sip_helpers import ServerFactory, Sipp

from callcenter.sip.calls import Call, CallState


async def _call_sipp(server: Any, uas: Any) -> Call:
    return await asyncio.wait_for(
        server.ua.place_call(f"sip:agent@{uas.uri_host}", from_uri="sip:cc@127.0.0.1"), 10
    )


async def test_hold_and_resume_with_sendonly_then_sendrecv(
    server_factory: ServerFactory, sipp_start: Sipp
) -> None:
    server = await server_factory(None)
    uas = await sipp_start(None, scenario="uas_reinvite_hold.xml", calls=1, timeout=30)
    call = await _call_sipp(server, uas)
    media = call.media
    port = media.local_port

    assert await call.hold(True) is True
    assert call.local_hold is True and media.hold is True
    assert call.state is CallState.ANSWERED
    # SIPp answered recvonly: we keep sending (music on hold) to the same address
    assert media.remote is not None and media._send_ok is True
    assert await call.hold(True) is True  # already held: nothing is sent (SIPp would fail)

    assert await call.hold(False) is True
    assert call.local_hold is False and media.hold is False
    assert media.local_port == port

    await call.hangup()
    result = await uas.wait()
    assert result.returncode == 0, result.errors or result.stdout[-2000:]
    assert server.ua.calls == {}


async def test_491_is_retried_and_a_refused_offer_changes_nothing(
    server_factory: ServerFactory, sipp_start: Sipp
) -> None:
    server = await server_factory(None)
    uas = await sipp_start(None, scenario="uas_reinvite_491.xml", calls=1, timeout=30)
    call = await _call_sipp(server, uas)

    # first try: 491 (ACKed by the transaction); after RFC 3261 14.1's 2.1-4 s the same
    # offer again, this time answered 200
    assert await call.hold(True) is True
    assert call.local_hold is True

    # the resume offer is refused with 488: still held, still up
    assert await call.hold(False) is False
    assert call.local_hold is True and call.media.hold is True
    assert call.state is CallState.ANSWERED

    await call.hangup()
    result = await uas.wait()
    assert result.returncode == 0, result.errors or result.stdout[-2000:]


async def test_their_reinvite_during_ours_gets_491(server_factory: ServerFactory, sipp_start: Sipp) -> None:
    server = await server_factory(None)
    uas = await sipp_start(None, scenario="uas_reinvite_glare.xml", calls=1, timeout=30)
    call = await _call_sipp(server, uas)
    held: list[bool] = []
    call.on_hold_changed = lambda _call, on: held.append(on)

    assert await call.hold(True) is True  # SIPp sent its own re-INVITE before answering ours
    assert call.local_hold is True
    assert held == []  # their crossing offer was refused with 491, not applied

    await call.hangup()
    result = await uas.wait()
    assert result.returncode == 0, result.errors or result.stdout[-2000:]


async def test_reinvite_without_answer_ends_the_call(server_factory: ServerFactory, sipp_start: Sipp) -> None:
    """No response at all within the timeout: the dialog is presumed gone (RFC 3261
    12.2.1.2), so the call ends with BYE and hold() says False."""
    server = await server_factory(None)
    uas = await sipp_start(None, scenario="uas_reinvite_silent.xml", calls=1, timeout=30)
    call = await _call_sipp(server, uas)

    assert await call.hold(True, timeout=1.5) is False
    assert call.state is CallState.ENDED
    assert call.end_reason == "reinvite_failed 408"
    result = await uas.wait()
    assert result.returncode == 0, result.errors or result.stdout[-2000:]


async def test_ringing_reinvite_is_cancelled_and_the_call_goes_on(
    server_factory: ServerFactory, sipp_start: Sipp
) -> None:
    """A provisional but no final answer within the timeout: CANCEL, 487 (ACKed by the
    transaction), hold() says False and the call stays up and unheld."""
    server = await server_factory(None)
    uas = await sipp_start(None, scenario="uas_reinvite_cancel.xml", calls=1, timeout=30)
    call = await _call_sipp(server, uas)

    assert await call.hold(True, timeout=1.0) is False
    assert call.state is CallState.ANSWERED
    assert call.local_hold is False and call.media.hold is False

    await call.hangup()
    result = await uas.wait()
    assert result.returncode == 0, result.errors or result.stdout[-2000:]


async def test_held_call_is_freed_without_gc(server_factory: ServerFactory, sipp_start: Sipp) -> None:
    server = await server_factory(None)
    uas = await sipp_start(None, scenario="uas_reinvite_hold.xml", calls=1, timeout=30)
    gc.collect()
    gc.disable()
    try:
        call = await _call_sipp(server, uas)
        assert await call.hold(True) is True
        assert await call.hold(False) is True
        await call.hangup()
        result = await uas.wait()
        assert result.returncode == 0, result.errors or result.stdout[-2000:]
        refs = [weakref.ref(call), weakref.ref(call.media)]
        del call
        # the re-INVITE transactions may linger (Timer M) but hold only the tracker,
        # never the call
        alive = [r() for r in refs if r() is not None]
        assert alive == [], alive
    finally:
        gc.enable()
