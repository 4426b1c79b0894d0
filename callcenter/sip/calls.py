"""The call object applications see: one SIP dialog with its media session.

An inbound call reaches the application's ``async def on_call(call)``; an
outbound one comes from ``await ua.place_call(...)``. Either way the
application uses the same small API::

    call.ani / call.dnis / call.from_uri / call.to_uri / call.headers
    await call.ringing(); await call.answer(); await call.reject(486)
    await call.hangup(); await call.ended.wait(); call.end_reason
    call.media                      # the media session (play, record, DTMF, bridge)
    call.on_hold_changed = fn(call, held)   # remote re-INVITE put us on/off hold
    await call.hold(True) / await call.hold(False)  # we hold/resume the far end (re-INVITE)
    call.on_transfer = async fn(call, target_uri) -> int  # REFER (blind transfer);
                                            # return the SIP status of the new leg
    call.add_end_callback(fn(call))
    call.on_progress = fn(call, status)     # outbound: 180/183 received (B2BUA rings the caller)

All SIP work is delegated to the user agent (:mod:`callcenter.sip.ua`). A call
keeps a reference to the UA and the UA to the call only while the call lives;
:meth:`Call._teardown` drops every link (UA tables, transactions, timers,
callbacks, media), so a finished call is freed by reference counting alone and
the cyclic garbage collector never has to run for it.

The UA drives a call only through its public entry points: the constructor
(everything the INVITE decided), :meth:`Call.dial` (outbound),
:meth:`Call.handle_request` / :meth:`Call.handle_ack` / :meth:`Call.handle_cancel`
(requests in the call), :meth:`Call.ack_again` (a retransmitted 2xx) and
:meth:`Call.end_with_bye` (media timeout, session expiry, shutdown); the call
reaches the UA only through the UA's public methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from callcenter.media.interface import MediaSession
from callcenter.sip.dialog import Dialog, DialogState, is_sips
from callcenter.sip.digest import AuthParseError, answer_challenge
from callcenter.sip.headers import Headers
from callcenter.sip.message import SipMessage, make_response
from callcenter.sip.transaction import (
    ClientTransaction,
    ServerTransaction,
    TransactionLayer,
    Uas2xxRetransmitter,
)
from callcenter.sip.transport import Transport
from callcenter.sip.uri import NameAddr, UriError

if TYPE_CHECKING:
    from callcenter.sip.ua import UserAgent

log = logging.getLogger(__name__)


class CallState(enum.Enum):
    INCOMING = "incoming"  # inbound INVITE received, not answered yet
    CALLING = "calling"  # outbound INVITE sent, no provisional yet
    RINGING = "ringing"  # provisional sent/received
    ANSWERED = "answered"  # 2xx sent/received: the dialog is confirmed
    ENDED = "ended"


class Direction(enum.Enum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class CallError(Exception):
    """An operation is not possible on this call."""


class CallFailed(CallError):
    """An outbound call did not connect (final status, or 408 on timeout)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SipCredentials:
    """Username/password for answering a far end's digest challenge (401/407)."""

    username: str
    password: str


# How often a re-INVITE answered 491 Request Pending is tried again before giving up.
MAX_GLARE_RETRIES = 3

TransferHandler = Callable[["Call", str], Awaitable[int]]
HoldHandler = Callable[["Call", bool], None]
EndCallback = Callable[["Call"], None]


def _user_of(uri: Any) -> str:
    user = getattr(uri, "user", None)
    return str(user) if user else ""


def sdp_is_hold(sdp: bytes) -> bool:
    """An offer puts us on hold when it says sendonly/inactive or has c=0.0.0.0 (RFC 3264 8.4)."""
    text = sdp.decode("utf-8", "replace")
    return "a=sendonly" in text or "a=inactive" in text or "c=IN IP4 0.0.0.0" in text


