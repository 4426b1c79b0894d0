"""RFC 3261 section 17 transactions (with the RFC 6026 corrections).

Four small state machines — client/server × INVITE/non-INVITE — and a
:class:`TransactionLayer` that matches incoming messages to them.

Design decisions (and why):

* **2xx to INVITE is retransmitted by the TU, per RFC 6026** (not by the server
  INVITE transaction as the original RFC 3261 text says). On a 2xx the server
  transaction moves to *Accepted*, absorbs INVITE retransmissions for Timer L
  (64*T1) and ends; the UA core (:class:`Uas2xxRetransmitter`, used by the
  dialog code) resends the 2xx with Timer G spacing (T1, doubling, capped at T2)
  until the ACK arrives, giving up after Timer H (64*T1). An ACK for a 2xx is
  its own transaction-less request, routed to the dialog, so the dialog is where
  it is recognised. Likewise the client INVITE transaction enters *Accepted*
  after a 2xx (Timer M) and hands 2xx retransmissions to the TU, which re-ACKs.
* **One loop timer per armed RFC timer** (``scheduler.call_later``), no task per
  transaction. Retransmissions resend the bytes serialized once.
* **No reference cycles survive termination**: a transaction references its TU
  callbacks and its timer handles; termination cancels the timers, drops the
  callbacks and removes the transaction from the layer's tables, so plain
  reference counting frees everything without the cyclic GC.
* ``100 Trying`` for INVITE is sent by the transaction when the TU has not
  responded within ``trying_delay`` (RFC 3261 17.2.1's 200 ms), at once when the
  caller retransmits first, or immediately when ``trying_delay`` is 0.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import Any

from callcenter.sip.message import SipMessage, make_response, new_tag
from callcenter.sip.timers import Scheduler, SipTimers, TimerHandle
from callcenter.sip.transport import Transport

log = logging.getLogger(__name__)

MAGIC_COOKIE = "z9hG4bK"

Address = tuple[str, int]
# send(transport, data, addr): fire-and-forget datagram/stream write.
SendFn = Callable[[Transport, bytes, Address], None]
ResponseCallback = Callable[[SipMessage], None]
TimeoutCallback = Callable[[], None]


class State(enum.Enum):
    TRYING = "trying"
    CALLING = "calling"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


def server_key(msg: SipMessage) -> tuple[str, ...]:
    """Server transaction key (RFC 3261 17.2.3); an ACK keys onto its INVITE."""
    method = msg.method or ""
    if method == "ACK":
        method = "INVITE"
    via = msg.vias[0]
    branch = str(via.params.get("branch") or "")
    sent_by = f"{via.host}:{via.port or ''}".lower()
    if branch.startswith(MAGIC_COOKIE):
        return (branch, sent_by, method)
    # RFC 2543 peers: no reliable branch; fall back to the dialog-ish identity.
    cseq_num, _ = msg.cseq
    return ("2543", msg.call_id, str(msg.from_.tag or ""), str(cseq_num), sent_by, method)


def client_key(branch: str, method: str) -> tuple[str, str]:
    """Client transaction key (RFC 3261 17.1.3): branch + CSeq method."""
    return (branch, "INVITE" if method == "ACK" else method)


class _Transaction:
    """Shared plumbing: sending, timers, termination and teardown."""

    __slots__ = (
        "__weakref__",
        "_timers",
        "addr",
        "key",
        "layer",
        "method",
        "reliable",
        "request",
        "state",
        "transport",
    )

    def __init__(
        self, layer: TransactionLayer, request: SipMessage, addr: Address, transport: Transport
    ) -> None:
        self.layer: TransactionLayer | None = layer
        self.request = request
        self.method = request.method or ""
        self.addr = addr
        self.transport = transport
        # stream transports (TCP) retransmit themselves: no Timer A/E/G
        self.reliable = transport.reliable
        self.state = State.TRYING
        self.key: tuple[str, ...] = ()
        self._timers: dict[str, TimerHandle] = {}

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    def _send(self, data: bytes) -> None:
        if self.layer is not None:
            self.layer.send(self.transport, data, self.addr)

    def _arm(self, name: str, delay: float, callback: Callable[..., None], *args: Any) -> None:
        self._cancel(name)
        if self.layer is None:
            return
        self._timers[name] = self.layer.scheduler.call_later(delay, self._fire, name, callback, args)

    def _fire(self, name: str, callback: Callable[..., None], args: tuple[Any, ...]) -> None:
        # Forget the handle first: a fired handle must not keep us alive.
        self._timers.pop(name, None)
        if self.state is not State.TERMINATED:
            callback(*args)

    def _cancel(self, name: str) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def _terminate(self) -> None:
        if self.state is State.TERMINATED:
            return
        self.state = State.TERMINATED
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        layer, self.layer = self.layer, None
        if layer is not None:
            layer._forget(self)
        self._drop_callbacks()

    def _drop_callbacks(self) -> None:
        """Break links to the TU (overridden)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} {self.state.value} {self.key!r}>"


