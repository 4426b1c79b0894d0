"""Back-to-back user agent: bridge an inbound leg to a new outbound leg.

The one place for B2BUA behaviour: :func:`bridge_call` places the outbound leg and
bridges it; :func:`bridge_legs` bridges a leg placed some other way (an external
transfer target); :func:`tie_lifetimes` is the lifetime tie both use.

The server is a UA on both sides (two dialogs, two media sessions), not a
proxy: it places a fresh INVITE to the target (an agent's registered contact,
say), passes the caller's identity on (From user/display and
P-Asserted-Identity), adds headers such as ``X-Interaction-Id``, relays the
180 to the caller while the target rings, answers the caller when the target
answers, bridges the two RTP sessions (the media engine relays and transcodes
PCMU↔PCMA), and ties the two lifetimes: when either leg ends the other gets
BYE. If the caller hangs up while the target rings, the outbound INVITE is
CANCELled.

The legs reference each other only through end callbacks, and each call
drops its callbacks when it ends, so nothing is left in a cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from callcenter.sip.calls import Call, CallError, CallFailed, CallState, SipCredentials
from callcenter.sip.ua import UserAgent

log = logging.getLogger(__name__)


async def _ring(call: Call) -> None:
    with contextlib.suppress(CallError):
        await call.ringing(180)


def bridge_legs(inbound: Call, outbound: Call) -> None:
    """Connect two answered legs: stop what the caller hears (a prompt, music on hold),
    relay their media both ways, and end each when the other ends."""
    inbound.media.stop_playing()
    inbound.media.bridge(outbound.media)
    tie_lifetimes(inbound, outbound)
    log.info("bridged %s ↔ %s", inbound.call_id, outbound.call_id)


def tie_lifetimes(a: Call, b: Call) -> None:
    """When one leg ends, hang up the other."""

    def end_b(_: Call) -> None:
        b.terminate("bridged_leg_ended")

    def end_a(_: Call) -> None:
        a.terminate("bridged_leg_ended")

    a.add_end_callback(end_b)
    b.add_end_callback(end_a)


async def bridge_call(
    ua: UserAgent,
    inbound: Call,
    target_uri: str,
    *,
    dest: tuple[str, int] | None = None,
    headers: Mapping[str, str] | None = None,
    credentials: SipCredentials | tuple[str, str] | None = None,
    timeout: float = 30.0,
    pass_identity: bool = True,
    answer_inbound: bool = True,
) -> Call:
    """Call ``target_uri`` on behalf of ``inbound`` and bridge the two; returns the outbound leg.

    Raises :class:`CallFailed` when the target does not answer (the inbound leg
    is left as it was, so the application can try someone else) or when the
    caller hung up meanwhile (status 487).
    """
    if not inbound.is_active:
        raise CallFailed(487, "caller already gone")
    extra = dict(headers or {})
    from_uri = None
    display = None
    if pass_identity and inbound.ani:
        host = next(iter(ua.advertised.values()))[0]
        from_uri = f"sip:{inbound.ani}@{host}"
        display = inbound.from_display or None
        extra.setdefault("P-Asserted-Identity", f"<{inbound.from_uri}>")

    def ring_caller(_: Call, status: int) -> None:
        if status == 180 and inbound.state is CallState.INCOMING:
            ua.spawn(_ring(inbound), f"ring {inbound.call_id}")

    placing = asyncio.ensure_future(
        ua.place_call(
            target_uri,
            from_uri=from_uri,
            from_display=display,
            headers=list(extra.items()),
            credentials=credentials,
            dest=dest,
            timeout=timeout,
            on_progress=ring_caller,
            media_near=inbound.media,
        )
    )
    caller_gone = asyncio.ensure_future(inbound.ended.wait())
    try:
        await asyncio.wait({placing, caller_gone}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        placing.cancel()  # our caller gave up on the bridge: do not leave the agent ringing
        raise
    finally:
        caller_gone.cancel()
    if not placing.done():
        placing.cancel()  # place_call CANCELs the INVITE
        with contextlib.suppress(asyncio.CancelledError, CallFailed):
            await placing
        raise CallFailed(487, "caller hung up")
    outbound = placing.result()
    if not inbound.is_active:
        outbound.terminate("caller_gone")
        raise CallFailed(487, "caller hung up")
    if answer_inbound and inbound.state is not CallState.ANSWERED:
        try:
            await inbound.answer()
        except Exception:
            outbound.terminate("caller_gone")
            raise
    bridge_legs(inbound, outbound)
    return outbound


__all__ = ["bridge_call", "bridge_legs", "tie_lifetimes"]