class Call:
    """One call leg (one dialog + one media session).

    Inbound, ``request`` is the INVITE received, ``invite_txn`` its server transaction
    and ``local_sdp`` our answer to its offer (or our offer, when it had none: the
    answer then comes in the ACK). Outbound, ``request`` is the INVITE :meth:`dial`
    sends, with the media's offer in it.
    """

    def __init__(
        self,
        ua: UserAgent,
        *,
        direction: Direction,
        request: SipMessage,
        media: MediaSession,
        local_tag: str,
        peer_addr: tuple[str, int],
        transport: Transport,
        invite_txn: ServerTransaction | None = None,
        local_sdp: bytes = b"",
        session_expires: float | None = None,
        credentials: SipCredentials | None = None,
        on_progress: Callable[[Call, int], None] | None = None,
    ) -> None:
        self.ua: UserAgent | None = ua
        self.direction = direction
        self.request = request
        self.call_id = request.call_id
        self.headers: Headers = request.headers
        self.from_uri = str(request.from_.uri)
        self.to_uri = str(request.to.uri)
        self.from_display = request.from_.display or ""
        self.ani = self._identity(request)
        self.dnis = self._dialled(request)
        self.media: MediaSession = media
        self.local_tag = local_tag
        self.peer_addr = peer_addr
        self.transport = transport
        # a SIPS dialog: our Contact must be sips: too (RFC 3261 §12.1.1)
        self.secure = is_sips(request.uri or "")
        self.state = CallState.INCOMING if direction is Direction.INBOUND else CallState.CALLING
        self.dialog: Dialog | None = None
        self.ended = asyncio.Event()
        # set when the dialog is confirmed: ACK received (inbound) / 2xx received (outbound)
        self.confirmed = asyncio.Event()
        self.end_reason = ""
        self.end_status: int | None = None
        self.created_at = time.monotonic()
        self.answered_at: float | None = None
        self.on_hold = False  # the far end holds us (its re-INVITE said sendonly/inactive)
        self.local_hold = False  # we hold the far end (our accepted re-INVITE said sendonly)
        self.on_hold_changed: HoldHandler | None = None
        self.on_transfer: TransferHandler | None = None
        # a re-INVITE's offer the application answers itself (a T.38 switch, callcenter/fax):
        # returns our answer SDP, or None to let the media answer it (488 when it cannot)
        self.on_offer: Callable[[Call, str], str | None] | None = None
        # outbound: called with each provisional status (180/183), e.g. to ring the A-leg
        self.on_progress = on_progress
        self.data: dict[str, Any] = {}  # application scratch space (interaction id, …)
        self._end_callbacks: list[EndCallback] = []
        inbound = direction is Direction.INBOUND
        # inbound
        self._invite_txn = invite_txn
        self._local_sdp = local_sdp
        self._awaiting_sdp_in_ack = inbound and not request.body  # late offer: we offered
        self._retx: Uas2xxRetransmitter | None = None
        self._retx_cseq = 0
        self.session_expires = session_expires
        self.session_deadline: float | None = None
        # outbound
        self._invite: SipMessage | None = None if inbound else request
        self._invite_client: ClientTransaction | None = None
        self._connected: asyncio.Future[None] | None = None
        self._got_provisional = False
        self._cancel_wanted = False
        self._cancel_sent = False
        self._auth_tries = 0
        self.credentials = credentials
        self._bye_done: asyncio.Future[None] | None = None
        # our re-INVITE (hold/resume): serialised by a lock, glare answered with 491
        self._reinvite_lock: asyncio.Lock | None = None
        self._reinvite_pending = False
        self._ack_seen: asyncio.Event | None = None  # set when their INVITE's 2xx is ACKed
        self._offers_answered = 0  # SDP offers from the far end we answered (re-INVITEs)

    # identity ---------------------------------------------------------------

    @staticmethod
    def _identity(request: SipMessage) -> str:
        """ANI: P-Asserted-Identity when present (trusted peer), else the From user."""
        pai = request.headers.get("P-Asserted-Identity")
        if pai:
            try:
                uri = NameAddr.parse(pai).uri
                user = _user_of(uri) or (uri.opaque or "")
                if user:
                    return user.split(";", 1)[0]
            except UriError:
                pass
        return _user_of(request.from_.uri)

    @staticmethod
    def _dialled(request: SipMessage) -> str:
        """DNIS: the Request-URI user (what was dialled), falling back to the To user."""
        try:
            user = _user_of(request.request_uri)  # parsed once, cached by the message
        except ValueError:
            user = ""
        return user or _user_of(request.to.uri)

    def __repr__(self) -> str:
        return f"<Call {self.direction.value} {self.call_id} {self.state.value}>"

    # application API ---------------------------------------------------------

    @property
    def is_active(self) -> bool:
        return self.state is not CallState.ENDED

    def add_end_callback(self, callback: EndCallback) -> None:
        if self.state is CallState.ENDED:
            callback(self)
        else:
            self._end_callbacks.append(callback)

    async def ringing(self, status: int = 180) -> None:
        """Send a provisional response (180 Ringing / 183) to an inbound call."""
        txn = self._require_unanswered_inbound()
        txn.respond(self._response(status))
        self.state = CallState.RINGING

    async def answer(self, headers: list[tuple[str, str]] | None = None) -> None:
        """Accept an inbound call (200 OK with our SDP). Raises CallError if it already ended."""
        txn = self._require_unanswered_inbound()
        ua = self.ua
        assert ua is not None
        extra = [("Content-Type", "application/sdp"), *ua.capability_headers()]
        if self.session_expires is not None:
            extra.append(("Session-Expires", f"{int(self.session_expires)};refresher=uac"))
            if "timer" in self.request.header_tokens("Supported"):
                extra.append(("Require", "timer"))
        if headers:
            extra += headers
        response = self._response(200, extra, self._local_sdp)
        self.dialog = Dialog.as_uas(self.request, self.local_tag, ua.contact_uri(self.transport, self.secure))
        self.dialog.state = DialogState.CONFIRMED
        txn.respond(response)
        self._invite_txn = None
        ua.forget_invite(txn)
        self._start_2xx_retransmission(response, txn)
        self.state = CallState.ANSWERED
        self.answered_at = time.monotonic()
        if self.session_expires is not None:
            self.session_deadline = self.answered_at + self.session_expires

    async def reject(self, status: int = 486, reason: str | None = None) -> None:
        """Refuse an inbound call with a final error status (default 486 Busy Here)."""
        if status < 300 or status > 699:
            raise ValueError("reject needs a 3xx-6xx status")
        txn = self._require_unanswered_inbound()
        txn.respond(self._response(status, reason=reason))
        self._finish(f"rejected {status}", status)

    async def hangup(self, reason: str = "local_hangup") -> None:
        """End the call whatever its state: BYE, CANCEL, or 480 for unanswered inbound."""
        self.terminate(reason)

    def terminate(self, reason: str = "local_hangup") -> None:
        """Synchronous :meth:`hangup`, usable from callbacks (e.g. the other B2BUA leg ended)."""
        if self.state is CallState.ENDED:
            return
        if self.direction is Direction.INBOUND and self.state in (
            CallState.INCOMING,
            CallState.RINGING,
        ):
            txn = self._invite_txn
            if txn is not None:
                txn.respond(self._response(480, reason="Temporarily Unavailable"))
            self._finish(reason, 480)
            return
        if self.direction is Direction.OUTBOUND and self.state in (
            CallState.CALLING,
            CallState.RINGING,
        ):
            self._cancel_outbound()
            self._finish(reason, 487)
            return
        self.end_with_bye(reason)

    def end_with_bye(self, reason: str) -> asyncio.Future[None] | None:
        """End the call now with BYE (the UA's media timeout, session expiry, shutdown);
        the returned future completes on the BYE's final response or timeout (None when
        there is no dialog to send it in)."""
        done = self.send_bye()
        self._finish(reason, None)
        return done

    async def wait_ended(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self.ended.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def send_info_dtmf(self, digit: str, duration_ms: int = 160) -> None:
        """Send a DTMF digit as SIP INFO application/dtmf-relay (for peers without RFC 4733)."""
        body = f"Signal={digit}\r\nDuration={duration_ms}\r\n".encode()
        self._send_in_dialog("INFO", [("Content-Type", "application/dtmf-relay")], body)

    async def transfer(self, target_uri: str) -> None:
        """Ask the far end to call ``target_uri`` instead (REFER, blind transfer)."""
        ua = self.ua
        assert ua is not None
        referred_by = ua.contact_uri(self.transport, self.secure)
        self._send_in_dialog("REFER", [("Refer-To", f"<{target_uri}>"), ("Referred-By", f"<{referred_by}>")])

    async def hold(self, on: bool, timeout: float = 32.0) -> bool:
        """Put the far end on hold (``on=True``) or take it off hold (``False``) with a re-INVITE.

        The offer is the media session's own (same port and codecs, ``o=`` version one
        higher, ``a=sendonly`` when holding, ``a=sendrecv`` when resuming). Returns True
        when the far end accepted it: the 2xx is ACKed, its answer applied and
        :attr:`local_hold` set to ``on``. Returns False, leaving the call as it was, when
        the call is not answered (or ended), the far end refused (any 3xx-6xx; 491 is
        retried after RFC 3261 14.1's random delay, up to ``MAX_GLARE_RETRIES`` times)
        or, having sent a provisional, gave no final answer within ``timeout`` seconds
        (per attempt; then the re-INVITE is CANCELled). A 408/481, or no response at all within
        ``timeout``, means the dialog is gone: the call is ended with BYE (RFC 3261
        12.2.1.2) and False returned. Calls are serialised per call; asking for the
        state the call is already in returns True without signalling.
        """
        if self._reinvite_lock is None:
            self._reinvite_lock = asyncio.Lock()
        async with self._reinvite_lock:
            if self.state is not CallState.ANSWERED:
                return False
            if on == self.local_hold:
                return True
            media = self.media
            previous = media.hold
            media.set_hold(on)
            accepted = False
            try:
                accepted = await self._reinvite_until_settled(timeout)
            finally:
                if accepted:
                    self.local_hold = on
                else:
                    media.set_hold(previous)  # offer refused: nothing changed
            return accepted

    async def _reinvite_until_settled(self, timeout: float) -> bool:
        offer = b""
        offered_at = -1
        for attempt in range(MAX_GLARE_RETRIES + 1):
            # RFC 3261 14.1: no new INVITE while theirs still awaits its ACK.
            if not await self._wait_their_invite_done(timeout):
                return False
            if offered_at != self._offers_answered:
                # a fresh offer only when the SDP moved on (their re-INVITE in between):
                # a retried offer keeps its o= version, so versions stay consecutive
                offer = self.media.offer().encode()
                offered_at = self._offers_answered
            response = await self._send_reinvite(offer, timeout)
            if self.state is not CallState.ANSWERED:
                return False
            status = (response.status or 0) if response is not None else 408
            if 200 <= status < 300:
                assert response is not None
                if not response.body:
                    log.warning("2xx to our re-INVITE without SDP on %s", self.call_id)
                    return False
                if not self.media.apply_answer(response.body.decode("utf-8", "replace")):
                    log.warning("unusable SDP answer to our re-INVITE on %s", self.call_id)
                    return False
                return True
            if status in (408, 481):
                # RFC 3261 12.2.1.2: the far end lost the dialog (or is gone): end it.
                log.info("re-INVITE got %s on %s: ending the call", status, self.call_id)
                self.send_bye()
                self._finish(f"reinvite_failed {status}", status)
                return False
            if status != 491 or attempt == MAX_GLARE_RETRIES:
                return False
            # RFC 3261 14.1: the Call-ID's owner waits 2.1-4 s, the other side 0-2 s,
            # in 10 ms units, so the two re-INVITEs do not collide again.
            owner = self.direction is Direction.OUTBOUND
            delay = random.randint(210, 400) / 100 if owner else random.randint(0, 200) / 100
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ended.wait(), delay)
            if self.state is not CallState.ANSWERED:
                return False
        return False

    async def _wait_their_invite_done(self, timeout: float) -> bool:
        """Wait until a re-INVITE from the far end is ACKed; False if the call ends or time runs out."""
        while self._retx is not None and self.state is CallState.ANSWERED:
            seen = self._ack_seen = asyncio.Event()
            try:
                await asyncio.wait_for(seen.wait(), timeout)
            except TimeoutError:
                return False
            finally:
                self._ack_seen = None
        return self.state is CallState.ANSWERED

    async def _send_reinvite(self, offer: bytes, timeout: float) -> SipMessage | None:
        """One re-INVITE transaction: its final response, or None when none came."""
        ua = self.ua
        dialog = self.dialog
        if ua is None or dialog is None:
            return None
        via = ua.via_value(self.transport)
        headers = [
            ("Content-Type", "application/sdp"),
            *ua.capability_headers(),
            ("User-Agent", ua.user_agent),
        ]
        request = dialog.create_request("INVITE", via=via, headers=headers, body=offer)
        layer = ua.transactions
        final: asyncio.Future[SipMessage | None] = asyncio.get_running_loop().create_future()
        tracker = ReinviteTracker(final, dialog, via, layer, self.transport, self.peer_addr)
        txn = layer.start_client(
            request, self.peer_addr, self.transport, tracker.on_response, tracker.on_timeout
        )
        self._reinvite_pending = True
        try:
            if await self._final_or_end(final, timeout):
                return final.result()
            if self.state is not CallState.ANSWERED:
                return None
            if not tracker.provisional:
                txn.cancel_timers_and_terminate()  # silent peer: stop retransmitting
                return None
            # It rings on (1xx) but does not decide: CANCEL (RFC 3261 9.1) and take its
            # final answer, normally 487, or a 2xx that crossed our CANCEL.
            ua.send_cancel(request, self.peer_addr, self.transport)
            if await self._final_or_end(final, layer.timers.timeout_64t1):
                return final.result()
            return None
        finally:
            self._reinvite_pending = False

    async def _final_or_end(self, final: asyncio.Future[SipMessage | None], timeout: float) -> bool:
        """True when ``final`` completed within ``timeout``; False on timeout or call end."""
        ended = asyncio.ensure_future(self.ended.wait())
        try:
            await asyncio.wait((final, ended), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
        return final.done()

    # helpers -----------------------------------------------------------------

    def _require_unanswered_inbound(self) -> ServerTransaction:
        if self.direction is not Direction.INBOUND:
            raise CallError("not an inbound call")
        if self.state is CallState.ENDED:
            raise CallError(f"call already ended ({self.end_reason})")
        txn = self._invite_txn
        if txn is None or self.state is CallState.ANSWERED:
            raise CallError("call already answered")
        return txn

    def _response(
        self,
        status: int,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        reason: str | None = None,
    ) -> SipMessage:
        extra: list[tuple[str, str]] = []
        ua = self.ua
        if ua is not None and status < 300:
            extra.append(("Contact", f"<{ua.contact_uri(self.transport, self.secure)}>"))
        if 100 < status < 300:  # dialog-forming: echo the proxies' Record-Route (RFC 3261 12.1.1)
            extra += [("Record-Route", v) for v in self.request.headers.get_all("Record-Route")]
        if headers:
            extra += headers
        return make_response(self.request, status, reason, to_tag=self.local_tag, headers=extra, body=body)

    def _start_2xx_retransmission(self, response: SipMessage, txn: ServerTransaction) -> None:
        ua = self.ua
        assert ua is not None
        if self._retx is not None:
            self._retx.stop()
        self._retx_cseq = response.cseq[0]  # the request's, echoed (the txn keeps no request)
        self._retx = Uas2xxRetransmitter(ua.transactions, response, txn.addr, txn.transport, self._no_ack)

    def _no_ack(self) -> None:
        """Timer H for our 2xx: the caller never ACKed; RFC 3261 13.3.1.4 says send BYE."""
        self._retx = None
        if self.state is CallState.ANSWERED:
            self.send_bye()
            self._finish("no_ack", 408)

    def send_bye(self) -> asyncio.Future[None] | None:
        """Send BYE in the dialog; the returned future completes on its final response/timeout."""
        ua = self.ua
        if ua is None or self.dialog is None:
            return None
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._bye_done = done

        def finished(_: SipMessage | None = None) -> None:
            if not done.done():
                done.set_result(None)

        def on_response(msg: SipMessage) -> None:
            if (msg.status or 0) >= 200:
                finished()

        self._send_in_dialog("BYE", None, b"", on_response, finished)
        return done

    def _send_in_dialog(
        self,
        method: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        on_response: Callable[[SipMessage], None] | None = None,
        on_timeout: Callable[[], None] | None = None,
    ) -> None:
        ua = self.ua
        dialog = self.dialog
        if ua is None or dialog is None:
            raise CallError("no dialog")
        request = dialog.create_request(method, via=ua.via_value(self.transport), headers=headers, body=body)
        ua.transactions.start_client(request, self.peer_addr, self.transport, on_response, on_timeout)

    # requests in the call (called by the UA) ---------------------------------

    def handle_request(self, txn: ServerTransaction) -> None:
        """A request in this call's dialog whose CSeq the dialog accepted."""
        method = txn.request.method
        if method == "BYE":
            txn.reply(200)
            self._finish("remote_bye", None)
        elif method == "INVITE":
            self._on_reinvite(txn)
        elif method == "INFO":
            self._on_info(txn)
        elif method == "REFER":
            self._on_refer(txn)
        elif method == "OPTIONS":
            ua = self.ua
            assert ua is not None
            txn.reply(200, "OK", headers=ua.options_headers())
        else:  # NOTIFY (e.g. for a REFER we sent) and anything else allowed
            txn.reply(200, "OK")

    def handle_ack(self, ack: SipMessage) -> None:
        """An ACK in this dialog (for our 2xx: it has no transaction)."""
        self.confirmed.set()
        retx = self._retx
        if retx is not None and ack.cseq[0] == self._retx_cseq:
            retx.stop()
            self._retx = None
            if self._ack_seen is not None:
                self._ack_seen.set()
        if self._awaiting_sdp_in_ack and ack.body:
            self._awaiting_sdp_in_ack = False
            self.media.apply_answer(ack.body.decode("utf-8", "replace"))

    def handle_cancel(self) -> None:
        """CANCEL matched our unanswered INVITE: 487 it and end the call."""
        txn = self._invite_txn
        if txn is not None and self.state in (CallState.INCOMING, CallState.RINGING):
            txn.respond(self._response(487, reason="Request Terminated"))
            self._finish("cancelled", 487)

    def _on_reinvite(self, txn: ServerTransaction) -> None:
        ua = self.ua
        assert ua is not None
        request = txn.request
        if self._reinvite_pending:
            # RFC 3261 14.2: glare, our own re-INVITE is in progress; the far end retries
            # after its random back-off (14.1) and ours goes on undisturbed.
            txn.reply(491, "Request Pending")
            return
        if self._retx is not None:
            # RFC 3261 14.2: a re-INVITE while ours/theirs is still unACKed → 500/491
            txn.reply(500, "Server Internal Error", headers=[("Retry-After", "1")])
            return
        if self.dialog is not None:
            self.dialog.refresh_target(request)
        offer = request.body
        answer: str | None
        self._offers_answered += 1
        if offer:
            text = offer.decode("utf-8", "replace")
            taken = self._offer_to_application(text)
            answer = taken if taken is not None else self.media.update(text)
            if answer is None:
                txn.reply(488, "Not Acceptable Here")
                return
            held = sdp_is_hold(offer) if taken is None else self.on_hold
            if held != self.on_hold:
                self.on_hold = held
                if self.on_hold_changed is not None:
                    try:
                        self.on_hold_changed(self, held)
                    except Exception:
                        log.exception("on_hold_changed handler failed for %s", self.call_id)
        else:
            answer = self.media.offer()
            self._awaiting_sdp_in_ack = True
        if self.session_expires is not None:
            self.session_deadline = time.monotonic() + self.session_expires
        extra = [("Content-Type", "application/sdp"), *ua.capability_headers()]
        if self.session_expires is not None:
            extra.append(("Session-Expires", f"{int(self.session_expires)};refresher=uac"))
        response = make_response(
            request,
            200,
            "OK",
            headers=[("Contact", f"<{ua.contact_uri(self.transport, self.secure)}>"), *extra],
            body=(answer or "").encode(),
        )
        txn.respond(response)
        self._start_2xx_retransmission(response, txn)

    def _offer_to_application(self, offer: str) -> str | None:
        handler = self.on_offer
        if handler is None:
            return None
        try:
            return handler(self, offer)
        except Exception:
            log.exception("on_offer handler failed for %s", self.call_id)
            return None

    def _on_info(self, txn: ServerTransaction) -> None:
        request = txn.request
        ctype = (request.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if not request.body:
            txn.reply(200)  # keepalive-style empty INFO
            return
        if ctype not in ("application/dtmf-relay", "application/dtmf"):
            txn.reply(415, "Unsupported Media Type", headers=[("Accept", "application/dtmf-relay")])
            return
        digit = _dtmf_from_info(ctype, request.body)
        if digit is None:
            txn.reply(400, "Bad DTMF")
            return
        txn.reply(200)
        self.media.feed_info_dtmf(digit)

    def _on_refer(self, txn: ServerTransaction) -> None:
        handler = self.on_transfer
        refer_to = txn.request.headers.get("Refer-To")
        if not refer_to:
            txn.reply(400, "Missing Refer-To")
            return
        try:
            target = str(NameAddr.parse(refer_to).uri)
        except UriError:
            txn.reply(400, "Bad Refer-To")
            return
        if handler is None:
            txn.reply(603, "Decline")
            return
        txn.reply(202, "Accepted")
        self._notify_refer(100, "Trying", active=True)
        ua = self.ua
        assert ua is not None
        ua.spawn(self._run_transfer(handler, target), f"transfer {self.call_id}")

    async def _run_transfer(self, handler: TransferHandler, target: str) -> None:
        try:
            status = await handler(self, target)
        except Exception:
            log.exception("transfer handler failed for %s", self.call_id)
            status = 503
        if self.state is CallState.ANSWERED:
            reason = {200: "OK", 202: "Accepted", 486: "Busy Here", 487: "Request Terminated"}
            self._notify_refer(status, reason.get(status, "Failed"), active=False)

    def _notify_refer(self, status: int, reason: str, *, active: bool) -> None:
        state = "active;expires=60" if active else "terminated;reason=noresource"
        body = f"SIP/2.0 {status} {reason}\r\n".encode()
        with contextlib.suppress(CallError):
            self._send_in_dialog(
                "NOTIFY",
                [
                    ("Event", "refer"),
                    ("Subscription-State", state),
                    ("Content-Type", "message/sipfrag;version=2.0"),
                ],
                body,
            )

    # outbound (UAC) ------------------------------------------------------------

    async def dial(self, timeout: float | None) -> None:
        """Send the INVITE and wait until it is answered. Raises CallFailed: the far
        end's final status, or 487 after CANCEL when it rings past ``timeout`` seconds;
        a cancelled wait CANCELs the INVITE too."""
        ua = self.ua
        invite = self._invite
        assert ua is not None and invite is not None and self._connected is None
        connected = self._connected = asyncio.get_running_loop().create_future()
        self._invite_client = ua.transactions.start_client(
            invite, self.peer_addr, self.transport, self._on_invite_response, self._on_invite_timeout
        )
        try:
            await asyncio.wait_for(asyncio.shield(connected), timeout)
        except TimeoutError:
            self.terminate("ring_timeout")
            _consume(connected)
            raise CallFailed(487, "no answer") from None
        except asyncio.CancelledError:
            self.terminate("cancelled")
            _consume(connected)
            raise

    def ack_again(self, response: SipMessage) -> None:
        """A 2xx to our INVITE retransmitted after its transaction ended: ACK it again."""
        if self.dialog is not None and self.direction is Direction.OUTBOUND:
            self._send_ack(response)

    def _cancel_outbound(self) -> None:
        """CANCEL our INVITE (RFC 3261 9.1); only after a provisional has arrived."""
        if not self._got_provisional:
            self._cancel_wanted = True  # sent when the first 1xx arrives
            return
        ua = self.ua
        invite = self._invite
        if ua is None or invite is None or self._cancel_sent:
            return
        self._cancel_sent = True
        ua.send_cancel(invite, self.peer_addr, self.transport)

    def _on_invite_response(self, response: SipMessage) -> None:
        ua = self.ua
        invite = self._invite
        if ua is None or invite is None:
            return
        status = response.status or 0
        if status < 200:
            self._got_provisional = True
            if self.state is CallState.CALLING:
                self.state = CallState.RINGING
            if self._cancel_wanted:
                self._cancel_wanted = False
                self._cancel_outbound()
            elif status > 100 and self.on_progress is not None:
                try:
                    self.on_progress(self, status)
                except Exception:
                    log.exception("on_progress handler failed for %s", self.call_id)
            return
        if status < 300:
            self._on_outbound_2xx(response)
            return
        if status in (401, 407) and self._retry_with_auth(response):
            return
        self._fail(status, response.reason or "")

    def _on_outbound_2xx(self, response: SipMessage) -> None:
        ua = self.ua
        invite = self._invite
        assert ua is not None and invite is not None
        if self.dialog is None:
            # (the UA has had us in its table, under our tag, since the INVITE went out)
            self.dialog = Dialog.as_uac(invite, response, ua.contact_uri(self.transport, self.secure))
        elif response.to.tag != self.dialog.remote_tag:
            # A second fork answered: ACK and BYE it, we already have our call.
            ua.ack_and_bye_stray(response, self.peer_addr, self.transport)
            return
        self._send_ack(response)
        if self.state is CallState.ENDED:
            # We gave up (CANCEL) but the 2xx crossed it: end the dialog properly.
            self.send_bye()
            return
        if self.state is not CallState.ANSWERED:
            if response.body:
                self.media.apply_answer(response.body.decode("utf-8", "replace"))
            self.state = CallState.ANSWERED
            self.answered_at = time.monotonic()
            self.confirmed.set()
            fut = self._connected
            if fut is not None and not fut.done():
                fut.set_result(None)

    def _send_ack(self, response: SipMessage) -> None:
        ua = self.ua
        dialog = self.dialog
        invite = self._invite
        if ua is None or dialog is None or invite is None:
            return
        # the response's CSeq: a late 2xx may answer a re-INVITE, not the first INVITE
        ack = dialog.create_request("ACK", via=ua.via_value(self.transport), cseq=response.cseq[0])
        ua.transactions.send(self.transport, ack.to_bytes(), self.peer_addr)

    def _retry_with_auth(self, response: SipMessage) -> bool:
        ua = self.ua
        invite = self._invite
        creds = self.credentials
        if ua is None or invite is None or creds is None or self._auth_tries >= 2:
            return False
        status = response.status or 0
        challenge_name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
        answer_name = "Authorization" if status == 401 else "Proxy-Authorization"
        challenges = response.headers.get_all(challenge_name)
        if not challenges or self.state is CallState.ENDED:
            return False
        try:
            value = answer_challenge(
                challenges,
                "INVITE",
                invite.uri or "",
                creds.username,
                creds.password,
                body=invite.body,
            )
        except AuthParseError:
            return False
        self._auth_tries += 1
        retry = ua.build_invite_retry(invite, answer_name, value)
        self._invite = retry
        self._got_provisional = False
        self._invite_client = ua.transactions.start_client(
            retry, self.peer_addr, self.transport, self._on_invite_response, self._on_invite_timeout
        )
        return True

    def _on_invite_timeout(self) -> None:
        self._fail(408, "Request Timeout")

    def _fail(self, status: int, reason: str) -> None:
        fut = self._connected
        if fut is not None and not fut.done():
            fut.set_exception(CallFailed(status, reason))
        self._finish(f"failed {status}", status)

    # end of life -------------------------------------------------------------

    def _finish(self, reason: str, status: int | None) -> None:
        """Mark the call ended, notify, and drop every reference (no cycles left)."""
        if self.state is CallState.ENDED:
            return
        self.state = CallState.ENDED
        self.end_reason = reason
        self.end_status = status
        fut = self._connected
        if fut is not None and not fut.done():
            fut.set_exception(CallFailed(status or 487, reason))
        callbacks, self._end_callbacks = self._end_callbacks, []
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                log.exception("end callback failed for %s", self.call_id)
        self.ended.set()
        if self._ack_seen is not None:
            self._ack_seen.set()
        self._teardown()

    def _teardown(self) -> None:
        if self._retx is not None:
            self._retx.stop()
            self._retx = None
        media = self.media
        try:
            media.unbridge()
        except Exception:
            log.debug("unbridge failed", exc_info=True)
        media.close()
        ua, self.ua = self.ua, None
        if ua is not None:
            ua.forget_call(self)
        txn, self._invite_txn = self._invite_txn, None
        if txn is not None and ua is not None:
            ua.forget_invite(txn)
        client, self._invite_client = self._invite_client, None
        if client is not None and ua is not None and not client.terminated:
            # A 1xx/2xx may still arrive after we gave up: let the UA CANCEL, or ACK
            # and BYE, without keeping this call alive.
            client.on_response = AbandonedInvite(
                ua, self._invite, self.peer_addr, self.transport, cancelled=self._cancel_sent
            )
            client.on_timeout = None
        self.on_transfer = None
        self.on_hold_changed = None
        self.on_progress = None


class ReinviteTracker:
    """Callbacks of one re-INVITE client transaction we sent.

    It resolves ``final`` with the final response (None on Timer B) and ACKs every 2xx,
    retransmissions included, for as long as the transaction lives (Timer M), even after
    :meth:`Call.hold` stopped waiting. It holds the dialog (strings only) and the
    transaction layer but never the call, so the call cannot end up in a cycle through it.
    """

    __slots__ = ("_ack", "addr", "dialog", "final", "layer", "provisional", "transport", "via")

    def __init__(
        self,
        final: asyncio.Future[SipMessage | None],
        dialog: Dialog,
        via: str,
        layer: TransactionLayer,
        transport: Transport,
        addr: tuple[str, int],
    ) -> None:
        self.final = final
        self.dialog = dialog
        self.via = via
        self.layer = layer
        self.transport = transport
        self.addr = addr
        self.provisional = False
        self._ack = b""

    def on_response(self, response: SipMessage) -> None:
        status = response.status or 0
        if status < 200:
            self.provisional = True
            return
        if status < 300:
            if not self._ack:
                # a 2xx to a re-INVITE refreshes the target (RFC 3261 12.2.1.2) before the ACK
                self.dialog.refresh_target(response)
                ack = self.dialog.create_request("ACK", via=self.via, cseq=response.cseq[0])
                self._ack = ack.to_bytes()
            self.layer.send(self.transport, self._ack, self.addr)
        # (3xx-6xx: the transaction itself ACKs them, RFC 3261 17.1.1.3)
        if not self.final.done():
            self.final.set_result(response)

    def on_timeout(self) -> None:
        if not self.final.done():
            self.final.set_result(None)


class AbandonedInvite:
    """Response handler for an INVITE whose call already ended (CANCELled, shut down)."""

    __slots__ = ("addr", "cancelled", "invite", "transport", "ua")

    def __init__(
        self,
        ua: UserAgent,
        invite: SipMessage | None,
        addr: tuple[str, int],
        transport: Transport,
        *,
        cancelled: bool,
    ) -> None:
        self.ua = ua
        self.invite = invite
        self.addr = addr
        self.transport = transport
        self.cancelled = cancelled

    def __call__(self, response: SipMessage) -> None:
        status = response.status or 0
        if status < 200:
            if not self.cancelled and self.invite is not None:
                self.cancelled = True
                self.ua.send_cancel(self.invite, self.addr, self.transport)
        elif status < 300:
            self.ua.ack_and_bye_stray(response, self.addr, self.transport)


def _consume(fut: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen (we report the failure another way)."""
    if fut.done() and not fut.cancelled():
        fut.exception()


def _dtmf_from_info(ctype: str, body: bytes) -> str | None:
    text = body.decode("utf-8", "replace").strip()
    if ctype == "application/dtmf":
        digit = text[:1]
    else:
        digit = ""
        for line in text.splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower() == "signal":
                digit = value.strip()
                break
    digit = digit.upper()
    if digit == "10":
        digit = "*"
    elif digit == "11":
        digit = "#"
    if len(digit) == 1 and digit in "0123456789*#ABCD":
        return digit
    return None