# --------------------------------------------------------------------------- server


class ServerTransaction(_Transaction):
    """Base for server transactions: the TU answers with :meth:`respond`."""

    __slots__ = ("final_status", "last_response_bytes", "on_timeout")

    def __init__(
        self, layer: TransactionLayer, request: SipMessage, addr: Address, transport: Transport
    ) -> None:
        super().__init__(layer, request, addr, transport)
        self.key = server_key(request)
        self.final_status = 0  # the final response's status, once sent
        self.last_response_bytes = b""
        # Called when the transaction fails (Timer H: no ACK for our error response).
        self.on_timeout: TimeoutCallback | None = None

    def _drop_callbacks(self) -> None:
        self.on_timeout = None

    def _store_and_send(self, response: SipMessage) -> None:
        self.last_response_bytes = response.to_bytes()
        if (response.status or 0) >= 200:
            self.final_status = response.status or 0
            # From here on only the response's bytes are needed (for retransmitted
            # requests), but Timer J/L/H keep the transaction up to 32 s: let the parsed
            # request go, or at a few thousand requests/s millions of objects wait in memory
            # and every full garbage collection walks them (a 1.4 s pause was measured in
            # bench/sip_register.py). ``reply`` after this is ignored, as ``respond`` was.
            self.request = None  # type: ignore[assignment]
        self._send(self.last_response_bytes)

    def respond(self, response: SipMessage) -> None:
        raise NotImplementedError

    def reply(self, status: int, reason: str | None = None, **kwargs: Any) -> None:
        """Build a response to our request with ``make_response`` and send it."""
        if self.final_status:
            log.debug("%r: %s after the final response ignored", self, status)
            return
        if status > 100 and "to_tag" not in kwargs and self.request.to.tag is None:
            # RFC 3261 8.2.6.2: every non-100 response carries a To tag.
            kwargs["to_tag"] = new_tag()
        self.respond(make_response(self.request, status, reason, **kwargs))

    def receive_retransmission(self, msg: SipMessage) -> None:
        raise NotImplementedError

    @property
    def final_sent(self) -> bool:
        return self.final_status >= 200


class ServerInviteTransaction(ServerTransaction):
    """RFC 3261 17.2.1 with RFC 6026's Accepted state."""

    __slots__ = ("_g_interval",)

    def __init__(
        self, layer: TransactionLayer, request: SipMessage, addr: Address, transport: Transport
    ) -> None:
        super().__init__(layer, request, addr, transport)
        self.state = State.PROCEEDING
        self._g_interval = layer.timers.t1

    def _send_trying(self) -> None:
        if not self.last_response_bytes and self.state is State.PROCEEDING:
            self.respond(make_response(self.request, 100, "Trying"))

    def respond(self, response: SipMessage) -> None:
        status = response.status or 0
        if self.state is State.PROCEEDING:
            self._cancel("trying")
            self._store_and_send(response)
            if status < 200:
                return
            layer = self.layer
            assert layer is not None
            if status < 300:
                self.state = State.ACCEPTED
                self._arm("L", layer.timers.timeout_64t1, self._terminate)
            else:
                self.state = State.COMPLETED
                if not self.reliable:
                    self._g_interval = layer.timers.t1
                    self._arm("G", self._g_interval, self._timer_g)
                self._arm("H", layer.timers.timeout_64t1, self._timer_h)
        elif self.state is State.ACCEPTED and 200 <= status < 300:
            # TU retransmitting its 2xx (RFC 6026 7.1).
            self._send(response.to_bytes())
        else:
            log.debug("%r: response %s ignored in state %s", self, status, self.state.value)

    def receive_retransmission(self, msg: SipMessage) -> None:
        if msg.method == "ACK":
            if self.state is State.COMPLETED:
                self.state = State.CONFIRMED
                self._cancel("G")
                self._cancel("H")
                layer = self.layer
                assert layer is not None
                delay = 0.0 if self.reliable else layer.timers.t4
                self._arm("I", delay, self._terminate)
            # ACK in Accepted is for a 2xx: the layer routes it to the TU instead.
            return
        if self.state is State.PROCEEDING and not self.last_response_bytes:
            self._send_trying()  # the caller retransmits: our delayed 100 is due now
        elif self.state in (State.PROCEEDING, State.COMPLETED) and self.last_response_bytes:
            self._send(self.last_response_bytes)
        # Accepted: absorbed; the TU's own 2xx retransmission covers it (RFC 6026).

    def _timer_g(self) -> None:
        if self.state is not State.COMPLETED:
            return
        self._send(self.last_response_bytes)
        layer = self.layer
        assert layer is not None
        self._g_interval = min(2 * self._g_interval, layer.timers.t2)
        self._arm("G", self._g_interval, self._timer_g)

    def _timer_h(self) -> None:
        callback = self.on_timeout
        self._terminate()
        if callback is not None:
            callback()


