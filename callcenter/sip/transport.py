"""SIP transports: UDP and TCP listeners in one asyncio loop (RFC 3261 §18, RFC 3581).

`SipTransportLayer` opens every configured ``(transport, host, port)`` listener, parses
what arrives and hands each good message to ``on_message(msg, source_addr, transport)``.
What it does on the way, and why:

- **UDP receive buffer of 4 MB** (``SO_RCVBUFFORCE`` when allowed, else ``SO_RCVBUF``):
  the 208 KB default overflowed exactly when SIPp retransmitted under load (measured here;
  docs/benchmarks.md).
- **received / rport** on the top Via of every incoming request (RFC 3261 §18.2.1,
  RFC 3581 §4), so responses find their way back through NAT; `response_address`
  implements the return routing of §18.2.2.
- **Malformed input** never raises out of a protocol callback: a request that fails to
  parse gets the error response `message.build_error_response` can build (400, 416,
  501, 505 — it needs Via/From/To/Call-ID/CSeq), otherwise it is dropped; malformed
  responses are always dropped. Every drop is logged at DEBUG with the reason.
- **Responses whose top Via is not ours** are dropped (§18.1.2; RFC 4475 §3.3.10).
- **TCP framing by Content-Length** (§18.3) with limits: a message larger than
  `max_message_size` gets 513 and the connection closes; a framing error (missing or
  bad Content-Length) closes the connection because the stream cannot be resynchronised;
  idle connections are closed after `tcp_idle_timeout`; responses reuse the connection
  the request came in on (§18.2.2), keyed by the peer's address; CRLF keep-alives
  (RFC 5626 §3.5.1) are answered with a single CRLF.
- **TCP resource bounds** (issue 20): at most `max_tcp_per_ip` connections from one
  address (besides `max_tcp_connections` in all), so one host cannot take every slot;
  a message must be complete within `tcp_message_timeout` of its first byte, a
  deadline further bytes do not move (Kamailio's ``tcp_msg_read_timeout``): a
  "slowloris" trickling an endless header is closed, where the idle timer, reset by
  every byte, kept it for ever; a closed connection drops its buffer at once.
- **Destination names** (a request URI or Route host) are resolved by the loop's
  resolver in a thread, bounded by ``resolve_timeout``: never a blocking lookup on the
  loop, which would stall every call while a DNS server is slow.
- **Advertised address**: each transport carries the host/port to put in Via/Contact,
  configurable for NAT; it defaults to the bound address.
- **TLS** (RFC 3261 §26, ``TlsTransport``): the TCP stream code on an ``ssl`` context
  (callcenter.sip.tls): same framing, limits and connection reuse, so a registered
  phone is reached over the connection it registered on. asyncio hands a connection
  to the protocol once its handshake is done, so the per-IP and total caps count it
  from then; a handshake must finish within ``tcp_message_timeout`` meanwhile. The
  TLS listener advertises its own port (``tls_advertised_port`` or the bound one),
  not ``advertised_port``, which names the UDP/TCP one.

The transports offer what the transaction layer uses: ``name`` ("UDP"/"TCP"/"TLS"),
``reliable``, ``send_nowait(data, addr)`` and ``async send(data, addr)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, cast, runtime_checkable

from callcenter.tasks import BackgroundTasks

from .headers import Via
from .limits import count_down
from .message import SipMessage, SipParseError, build_error_response

__all__ = [
    "DEFAULT_RCVBUF",
    "ListenSpec",
    "SipTransportLayer",
    "TcpTransport",
    "TlsTransport",
    "Transport",
    "UdpTransport",
    "response_address",
]

log = logging.getLogger(__name__)

Address = tuple[str, int]
# A coroutine returned by on_message runs as a background task of the layer.
OnMessage = Callable[[SipMessage, Address, "Transport"], Coroutine[Any, Any, None] | None]

DEFAULT_RCVBUF = 4 * 1024 * 1024
DEFAULT_MAX_MESSAGE = 65535  # the largest UDP payload; the same bound for a TCP message
DEFAULT_TCP_IDLE = 300.0
DEFAULT_MAX_TCP_CONNECTIONS = 4096
DEFAULT_MAX_TCP_PER_IP = 64  # phones behind one NAT share an address; an SBC needs one or a few
DEFAULT_TCP_MESSAGE_TIMEOUT = 20.0  # seconds from a message's first byte to its last
DEFAULT_RESOLVE_TIMEOUT = 5.0  # seconds for one DNS lookup of a destination host name
_CRLF = b"\r\n"


@runtime_checkable  # for the conformance test; nothing on the message path checks it
class Transport(Protocol):
    """What the UA/transaction layers see of a transport (``UdpTransport``, ``TcpTransport``,
    ``TlsTransport``)."""

    name: str  # "UDP", "TCP" or "TLS"
    reliable: bool
    local: Address  # bound address
    advertised: Address  # host/port to put in Via and Contact

    def send_nowait(self, data: bytes | SipMessage, addr: Address) -> None: ...

    async def send(self, data: bytes | SipMessage, addr: Address) -> None: ...


@dataclass(frozen=True, slots=True)
class ListenSpec:
    transport: str  # "udp", "tcp" or "tls"
    host: str
    port: int

    @classmethod
    def of(cls, item: ListenSpec | tuple[str, str, int]) -> ListenSpec:
        spec = item if isinstance(item, ListenSpec) else cls(str(item[0]), str(item[1]), int(item[2]))
        name = spec.transport.lower()
        if name not in ("udp", "tcp", "tls"):
            raise ValueError(f"unsupported SIP transport {spec.transport!r} (udp, tcp or tls)")
        if not 0 <= spec.port <= 65535:
            raise ValueError(f"bad SIP port {spec.port}")
        return cls(name, spec.host, spec.port)


def _wire(data: bytes | SipMessage) -> bytes:
    return data if isinstance(data, bytes) else data.to_bytes()


def _same_host(a: str, b: str) -> bool:
    a = a.strip("[]").lower()
    b = b.strip("[]").lower()
    if a == b:
        return True
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def stamp_via(msg: SipMessage, source: Address) -> None:
    """Add received/rport to the top Via of a request (RFC 3261 §18.2.1, RFC 3581 §4)."""
    via = msg.vias[0]
    host = source[0]
    changed = False
    if via.has_rport:
        # RFC 3581: with rport, received is set even when sent-by matches the source.
        via.params["received"] = host
        via.params["rport"] = str(source[1])
        changed = True
    elif not _same_host(via.host, host):
        via.params["received"] = host
        changed = True
    if changed:
        msg.set_top_via(via)


def response_address(via: Via, source: Address | None = None) -> Address:
    """Where to send a response over an unreliable transport (RFC 3261 §18.2.2,
    RFC 3581 §4): (received, rport) if the client asked for rport, else (received or
    sent-by host, sent-by port or 5060). `maddr` (multicast) is not supported: we answer
    unicast, as most deployments do. `source` is the fallback host."""
    host = via.received or (source[0] if source and not _is_ip(via.host) else via.host)
    if via.rport is not None:
        return host.strip("[]"), via.rport
    return host.strip("[]"), via.port or 5060


async def resolve(host: str, port: int, family: int, timeout: float) -> str:
    """An address for a host name (a request URI's or Route's host; SDP never has one)
    from the loop's resolver — a thread, so the loop goes on serving calls — within
    ``timeout`` seconds: a dead DNS server must fail the send (the transaction then
    times out as for an unreachable peer), not pile up lookups. IP literals pass as
    they are."""
    if _is_ip(host):
        return host
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port, family=family, type=socket.SOCK_DGRAM), timeout
    )
    if not infos:
        raise OSError(f"{host} has no address")
    return str(infos[0][4][0])


def _bind_family(host: str) -> socket.AddressFamily:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
        return infos[0][0]


def _default_advertised(bound: Address, host: str | None, port: int | None) -> Address:
    adv_host = host or bound[0]
    if adv_host in ("0.0.0.0", "::", ""):
        # A wildcard is not reachable: the operator must configure advertised_host for
        # anything but loopback use; fall back to loopback and say so.
        log.warning("sip.transport advertised_host not set for wildcard bind; using 127.0.0.1")
        adv_host = "127.0.0.1"
    if ":" in adv_host and not adv_host.startswith("["):
        adv_host = f"[{adv_host}]"
    return adv_host, port or bound[1]


class _Handler:
    """Shared receive path for both transports (parse → stamp → deliver, never raise)."""

    def __init__(self, layer: SipTransportLayer) -> None:
        self.layer = layer

    def handle(self, data: bytes, addr: Address, transport: Transport, *, stream: bool) -> None:
        layer = self.layer
        try:
            try:
                msg = SipMessage.parse(data, stream=stream)
            except SipParseError as exc:
                layer.stats["malformed"] += 1
                reply = build_error_response(data, exc)
                if reply is not None:
                    layer.stats["error_responses"] += 1
                    transport.send_nowait(reply, addr)
                log.debug(
                    "sip.malformed from=%s:%s transport=%s status=%s reason=%s",
                    addr[0], addr[1], transport.name, exc.status or "drop", exc.reason,
                )
                return
            if msg.is_request:
                stamp_via(msg, addr)
            elif layer.check_response_via and not layer.is_our_via(msg.vias[0], transport):
                layer.stats["foreign_responses"] += 1
                log.debug("sip.drop response with foreign Via from=%s:%s", addr[0], addr[1])
                return
            layer.stats["messages"] += 1
            result = layer.on_message(msg, addr, transport)
            if inspect.iscoroutine(result):
                layer.tasks.spawn(result)
        except Exception:  # never let a handler error kill the protocol
            layer.stats["handler_errors"] += 1
            log.exception("sip.transport handler failed from=%s:%s", addr[0], addr[1])


class UdpTransport(asyncio.DatagramProtocol):
    name = "UDP"
    reliable = False

    def __init__(self, handler: _Handler) -> None:
        self._handler = handler
        self._transport: asyncio.DatagramTransport | None = None
        self.local: Address = ("", 0)
        self.advertised: Address = ("", 0)
        self.rcvbuf = 0
        self._family = socket.AF_INET

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # 3.11's selector datagram transport does not subclass DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self._handler.handle(data, (addr[0], addr[1]), self, stream=False)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable etc. on a connectionless socket: nothing to do.
        log.debug("sip.udp error %s", exc)

    def send_nowait(self, data: bytes | SipMessage, addr: Address) -> None:
        host = addr[0].strip("[]")
        if not _is_ip(host):
            # sendto() would resolve a name synchronously and stall the loop.
            self._handler.layer.tasks.spawn(self.send(data, addr))
            return
        if self._transport is None or self._transport.is_closing():
            log.debug("sip.udp send on closed transport to %s:%s dropped", addr[0], addr[1])
            return
        self._transport.sendto(_wire(data), (host, addr[1]))

    async def send(self, data: bytes | SipMessage, addr: Address) -> None:
        host = await resolve(addr[0].strip("[]"), addr[1], self._family,
                             self._handler.layer.resolve_timeout)
        self.send_nowait(data, (host, addr[1]))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class _TcpConnection(asyncio.Protocol):
    """One TCP connection: Content-Length framing, limits, idle timeout."""

    def __init__(self, owner: TcpTransport) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.peer: Address = ("", 0)
        self.buffer = bytearray()
        self._idle: asyncio.TimerHandle | None = None
        self._deadline: asyncio.TimerHandle | None = None  # for the message being received
        self.closed = asyncio.get_running_loop().create_future()

    # --- lifecycle ---
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1])
        if not self.owner._register(self):
            self.transport.abort()
            return
        self._touch()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        # the buffer (up to max_message_size per connection) goes now, not when the last
        # reference to this protocol does: those add up to hundreds of MB under a flood
        self.buffer = bytearray()
        self.owner._unregister(self)
        if not self.closed.done():
            self.closed.set_result(None)

    def _touch(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(self.owner.idle_timeout, self._on_idle)

    def _on_idle(self) -> None:
        self._idle = None
        log.debug("sip.tcp idle close peer=%s:%s", *self.peer)
        self.close()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self._touch()
        self.transport.write(data)

    # --- framing ---
    def data_received(self, data: bytes) -> None:
        self._touch()
        self.buffer += data
        try:
            completed = self._drain()
        except Exception:
            log.exception("sip.tcp framing failed peer=%s:%s", *self.peer)
            self.close()
            return
        # The deadline runs from a message's first byte: only a completed message
        # starts a new one, more bytes of the same message never do.
        if completed and self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self.buffer and self._deadline is None and not self.transport_closing:
            self._deadline = asyncio.get_running_loop().call_later(
                self.owner.message_timeout, self._on_deadline)

    @property
    def transport_closing(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def _on_deadline(self) -> None:
        self._deadline = None
        self.owner._handler.layer.stats["tcp_message_timeouts"] += 1
        log.info("sip.tcp message not complete within %gs: closing peer=%s:%s",
                 self.owner.message_timeout, *self.peer)
        self.close()

    def _drain(self) -> int:
        """Frame and deliver what the buffer holds; the number of messages completed."""
        buf = self.buffer
        limit = self.owner.max_message_size
        completed = 0
        while buf:
            if buf[:2] == _CRLF:
                # CRLF keep-alives: answer a double-CRLF ping with one CRLF (RFC 5626).
                if buf[:4] == b"\r\n\r\n":
                    del buf[:4]
                    completed += 1
                    self.write(_CRLF)
                elif len(buf) >= 4 or buf[:3] != b"\r\n\r":
                    del buf[:2]
                else:
                    return completed  # maybe the rest of a ping is on its way
                continue
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > limit:
                    self._fail(bytes(buf), SipParseError("Message Too Large", 513))
                return completed
            head = bytes(buf[:end])
            length = _content_length(head)
            if length is None:
                # No way to find the next message: answer if possible, then close.
                self._fail(bytes(buf[: end + 4]), SipParseError("bad or missing Content-Length"))
                return completed
            total = end + 4 + length
            if total > limit:
                self._fail(head + b"\r\n\r\n", SipParseError("Message Too Large", 513))
                return completed
            if len(buf) < total:
                return completed  # wait for the rest of the body
            message = bytes(buf[:total])
            del buf[:total]
            completed += 1
            self.owner._handler.handle(message, self.peer, self.owner, stream=True)
        return completed

    def _fail(self, data: bytes, error: SipParseError) -> None:
        self.owner._handler.layer.stats["malformed"] += 1
        reply = build_error_response(data, error)
        if reply is not None:
            self.write(reply)
        log.debug("sip.tcp framing error peer=%s:%s reason=%s", *self.peer, error.reason)
        self.buffer.clear()
        self.close()


def _content_length(head: bytes) -> int | None:
    """Content-Length from a raw header block (long or compact name), or None if it is
    missing, repeated with different values, or not a plain number."""
    found: int | None = None
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        key = name.strip().lower()
        if key in (b"content-length", b"l"):
            text = value.strip()
            if not text.isdigit():
                return None
            number = int(text)
            if found is not None and found != number:
                return None
            found = number
    return found


class TcpTransport:
    name = "TCP"
    reliable = True

    def __init__(
        self,
        handler: _Handler,
        *,
        max_message_size: int,
        idle_timeout: float,
        max_connections: int,
        max_per_ip: int = DEFAULT_MAX_TCP_PER_IP,
        message_timeout: float = DEFAULT_TCP_MESSAGE_TIMEOUT,
    ) -> None:
        self._handler = handler
        self.max_message_size = max_message_size
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.max_per_ip = max_per_ip  # 0: no per-address cap
        self.message_timeout = message_timeout
        self._per_ip: dict[str, int] = {}  # connections open, by peer address
        self._counted: set[_TcpConnection] = set()  # the connections _per_ip counts
        self.server: asyncio.AbstractServer | None = None
        self.connections: dict[Address, _TcpConnection] = {}
        self._connecting: dict[Address, asyncio.Future[_TcpConnection]] = {}
        self.local: Address = ("", 0)
        self.advertised: Address = ("", 0)

    def _register(self, conn: _TcpConnection) -> bool:
        if len(self.connections) >= self.max_connections:
            log.warning("sip.tcp connection limit %d reached; refusing %s:%s",
                        self.max_connections, *conn.peer)
            return False
        ip = conn.peer[0]
        open_from_ip = self._per_ip.get(ip, 0)
        if self.max_per_ip and open_from_ip >= self.max_per_ip:
            self._handler.layer.stats["tcp_refused_per_ip"] += 1
            if self._handler.layer.stats["tcp_refused_per_ip"] % 1000 == 1:  # not a line per flood SYN
                log.warning("sip.tcp %d connections from %s already; refusing more",
                            self.max_per_ip, ip)
            return False
        self._per_ip[ip] = open_from_ip + 1
        self._counted.add(conn)
        self.connections[conn.peer] = conn
        return True

    def _unregister(self, conn: _TcpConnection) -> None:
        # A dialled connection is indexed under its peer name and the dialled address.
        for key in [k for k, c in self.connections.items() if c is conn]:
            del self.connections[key]
        if conn in self._counted:
            self._counted.discard(conn)
            count_down(self._per_ip, conn.peer[0])

    @staticmethod
    def _key(addr: Address) -> Address:
        return addr[0].strip("[]"), addr[1]

    def send_nowait(self, data: bytes | SipMessage, addr: Address) -> None:
        key = self._key(addr)
        conn = self.connections.get(key)
        if conn is not None:
            conn.write(_wire(data))
            return
        self._handler.layer.tasks.spawn(self.send(data, addr))

    async def send(self, data: bytes | SipMessage, addr: Address) -> None:
        """Write on the connection to `addr`, opening one if there is none (§18.1.1)."""
        key = self._key(addr)
        conn = self.connections.get(key)
        if conn is None:
            conn = await self._connect(key)
        conn.write(_wire(data))

    async def _connect(self, key: Address) -> _TcpConnection:
        pending = self._connecting.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_TcpConnection] = loop.create_future()
        self._connecting[key] = future
        try:
            host = await resolve(key[0], key[1], socket.AF_UNSPEC, self._handler.layer.resolve_timeout)
            _, conn = await loop.create_connection(
                lambda: _TcpConnection(self), host, key[1], **self._dial_options(key[0]))
            # Index by the address we dialled too, so later sends find it.
            self.connections[key] = conn
            future.set_result(conn)
            return conn
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: nobody else may be waiting
            raise
        finally:
            del self._connecting[key]

    def _dial_options(self, host: str) -> dict[str, Any]:
        """Extra ``create_connection`` arguments for a connection we open (TLS's)."""
        return {}

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        conns = list({id(c): c for c in self.connections.values()}.values())
        for conn in conns:
            conn.close()
        for conn in conns:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(conn.closed), 2.0)
        if self.server is not None:
            await self.server.wait_closed()


