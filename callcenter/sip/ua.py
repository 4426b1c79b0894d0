"""The user-agent core: what the server does with each SIP request and response.

Requests come from the transport layer (``on_message``), pass through the
transaction layer (which absorbs retransmissions and sends 100 Trying for
INVITE) and are dispatched here by method. Checks run in the order of RFC 3261
8.2 so that the first problem found decides the answer:

0. a new INVITE from a source over its rate (``callcenter.sip.limits``) → 503 with
   Retry-After, or dropped unanswered once it floods; over its concurrent calls → 503
1. Max-Forwards 0 → 483 (ACK/CANCEL excepted)
2. method: unknown → 501, known but not served (SUBSCRIBE, PUBLISH, …) → 405 with Allow
3. Require with an option we lack → 420 with Unsupported (not for ACK/CANCEL)
4. To-tag present but no such dialog → 481; CANCEL for no transaction → 481
5. per method: INVITE (new call / re-INVITE), BYE, CANCEL (200 + 487), OPTIONS,
   INFO (dtmf-relay), REFER (202 + NOTIFY sipfrag), NOTIFY, REGISTER (registrar)

Calls are kept in one table keyed by (Call-ID, local tag). One sweep timer (not
a task per call) enforces the media timeout (no RTP for ``media_timeout`` s →
BYE) and RFC 4028 session expiry (no refresh within Session-Expires → BYE).

Signalling for in-dialog requests goes to the address the dialog's first
message came from (inbound) or went to (outbound) rather than the Contact
host: the same "symmetric" choice rport makes, so phones behind NAT work.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from callcenter.media.interface import MediaAllocator, MediaSession
from callcenter.sip.calls import Call, CallFailed, CallState, Direction, SipCredentials
from callcenter.sip.dialog import (
    is_sips,
    new_branch,
    new_call_id,
    new_tag,
    uri_address,
    uri_transport,
)
from callcenter.sip.limits import InviteLimiter, SourceLimits, Verdict, count_down
from callcenter.sip.message import SipMessage
from callcenter.sip.timers import Scheduler, SipTimers, TimerHandle
from callcenter.sip.transaction import ServerTransaction, TransactionLayer, new_request
from callcenter.sip.transport import SipTransportLayer, Transport, response_address
from callcenter.sip.uri import UriError
from callcenter.tasks import BackgroundTasks

if TYPE_CHECKING:
    from callcenter.sip.registrar import Registrar

log = logging.getLogger(__name__)

CallHandler = Callable[[Call], Awaitable[None]]

ALLOWED = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "REFER", "NOTIFY")
# Methods we recognise but do not serve: 405. Anything else: 501.
KNOWN_NOT_SERVED = ("SUBSCRIBE", "PUBLISH", "MESSAGE", "UPDATE", "PRACK")
SUPPORTED = ("timer",)
ACCEPT = "application/sdp, application/dtmf-relay, message/sipfrag"
IN_DIALOG_ONLY = ("BYE", "INFO", "REFER", "NOTIFY")


class UserAgent:
    """RFC 3261 UA core serving inbound calls and placing outbound ones.

    ``transports`` maps a transport name ("UDP", "TCP") to a
    :class:`~callcenter.sip.transport.Transport`; ``advertised`` maps the same names
    to the (host, port) written into Via/Contact.
    """

    def __init__(
        self,
        media_engine: MediaAllocator,
        *,
        on_call: CallHandler | None = None,
        registrar: Registrar | None = None,
        scheduler: Scheduler | None = None,
        timers: SipTimers | None = None,
        user_agent: str = "callcenter",
        contact_user: str = "callcenter",
        media_timeout: float = 60.0,
        session_expires: float = 1800.0,
        min_se: float = 90.0,
        sweep_interval: float = 1.0,
        trying_delay: float = 0.2,
        max_calls: int | None = None,
        source_limits: SourceLimits | None = SourceLimits(),  # noqa: B008 - frozen, shared safely
        media_near: Callable[[SipMessage], Any] | None = None,
    ) -> None:
        self.media_engine = media_engine
        # an incoming INVITE's leg is allocated near the session this names (the browser
        # phone gateway bridges its legs to the browser's line in the same media worker)
        self.media_near = media_near
        self.on_call = on_call
        self.registrar = registrar
        self._scheduler = scheduler
        self._timers = timers or SipTimers()
        self.user_agent = user_agent
        self.contact_user = contact_user
        self.media_timeout = media_timeout
        self.session_expires = session_expires
        self.min_se = min_se
        self.sweep_interval = sweep_interval
        self.trying_delay = trying_delay
        self.max_calls = max_calls
        # None: always healthy. Set by a cluster node (callcenter/cluster): OPTIONS answers 503
        # while it cannot reach Redis or PostgreSQL, so Kamailio's dispatcher probe skips it.
        self.healthy: Callable[[], bool] | None = None
        # per-source INVITE rate and concurrent calls (callcenter.sip.limits); None: off
        self.limiter = InviteLimiter(source_limits) if source_limits is not None else None
        self._calls_by_source: dict[str, int] = {}  # inbound calls up, by source IP
        self.transports: dict[str, Transport] = {}
        self.advertised: dict[str, tuple[str, int]] = {}
        self.calls: dict[tuple[str, str], Call] = {}
        self._invites: dict[tuple[str, ...], Call] = {}  # unanswered INVITE txn key → call
        self._transactions: TransactionLayer | None = None
        self._sweep_handle: TimerHandle | None = None
        # call handlers, REFER transfers, REGISTER lookups, sends that must wait
        self.tasks = BackgroundTasks(log)
        self._stopping = False
        self.stats = {
            "calls_in": 0,
            "calls_out": 0,
            "media_timeouts": 0,
            "session_expired": 0,
            "rejected_overload": 0,
            "rejected_source_rate": 0,
            "rejected_source_calls": 0,
            "dropped_source_flood": 0,
        }

    # wiring ------------------------------------------------------------------

    @property
    def transactions(self) -> TransactionLayer:
        if self._transactions is None:
            scheduler = self._scheduler or asyncio.get_running_loop()
            self._transactions = TransactionLayer(
                self._send, scheduler, self._timers, trying_delay=self.trying_delay
            )
        return self._transactions

    def add_transport(
        self, transport: Transport, advertised: tuple[str, int], name: str | None = None
    ) -> None:
        key = (name or transport.name).upper()
        self.transports[key] = transport
        self.advertised[key] = advertised

    def attach(self, transport_layer: SipTransportLayer) -> None:
        """Use every listener of a started :class:`~callcenter.sip.transport.SipTransportLayer`
        (create it with ``on_message=ua.on_message``)."""
        for transport in transport_layer.transports:
            if transport.name not in self.transports:
                self.add_transport(transport, transport.advertised, transport.name)

    async def start(self) -> None:
        _ = self.transactions
        self._arm_sweep()

    async def stop(self, timeout: float = 2.0) -> None:
        """Shutdown: BYE every answered call (CANCEL/480 the others), wait briefly for answers."""
        self._stopping = True
        pending: list[asyncio.Future[None]] = []
        for call in list(self.calls.values()) + list(self._invites.values()):
            if call.state is CallState.ANSWERED:
                fut = call.end_with_bye("shutdown")
                if fut is not None:
                    pending.append(fut)
            else:
                await call.hangup("shutdown")
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
            self._sweep_handle = None
        await self.tasks.close()
        if self._transactions is not None:
            self._transactions.close()

    async def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no call-handler task is running; False if some still are after ``timeout``."""
        tasks = self.tasks.snapshot()
        if not tasks:
            return True
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        return not pending

    @staticmethod
    def _send(transport: Transport, data: bytes, addr: tuple[str, int]) -> None:
        transport.send_nowait(data, addr)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        """Run ``coro`` as one of the UA's tasks: kept until done, a failure logged,
        waited for by :meth:`wait_idle`, cancelled by :meth:`stop`."""
        return self.tasks.spawn(coro, name)

    def contact_uri(self, transport: Transport, secure: bool = False) -> str:
        """Our Contact on ``transport``; ``secure``: the dialog is a SIPS one (its
        request was for a ``sips:`` URI), so the Contact must be ``sips:`` too (RFC 3261
        §8.1.1.8, §12.1.1). A plain dialog over TLS says ``;transport=tls``."""
        name = transport.name
        host, port = self.advertised.get(name) or next(iter(self.advertised.values()))
        if secure and name == "TLS":
            return f"sips:{self.contact_user}@{host}:{port}"
        suffix = "" if name == "UDP" else f";transport={name.lower()}"
        return f"sip:{self.contact_user}@{host}:{port}{suffix}"

    def via_value(self, transport: Transport) -> str:
        name = transport.name
        host, port = self.advertised.get(name) or next(iter(self.advertised.values()))
        return f"SIP/2.0/{name} {host}:{port};rport"

    def capability_headers(self) -> list[tuple[str, str]]:
        return [
            ("Allow", ", ".join(self._allowed())),
            ("Supported", ", ".join(SUPPORTED)),
        ]

    def options_headers(self) -> list[tuple[str, str]]:
        """What an OPTIONS request is answered with (in a dialog or outside)."""
        return [*self.capability_headers(), ("Accept", ACCEPT)]

    def _allowed(self) -> tuple[str, ...]:
        return (*ALLOWED, "REGISTER") if self.registrar is not None else ALLOWED

    # incoming ------------------------------------------------------------------

    def on_message(self, msg: SipMessage, addr: tuple[str, int], transport: Transport) -> None:
        """Entry point for every parsed message from the transport layer."""
        try:
            if msg.is_request:
                self._on_request(msg, addr, transport)
            else:
                self._on_response(msg)
        except Exception:
            # A bug for one message must not take the server down.
            log.exception("failed handling %s from %s", msg.method or msg.status, addr)

    def _on_response(self, msg: SipMessage) -> None:
        if self.transactions.receive_response(msg):
            return
        status = msg.status or 0
        if 200 <= status < 300 and msg.cseq[1] == "INVITE":
            # 2xx retransmission after the client transaction ended: re-ACK via the dialog.
            call = self.calls.get((msg.call_id, str(msg.from_.tag or "")))
            if call is not None:
                call.ack_again(msg)

    def _on_request(self, msg: SipMessage, addr: tuple[str, int], transport: Transport) -> None:
        layer = self.transactions
        method = msg.method or ""
        if method == "ACK":
            if not layer.absorb_ack(msg):
                call = self.calls.get((msg.call_id, str(msg.to.tag or "")))
                if call is not None:
                    call.handle_ack(msg)
            return
        source = addr
        if not transport.reliable:
            # RFC 3261 18.2.2 / RFC 3581: answer to received/rport (the source, behind NAT).
            addr = response_address(msg.vias[0], addr)
        verdict = Verdict.ADMIT
        limiter = self.limiter
        if (method == "INVITE" and limiter is not None and not limiter.exempt(source[0])
                and not msg.to.tag and not layer.is_retransmission(msg)):
            verdict = limiter.admit(source[0], time.monotonic())
            if verdict is Verdict.DROP:
                self.stats["dropped_source_flood"] += 1
                return  # a flood: no response, no transaction
        txn = layer.receive_request(msg, addr, transport)
        if txn is None:
            return  # retransmission, absorbed
        if verdict is Verdict.REFUSE:
            assert limiter is not None
            self.stats["rejected_source_rate"] += 1
            txn.reply(503, "Service Unavailable",
                      headers=[("Retry-After", str(limiter.limits.retry_after_s))])
            return
        try:
            self._dispatch(txn, msg, source, transport)
        except Exception:
            # A request never goes unanswered: its client would retransmit into the
            # same failure until Timer F/B (32 s).
            if not txn.final_sent:
                txn.reply(500, "Server Internal Error")
            raise

    def _dispatch(self, txn: ServerTransaction, msg: SipMessage, source: tuple[str, int],
                  transport: Transport) -> None:
        """A new request's checks in RFC 3261 8.2 order, then its method's handler."""
        method = msg.method or ""
        if msg.max_forwards == 0 and method != "CANCEL":
            txn.reply(483, "Too Many Hops")
            return
        if method not in self._allowed():
            if method in KNOWN_NOT_SERVED or method == "REGISTER":
                txn.reply(405, "Method Not Allowed", headers=[("Allow", ", ".join(self._allowed()))])
            else:
                txn.reply(501, "Not Implemented", headers=[("Allow", ", ".join(self._allowed()))])
            return
        if method != "CANCEL":
            unsupported = set(msg.header_tokens("Require")) - set(SUPPORTED)
            if unsupported:
                txn.reply(420, "Bad Extension", headers=[("Unsupported", ", ".join(sorted(unsupported)))])
                return
        if is_sips(msg.uri or "") and transport.name != "TLS":
            # a sips: request must have come over TLS on this hop (RFC 3261 §26.2.2)
            txn.reply(416, "Unsupported URI Scheme", headers=[("Warning", '399 - "sips: needs TLS"')])
            return
        if method == "CANCEL":
            self._on_cancel(txn)
            return
        if method == "REGISTER":
            self.spawn(self._register(txn, source), "REGISTER")
            return
        to_tag = msg.to.tag
        if to_tag:
            call = self.calls.get((msg.call_id, str(to_tag)))
            if call is None or call.dialog is None:
                txn.reply(481, "Call/Transaction Does Not Exist")
                return
            if call.dialog.accept_remote_cseq(msg):
                call.handle_request(txn)
            else:
                txn.reply(500, "CSeq Out Of Order")
            return
        if method in IN_DIALOG_ONLY:
            txn.reply(481, "Call/Transaction Does Not Exist")
            return
        if method == "OPTIONS":
            if self.healthy is not None and not self.healthy():  # a proxy's probe: send calls elsewhere
                txn.reply(503, "Service Unavailable", headers=[("Retry-After", "5")])
                return
            txn.reply(200, "OK", headers=self.options_headers())
            return
        if method == "INVITE":
            self._new_call(txn, source, transport)
            return
        txn.reply(481, "Call/Transaction Does Not Exist")

    async def _register(self, txn: ServerTransaction, source: tuple[str, int]) -> None:
        assert self.registrar is not None  # REGISTER is allowed only with a registrar
        try:
            response = await self.registrar.handle_register(
                txn.request, source, txn.transport.name.lower()
            )
        except Exception:
            log.exception("registrar failed on REGISTER from %s", source)
            txn.reply(500, "Server Internal Error")
            return
        txn.respond(response)

    def _on_cancel(self, txn: ServerTransaction) -> None:
        invite_txn = self.transactions.find_invite_for_cancel(txn.request)
        if invite_txn is None:
            txn.reply(481, "Call/Transaction Does Not Exist")
            return
        txn.reply(200, "OK")
        call = self._invites.get(invite_txn.key)
        if call is not None:
            call.handle_cancel()
        elif not invite_txn.final_sent:
            invite_txn.reply(487, "Request Terminated")

    def _new_call(self, txn: ServerTransaction, addr: tuple[str, int], transport: Transport) -> None:
        request = txn.request
        if self._stopping:
            txn.reply(503, "Service Unavailable", headers=[("Retry-After", "5")])
            return
        if self.on_call is None:
            txn.reply(480, "Temporarily Unavailable")
            return
        if self.max_calls is not None and len(self.calls) >= self.max_calls:
            # Shed load before it costs media: past this point every call makes RTP.
            self.stats["rejected_overload"] += 1
            txn.reply(503, "Service Unavailable", headers=[("Retry-After", "2")])
            return
        limiter = self.limiter
        calls_up = self._calls_by_source.get(addr[0], 0)
        if limiter is not None and not limiter.may_hold_another(addr[0], calls_up):
            self.stats["rejected_source_calls"] += 1
            txn.reply(503, "Service Unavailable",
                      headers=[("Retry-After", str(limiter.limits.retry_after_s))])
            return
        ctype = (request.headers.get("Content-Type") or "application/sdp").split(";", 1)[0]
        if request.body and ctype.strip().lower() != "application/sdp":
            txn.reply(415, "Unsupported Media Type", headers=[("Accept", "application/sdp")])
            return
        session_expires: float | None = None
        se_value = request.headers.get("Session-Expires")
        if se_value:
            try:
                session_expires = float(se_value.split(";", 1)[0].strip())
            except ValueError:
                txn.reply(400, "Bad Session-Expires")
                return
            if session_expires < self.min_se:
                txn.reply(422, "Session Interval Too Small", headers=[("Min-SE", str(int(self.min_se)))])
                return
            session_expires = min(session_expires, self.session_expires)
        try:
            near = self.media_near(request) if self.media_near is not None else None
            media = self.media_engine.allocate() if near is None else self.media_engine.allocate(near=near)
        except Exception:
            log.warning("no media port free for %s", request.call_id, exc_info=True)
            txn.reply(503, "Service Unavailable", headers=[("Retry-After", "5")])
            return
        with contextlib.ExitStack() as owned:
            # The port is ours until a Call takes it over: whatever goes wrong before
            # that (bad SDP, a request the parser let through but a header accessor
            # refuses, a bug) frees it and still answers, or every such INVITE leaks one.
            owned.callback(media.close)
            try:
                call = self._inbound_call(txn, media, addr, transport, session_expires)
            except ValueError as exc:
                log.info("malformed INVITE %s from %s: %s", request.call_id, addr, exc)
                txn.reply(400, "Bad Request")
                return
            except Exception:
                log.exception("INVITE %s from %s failed", request.call_id, addr)
                txn.reply(500, "Server Internal Error")
                return
            if call is None:
                txn.reply(488, "Not Acceptable Here", headers=[("Accept", "application/sdp")])
                return
            owned.pop_all()  # handed over: the call closes its media when it ends
        txn.on_timeout = None
        self.calls[(call.call_id, call.local_tag)] = call
        self._calls_by_source[addr[0]] = self._calls_by_source.get(addr[0], 0) + 1
        self._invites[txn.key] = call
        self.stats["calls_in"] += 1
        self.spawn(self._run_handler(call))

    def _inbound_call(
        self,
        txn: ServerTransaction,
        media: MediaSession,
        addr: tuple[str, int],
        transport: Transport,
        session_expires: float | None,
    ) -> Call | None:
        """The Call for a new INVITE on ``media``; None when its SDP offer is unusable."""
        request = txn.request
        if request.body:
            answer = media.answer(request.body.decode("utf-8", "replace"))
            if answer is None:
                return None
            local_sdp = answer.encode()
        else:
            local_sdp = media.offer().encode()  # late offer: the answer comes in the ACK
        return Call(
            self,
            direction=Direction.INBOUND,
            request=request,
            media=media,
            local_tag=new_tag(),
            peer_addr=addr,
            transport=transport,
            invite_txn=txn,
            local_sdp=local_sdp,
            session_expires=session_expires,
        )

    async def _run_handler(self, call: Call) -> None:
        handler = self.on_call
        try:
            assert handler is not None
            result = handler(call)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("call handler failed for %s", call.call_id)
            if call.is_active:
                await call.hangup("handler_error")
            return
        # A handler that returns without answering leaves nobody to do so.
        if call.state in (CallState.INCOMING, CallState.RINGING):
            await call.reject(480, "Temporarily Unavailable")

    # tables (a call takes itself out when it is answered or ends) -------------

    def forget_call(self, call: Call) -> None:
        key = (call.call_id, call.local_tag)
        if self.calls.get(key) is call:
            del self.calls[key]
            if call.direction is Direction.INBOUND:
                count_down(self._calls_by_source, call.peer_addr[0])

    def forget_invite(self, txn: ServerTransaction) -> None:
        """The INVITE is answered or gone: a CANCEL no longer finds its call."""
        self._invites.pop(txn.key, None)

    # outbound ----------------------------------------------------------------

    async def place_call(
        self,
        target_uri: str,
        *,
        from_uri: str | None = None,
        from_display: str | None = None,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        credentials: SipCredentials | tuple[str, str] | None = None,
        dest: tuple[str, int] | None = None,
        transport: str | None = None,
        timeout: float | None = 60.0,
        on_progress: Callable[[Call, int], None] | None = None,
        media_near: MediaSession | None = None,
    ) -> Call:
        """Call ``target_uri`` and return the answered call; raises CallFailed.

        ``dest`` overrides where the INVITE is sent (e.g. a registered phone's
        source address); otherwise the target URI's host/port. ``timeout`` is
        how long it may ring before we CANCEL (then CallFailed(487)).
        ``media_near`` is the media of the leg this call will be bridged to: with media
        in worker processes both legs must share one worker.
        """
        if self._stopping:
            raise CallFailed(503, "shutting down")
        try:
            name = (transport or uri_transport(target_uri)).upper()
            addr = dest or uri_address(target_uri)
        except (UriError, ValueError) as exc:
            raise CallFailed(400, f"bad target {target_uri!r}: {exc}") from exc
        sip_transport = self.transports.get(name)
        if sip_transport is None:
            raise CallFailed(503, f"no {name} transport")
        host = self.advertised[name][0]
        try:
            media = self.media_engine.allocate(near=media_near)
        except Exception as exc:  # no port free, or the leg to bridge to lost its media worker
            raise CallFailed(503, f"no media: {exc}") from exc
        offer = media.offer().encode()
        local_tag = new_tag()
        from_value = from_uri or f"sip:{self.contact_user}@{host}"
        display = f'"{from_display}" ' if from_display else ""
        items: list[tuple[str, str]] = [
            ("Via", f"{self.via_value(sip_transport)};branch={new_branch()}"),
            ("Max-Forwards", "70"),
            ("From", f"{display}<{from_value}>;tag={local_tag}"),
            ("To", f"<{target_uri}>"),
            ("Call-ID", new_call_id(host)),
            ("CSeq", "1 INVITE"),
            ("Contact", f"<{self.contact_uri(sip_transport, is_sips(target_uri))}>"),
            *self.capability_headers(),
            ("User-Agent", self.user_agent),
            ("Content-Type", "application/sdp"),
        ]
        if headers:
            items += list(headers.items()) if isinstance(headers, dict) else list(headers)
        invite = new_request("INVITE", target_uri, items, offer)
        if isinstance(credentials, tuple):
            credentials = SipCredentials(*credentials)
        call = Call(
            self,
            direction=Direction.OUTBOUND,
            request=invite,
            media=media,
            local_tag=local_tag,
            peer_addr=addr,
            transport=sip_transport,
            credentials=credentials,
            on_progress=on_progress,
        )
        self.stats["calls_out"] += 1
        # Known before it is answered, so shutdown can CANCEL it; in-dialog requests
        # still get 481 until the dialog exists.
        self.calls[(call.call_id, call.local_tag)] = call
        await call.dial(timeout)
        return call

    def build_invite_retry(self, invite: SipMessage, auth_header: str, auth_value: str) -> SipMessage:
        """The same INVITE with CSeq+1, a new branch and our digest answer (RFC 3261 22.2)."""
        headers = invite.headers.copy()
        via = headers.get_all("Via")[0]
        base = via.split(";branch=", 1)[0]
        headers.set_first("Via", f"{base};branch={new_branch()}")
        headers.set("CSeq", f"{invite.cseq[0] + 1} INVITE")
        headers.remove(auth_header)
        headers.add(auth_header, auth_value)
        return SipMessage(
            method="INVITE", uri=invite.uri, status=None, reason="", headers=headers, body=invite.body
        )

    def send_cancel(self, invite: SipMessage, addr: tuple[str, int], transport: Transport) -> None:
        """CANCEL an INVITE we sent (RFC 3261 9.1): its top Via/branch, CSeq number, Route."""
        items: list[tuple[str, str]] = [("Via", invite.headers.get_all("Via")[0])]
        items += [("Route", r) for r in invite.headers.get_all("Route")]
        items += [
            ("Max-Forwards", "70"),
            ("From", invite.headers.get("From") or ""),
            ("To", invite.headers.get("To") or ""),
            ("Call-ID", invite.call_id),
            ("CSeq", f"{invite.cseq[0]} CANCEL"),
        ]
        cancel = new_request("CANCEL", invite.uri or "", items)
        self.transactions.start_client(cancel, addr, transport, None, None)

    def ack_and_bye_stray(self, response: SipMessage, addr: tuple[str, int], transport: Transport) -> None:
        """ACK a 2xx we do not want (late or forked) and BYE it at once (RFC 3261 13.2.2.4)."""
        contacts = response.contacts
        target = str(contacts[0].uri) if contacts and contacts != "*" else ""
        if not target:
            return
        cseq = response.cseq[0]
        for method, num in (("ACK", cseq), ("BYE", cseq + 1)):
            items = [
                ("Via", f"{self.via_value(transport)};branch={new_branch()}"),
                ("Max-Forwards", "70"),
                ("From", response.headers.get("From") or ""),
                ("To", response.headers.get("To") or ""),
                ("Call-ID", response.call_id),
                ("CSeq", f"{num} {method}"),
            ]
            request = new_request(method, target, items)
            if method == "ACK":
                self._send(transport, request.to_bytes(), addr)
            else:
                self.transactions.start_client(request, addr, transport, None, None)

    # watchdog ----------------------------------------------------------------

    def _arm_sweep(self) -> None:
        scheduler = self._scheduler or asyncio.get_running_loop()
        self._sweep_handle = scheduler.call_later(self.sweep_interval, self._sweep)

    def _sweep(self) -> None:
        """One timer for all calls: media timeout and session-timer expiry → BYE."""
        self._sweep_handle = None
        now = time.monotonic()
        for call in list(self.calls.values()):
            if call.state is not CallState.ANSWERED:
                continue
            if call.session_deadline is not None and now > call.session_deadline:
                self.stats["session_expired"] += 1
                self._hangup_now(call, "session_expired")
                continue
            if self.media_timeout <= 0:
                continue
            last = max(call.media.last_rx or 0.0, call.answered_at or now)
            if now - last > self.media_timeout and not (call.on_hold or call.local_hold):
                self.stats["media_timeouts"] += 1
                self._hangup_now(call, "media_timeout")
        if not self._stopping:
            self._arm_sweep()

    def media_lost(self, sessions: list[Any]) -> None:
        """A media worker died: every call whose media it carried ends now (BYE, CANCEL or
        480 as its state asks) with reason ``media_failed``; the call handlers' end callbacks
        (the voice channel's) close what the calls belonged to."""
        lost = {id(s) for s in sessions}
        for call in list(self.calls.values()) + list(self._invites.values()):
            if id(call.media) in lost and call.state is not CallState.ENDED:
                log.warning("ending call %s: its media worker died", call.call_id)
                call.terminate("media_failed")

    @staticmethod
    def _hangup_now(call: Call, reason: str) -> None:
        log.info("ending call %s: %s", call.call_id, reason)
        call.end_with_bye(reason)


__all__ = ["Call", "CallFailed", "CallHandler", "SipCredentials", "UserAgent"]