class ServerNonInviteTransaction(ServerTransaction):
    """RFC 3261 17.2.2."""

    __slots__ = ()

    def respond(self, response: SipMessage) -> None:
        status = response.status or 0
        if self.state not in (State.TRYING, State.PROCEEDING):
            log.debug("%r: response %s ignored in state %s", self, status, self.state.value)
            return
        self._store_and_send(response)
        if status < 200:
            self.state = State.PROCEEDING
            return
        self.state = State.COMPLETED
        layer = self.layer
        assert layer is not None
        delay = 0.0 if self.reliable else layer.timers.timeout_64t1
        self._arm("J", delay, self._terminate)

    def receive_retransmission(self, msg: SipMessage) -> None:
        if self.state in (State.PROCEEDING, State.COMPLETED) and self.last_response_bytes:
            self._send(self.last_response_bytes)


# --------------------------------------------------------------------------- client


class ClientTransaction(_Transaction):
    """Base for client transactions: the TU gets responses and timeouts by callback."""

    __slots__ = ("_interval", "_request_bytes", "branch", "on_response", "on_timeout")

    def __init__(
        self,
        layer: TransactionLayer,
        request: SipMessage,
        addr: Address,
        transport: Transport,
        on_response: ResponseCallback | None,
        on_timeout: TimeoutCallback | None = None,
    ) -> None:
        super().__init__(layer, request, addr, transport)
        self.branch = str(request.vias[0].params.get("branch") or "")
        self.key = client_key(self.branch, request.method or "")
        self.on_response = on_response
        self.on_timeout = on_timeout
        self._request_bytes = b""
        self._interval = layer.timers.t1

    def _drop_callbacks(self) -> None:
        self.on_response = None
        self.on_timeout = None

    def start(self) -> None:
        raise NotImplementedError

    def receive_response(self, response: SipMessage) -> None:
        raise NotImplementedError

    def _deliver(self, response: SipMessage) -> None:
        if self.on_response is not None:
            self.on_response(response)

    def _timed_out(self) -> None:
        callback = self.on_timeout
        self._terminate()
        if callback is not None:
            callback()

    def cancel_timers_and_terminate(self) -> None:
        """Used by the TU when it abandons the transaction (e.g. shutdown)."""
        self._terminate()


class ClientInviteTransaction(ClientTransaction):
    """RFC 3261 17.1.1 with RFC 6026's Accepted state (Timer M)."""

    __slots__ = ()

    def start(self) -> None:
        layer = self.layer
        assert layer is not None
        self.state = State.CALLING
        self._request_bytes = self.request.to_bytes()
        self._send(self._request_bytes)
        if not self.reliable:
            self._interval = layer.timers.t1
            self._arm("A", self._interval, self._timer_a)
        self._arm("B", layer.timers.timeout_64t1, self._timed_out)

    def _timer_a(self) -> None:
        if self.state is not State.CALLING:
            return
        self._send(self._request_bytes)
        self._interval *= 2  # Timer A doubles without the T2 cap (RFC 3261 17.1.1.2).
        self._arm("A", self._interval, self._timer_a)

    def receive_response(self, response: SipMessage) -> None:
        status = response.status or 0
        layer = self.layer
        if layer is None:
            return
        if self.state in (State.CALLING, State.PROCEEDING):
            if status < 200:
                self.state = State.PROCEEDING
                self._cancel("A")
                self._cancel("B")
                self._deliver(response)
            elif status < 300:
                self.state = State.ACCEPTED
                self._cancel("A")
                self._cancel("B")
                self._arm("M", layer.timers.timeout_64t1, self._terminate)
                self._deliver(response)
            else:
                self.state = State.COMPLETED
                self._cancel("A")
                self._cancel("B")
                self._request_bytes = build_non2xx_ack(self.request, response).to_bytes()
                self._send(self._request_bytes)
                self._arm("D", layer.timers.timer_d(self.reliable), self._terminate)
                self._deliver(response)
        elif self.state is State.ACCEPTED and 200 <= status < 300:
            self._deliver(response)  # TU re-sends its ACK for the retransmitted 2xx
        elif self.state is State.COMPLETED and status >= 300:
            self._send(self._request_bytes)  # retransmitted final: resend the ACK only


