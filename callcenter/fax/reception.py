"""Receiving one fax on a SIP call: T.30 over G.711 from the answer on, switched to T.38
when the caller re-INVITEs with ``m=image udptl t38`` (and T.38 is enabled; otherwise
no handler is installed and the re-INVITE gets 488 from the SIP layer, since the media
answers only audio).

The call's media is told to run a fax terminal (``media_port.start_fax``), so the audio
never reaches the IVR, a bridge or a recorder. The result arrives when T.30 ends (phase
E), or when the call ends first: the terminal is stopped then and reports "call dropped"
with the pages that had arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from callcenter.fax import t38_sdp
from callcenter.fax.media_port import forget, start_fax, stop_fax
from callcenter.fax.terminal import FaxJob, FaxResult
from callcenter.sip.calls import Call, CallError

log = logging.getLogger(__name__)
RESULT_AFTER_HANGUP_S = 5.0  # a worker's result after the call ended comes within a pipe round trip


@dataclass(frozen=True, slots=True)
class ReceiveOptions:
    ident: str = ""  # our CSI
    ecm: bool = True
    t38: bool = True  # accept a T.38 re-INVITE
    max_seconds: float = 600.0  # a session longer than this is ended (T.30's own timers end most)


async def receive(call: Call, path: str, options: ReceiveOptions, *, answer: bool = True) -> FaxResult:
    """Answer (unless already answered) and receive into ``path``; hangs up at the end."""
    job = FaxJob("receive", path, ident=options.ident, ecm=options.ecm)
    if answer:
        try:
            await call.answer()
        except CallError:
            return _dropped(path)
    media = call.media
    result_future = start_fax(media, job)
    if options.t38:
        def switch(c: Call, offer_text: str) -> str | None:
            offer = t38_sdp.parse_offer(offer_text)
            if offer is None:
                return None  # an audio re-offer (hold, new address): the media answers it
            start_fax(c.media, job, offer.remote)
            return t38_sdp.answer(offer, c.media.negotiator.advertise, c.media.local_port)

        call.on_offer = switch
    ended = asyncio.ensure_future(call.ended.wait())
    try:
        await asyncio.wait({result_future, ended}, timeout=options.max_seconds,
                           return_when=asyncio.FIRST_COMPLETED)
        if not result_future.done():
            stop_fax(media)  # call gone (or too long): the pages so far, as "call dropped"
        try:
            result = await asyncio.wait_for(asyncio.shield(result_future), RESULT_AFTER_HANGUP_S)
        except TimeoutError:
            log.error("fax on %s: no result from the media after the call ended", call.call_id)
            result = _dropped(path)
    finally:
        ended.cancel()
        call.on_offer = None
        forget(media)
    if call.is_active:
        with contextlib.suppress(CallError):
            await call.hangup("fax_done")
    return result


def _dropped(path: str) -> FaxResult:
    return FaxResult(ok=False, code=49, reason="The call dropped prematurely", pages=0, bit_rate=0,
                     ecm=False, x_dpi=0, y_dpi=0, width=0, remote_ident="", bad_rows=0, path=path)