class TlsTransport(TcpTransport):
    """SIP over TLS: ``TcpTransport`` with a server context for the connections it
    accepts and a client context for those it opens (see the module docstring)."""

    name = "TLS"

    def __init__(self, handler: _Handler, *, server_ssl: ssl.SSLContext,
                 client_ssl: ssl.SSLContext, **limits: Any) -> None:
        super().__init__(handler, **limits)
        self.server_ssl = server_ssl
        self.client_ssl = client_ssl

    def _dial_options(self, host: str) -> dict[str, Any]:
        check = self.client_ssl.check_hostname
        return {"ssl": self.client_ssl, "server_hostname": host if check else None,
                "ssl_handshake_timeout": self.message_timeout}


class SipTransportLayer:
    """All listeners of one process. See the module docstring for behaviour."""

    def __init__(
        self,
        listen: Iterable[ListenSpec | tuple[str, str, int]],
        on_message: OnMessage,
        *,
        advertised_host: str | None = None,
        advertised_port: int | None = None,
        rcvbuf: int = DEFAULT_RCVBUF,
        max_message_size: int = DEFAULT_MAX_MESSAGE,
        tcp_idle_timeout: float = DEFAULT_TCP_IDLE,
        max_tcp_connections: int = DEFAULT_MAX_TCP_CONNECTIONS,
        max_tcp_per_ip: int = DEFAULT_MAX_TCP_PER_IP,
        tcp_message_timeout: float = DEFAULT_TCP_MESSAGE_TIMEOUT,
        check_response_via: bool = True,
        resolve_timeout: float = DEFAULT_RESOLVE_TIMEOUT,
        tls_server: ssl.SSLContext | None = None,
        tls_client: ssl.SSLContext | None = None,
        tls_advertised_port: int | None = None,
    ) -> None:
        self.specs = [ListenSpec.of(item) for item in listen]
        if not self.specs:
            raise ValueError("no SIP listeners configured")
        if tls_server is None and any(s.transport == "tls" for s in self.specs):
            raise ValueError("a tls listener needs a server certificate (tls_server)")
        self.tls_server = tls_server
        self.tls_client = tls_client
        self.tls_advertised_port = tls_advertised_port
        self.on_message = on_message
        self.advertised_host = advertised_host
        self.advertised_port = advertised_port
        self.rcvbuf = rcvbuf
        self.max_message_size = max_message_size
        self.tcp_idle_timeout = tcp_idle_timeout
        self.max_tcp_connections = max_tcp_connections
        self.max_tcp_per_ip = max_tcp_per_ip
        self.tcp_message_timeout = tcp_message_timeout
        self.check_response_via = check_response_via
        self.resolve_timeout = resolve_timeout
        self.transports: list[UdpTransport | TcpTransport] = []
        self.stats: dict[str, int] = {
            "messages": 0, "malformed": 0, "error_responses": 0, "foreign_responses": 0,
            "handler_errors": 0, "tcp_refused_per_ip": 0, "tcp_message_timeouts": 0,
        }
        # handlers and sends that must wait (TCP connect, DNS); a failure is logged
        self.tasks = BackgroundTasks(log, level=logging.WARNING)
        self._handler = _Handler(self)

    # --- lifecycle ---
    async def start(self) -> None:
        try:
            for spec in self.specs:
                if spec.transport == "udp":
                    self.transports.append(await self._start_udp(spec))
                else:
                    self.transports.append(await self._start_tcp(spec))
        except BaseException:
            await self.stop()
            raise
        for t in self.transports:
            log.info("sip.listen transport=%s local=%s:%s advertised=%s:%s",
                     t.name, t.local[0], t.local[1], t.advertised[0], t.advertised[1])

    async def stop(self) -> None:
        for t in self.transports:
            if isinstance(t, UdpTransport):
                t.close()
            else:
                await t.close()
        self.transports.clear()
        await self.tasks.close()

    async def __aenter__(self) -> SipTransportLayer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _start_udp(self, spec: ListenSpec) -> UdpTransport:
        loop = asyncio.get_running_loop()
        sock = socket.socket(_bind_family(spec.host), socket.SOCK_DGRAM)
        try:
            self._set_rcvbuf(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((spec.host, spec.port))
            sock.setblocking(False)
            _, proto = await loop.create_datagram_endpoint(
                lambda: UdpTransport(self._handler), sock=sock)
        except BaseException:
            sock.close()
            raise
        bound = sock.getsockname()
        proto.local = (bound[0], bound[1])
        proto.rcvbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        proto._family = sock.family
        proto.advertised = _default_advertised(
            proto.local, self.advertised_host, self.advertised_port)
        return proto

    def _set_rcvbuf(self, sock: socket.socket) -> None:
        force = getattr(socket, "SO_RCVBUFFORCE", None)
        if force is not None:
            try:
                # Beyond net.core.rmem_max needs CAP_NET_ADMIN; fall back silently.
                sock.setsockopt(socket.SOL_SOCKET, force, self.rcvbuf)
                return
            except OSError:
                pass
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        actual = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        if actual < self.rcvbuf:
            log.warning("sip.udp SO_RCVBUF is %d, asked %d: raise net.core.rmem_max",
                        actual, self.rcvbuf)

    async def _start_tcp(self, spec: ListenSpec) -> TcpTransport:
        """A TCP listener, or a TLS one: the same connections, limits and accept path."""
        loop = asyncio.get_running_loop()
        limits: dict[str, Any] = dict(
            max_message_size=self.max_message_size,
            idle_timeout=self.tcp_idle_timeout,
            max_connections=self.max_tcp_connections,
            max_per_ip=self.max_tcp_per_ip,
            message_timeout=self.tcp_message_timeout,
        )
        tls: dict[str, Any] = {}
        advertised_port = self.advertised_port
        if spec.transport == "tls":
            assert self.tls_server is not None  # checked in __init__
            client = self.tls_client or ssl.create_default_context()
            tcp: TcpTransport = TlsTransport(self._handler, server_ssl=self.tls_server,
                                             client_ssl=client, **limits)
            tls = {"ssl": self.tls_server, "ssl_handshake_timeout": self.tcp_message_timeout}
            advertised_port = self.tls_advertised_port
        else:
            tcp = TcpTransport(self._handler, **limits)
        tcp.server = await loop.create_server(
            lambda: _TcpConnection(tcp), spec.host, spec.port, reuse_address=True, **tls)
        bound = tcp.server.sockets[0].getsockname()
        tcp.local = (bound[0], bound[1])
        tcp.advertised = _default_advertised(tcp.local, self.advertised_host, advertised_port)
        return tcp

    # --- helpers for the layers above ---
    def get(self, name: str) -> UdpTransport | TcpTransport:
        """The first transport of that name ("udp"/"tcp"/"tls", any case)."""
        for t in self.transports:
            if t.name == name.upper():
                return t
        raise KeyError(f"no {name} transport is listening")

    def is_our_via(self, via: Via, transport: Transport) -> bool:
        """Does a response's top Via name this transport (RFC 3261 §18.1.2)?"""
        port = via.port or 5060
        for host, our_port in (transport.advertised, transport.local):
            if _same_host(via.host, host) and port == our_port:
                return True
        return False