class ClientNonInviteTransaction(ClientTransaction):
    """RFC 3261 17.1.2."""

    __slots__ = ()

    def start(self) -> None:
        layer = self.layer
        assert layer is not None
        self.state = State.TRYING
        self._request_bytes = self.request.to_bytes()
        self._send(self._request_bytes)
        if not self.reliable:
            self._interval = layer.timers.t1
            self._arm("E", self._interval, self._timer_e)
        self._arm("F", layer.timers.timeout_64t1, self._timed_out)

    def _timer_e(self) -> None:
        layer = self.layer
        if layer is None or self.state not in (State.TRYING, State.PROCEEDING):
            return
        self._send(self._request_bytes)
        if self.state is State.TRYING:
            self._interval = min(2 * self._interval, layer.timers.t2)
        else:
            self._interval = layer.timers.t2
        self._arm("E", self._interval, self._timer_e)

    def receive_response(self, response: SipMessage) -> None:
        status = response.status or 0
        layer = self.layer
        if layer is None or self.state not in (State.TRYING, State.PROCEEDING):
            return  # Completed: retransmitted final responses are absorbed
        if status < 200:
            self.state = State.PROCEEDING
            self._deliver(response)
            return
        self.state = State.COMPLETED
        self._cancel("E")
        self._cancel("F")
        delay = 0.0 if self.reliable else layer.timers.t4
        self._arm("K", delay, self._terminate)
        self._deliver(response)


def build_non2xx_ack(invite: SipMessage, response: SipMessage) -> SipMessage:
    """ACK for a 3xx-6xx (RFC 3261 17.1.1.3): same branch, To from the response."""
    headers: list[tuple[str, str]] = [("Via", invite.headers.get_all("Via")[0])]
    for route in invite.headers.get_all("Route"):
        headers.append(("Route", route))
    headers += [
        ("Max-Forwards", "70"),
        ("From", invite.headers.get("From") or ""),
        ("To", response.headers.get("To") or ""),
        ("Call-ID", invite.call_id),
        ("CSeq", f"{invite.cseq[0]} ACK"),
    ]
    return new_request("ACK", invite.uri or "", headers)


def new_request(method: str, uri: str, headers: list[tuple[str, str]], body: bytes = b"") -> SipMessage:
    """Build a request message from ordered (name, value) pairs."""
    return SipMessage.request(method, uri, headers, body)


# --------------------------------------------------------------------------- layer


class TransactionLayer:
    """Holds live transactions and matches incoming messages to them.

    ``send(transport, data, addr)`` must not block (a UDP sendto or a stream
    write). The TU registers ``on_request`` (new server transactions),
    ``on_ack`` (ACKs matching no transaction: ACK for a 2xx) and
    ``on_stray_response`` (responses matching no client transaction, e.g. 2xx
    retransmissions after Timer M).
    """

    def __init__(
        self,
        send: SendFn,
        scheduler: Scheduler,
        timers: SipTimers | None = None,
        *,
        auto_trying: bool = True,
        trying_delay: float = 0.0,
    ) -> None:
        self.send = send
        self.scheduler = scheduler
        self.timers = timers or SipTimers()
        self.auto_trying = auto_trying
        # RFC 3261 17.2.1: 100 Trying is due only if the TU will not answer within 200 ms.
        # With a delay > 0 a quickly answered INVITE costs one message less (load tests);
        # 0 sends it at once, which silences the caller's Timer A soonest.
        self.trying_delay = trying_delay
        self.server: dict[tuple[str, ...], ServerTransaction] = {}
        self.client: dict[tuple[str, ...], ClientTransaction] = {}

    # incoming ---------------------------------------------------------------

    def receive_request(
        self, msg: SipMessage, addr: Address, transport: Transport
    ) -> ServerTransaction | None:
        """Absorb retransmissions; return a *new* server transaction for the TU, or None.

        ACKs go to :meth:`absorb_ack` instead.
        """
        key = server_key(msg)
        existing = self.server.get(key)
        if existing is not None:
            existing.receive_retransmission(msg)
            return None
        txn: ServerTransaction
        if msg.method == "INVITE":
            txn = ServerInviteTransaction(self, msg, addr, transport)
        else:
            txn = ServerNonInviteTransaction(self, msg, addr, transport)
        self.server[key] = txn
        if msg.method == "INVITE" and self.auto_trying:
            assert isinstance(txn, ServerInviteTransaction)
            if self.trying_delay > 0:
                txn._arm("trying", self.trying_delay, txn._send_trying)
            else:
                txn._send_trying()
        return txn

    def is_retransmission(self, msg: SipMessage) -> bool:
        """Whether a request belongs to a transaction we already have."""
        return server_key(msg) in self.server

    def absorb_ack(self, msg: SipMessage) -> bool:
        """Feed an ACK for a 3xx-6xx to its INVITE transaction.

        Returns False when the ACK is for a 2xx (or matches nothing): the TU
        routes it to the dialog.
        """
        txn = self.server.get(server_key(msg))
        if txn is None or txn.state is State.ACCEPTED:
            return False
        txn.receive_retransmission(msg)
        return True

    def find_invite_for_cancel(self, cancel: SipMessage) -> ServerInviteTransaction | None:
        """The INVITE transaction a CANCEL refers to (RFC 3261 9.2: same key but method)."""
        key = server_key(cancel)
        txn = self.server.get((*key[:-1], "INVITE"))
        return txn if isinstance(txn, ServerInviteTransaction) else None

    def receive_response(self, msg: SipMessage) -> bool:
        """Feed a response to its client transaction; False when none matches."""
        vias = msg.vias
        if not vias:
            return False
        branch = str(vias[0].params.get("branch") or "")
        txn = self.client.get(client_key(branch, msg.cseq[1]))
        if txn is None:
            return False
        txn.receive_response(msg)
        return True

    # outgoing ---------------------------------------------------------------

    def start_client(
        self,
        request: SipMessage,
        addr: Address,
        transport: Transport,
        on_response: ResponseCallback | None,
        on_timeout: TimeoutCallback | None = None,
    ) -> ClientTransaction:
        txn: ClientTransaction
        if request.method == "INVITE":
            txn = ClientInviteTransaction(self, request, addr, transport, on_response, on_timeout)
        else:
            txn = ClientNonInviteTransaction(self, request, addr, transport, on_response, on_timeout)
        self.client[txn.key] = txn
        txn.start()
        return txn

    # bookkeeping ------------------------------------------------------------

    def _forget(self, txn: _Transaction) -> None:
        table: dict[Any, Any] = self.server if isinstance(txn, ServerTransaction) else self.client
        if table.get(txn.key) is txn:
            del table[txn.key]

    def close(self) -> None:
        """Terminate everything (shutdown): cancels every timer."""
        for txn in [*self.server.values(), *self.client.values()]:
            txn._terminate()


class Uas2xxRetransmitter:
    """Resends a 2xx to INVITE until the ACK arrives (RFC 6026 / RFC 3261 13.3.1.4).

    Interval starts at T1 and doubles up to T2 (Timer G spacing); after 64*T1
    (Timer H) without ACK, ``on_timeout`` fires and the TU ends the dialog
    with BYE.
    """

    __slots__ = ("_data", "_g", "_h", "_interval", "addr", "layer", "on_timeout", "transport")

    def __init__(
        self,
        layer: TransactionLayer,
        response: SipMessage,
        addr: Address,
        transport: Transport,
        on_timeout: TimeoutCallback | None,
    ) -> None:
        self.layer: TransactionLayer | None = layer
        self.addr = addr
        self.transport = transport
        self.on_timeout = on_timeout
        self._data = response.to_bytes()
        self._interval = layer.timers.t1
        self._g: TimerHandle | None = None
        self._h: TimerHandle | None = None
        if not transport.reliable:
            self._g = layer.scheduler.call_later(self._interval, self._timer_g)
        self._h = layer.scheduler.call_later(layer.timers.timeout_64t1, self._timer_h)

    @property
    def active(self) -> bool:
        return self.layer is not None

    def _timer_g(self) -> None:
        self._g = None
        layer = self.layer
        if layer is None:
            return
        layer.send(self.transport, self._data, self.addr)
        self._interval = min(2 * self._interval, layer.timers.t2)
        self._g = layer.scheduler.call_later(self._interval, self._timer_g)

    def _timer_h(self) -> None:
        self._h = None
        callback = self.on_timeout
        self.stop()
        if callback is not None:
            callback()

    def resend(self) -> None:
        """The INVITE was retransmitted (our 2xx was lost): send the 2xx again now."""
        if self.layer is not None:
            self.layer.send(self.transport, self._data, self.addr)

    def stop(self) -> None:
        """ACK received (or the call is torn down)."""
        for handle in (self._g, self._h):
            if handle is not None:
                handle.cancel()
        self._g = self._h = None
        self.layer = None
        self.on_timeout = None
