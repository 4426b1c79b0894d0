"""SIP transports over real loopback sockets (ephemeral ports).

Synchronisation is by condition, never by sleeping: after each datagram under test we
send a probe OPTIONS from the same socket and wait (bounded) until the listener has
delivered the probe; loopback UDP from one socket keeps its order, so whatever the
listener sent back for the earlier datagram is already in our socket buffer by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import pathlib
import random
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callcenter.sip.headers import Via
from callcenter.sip.message import SipMessage, make_response
from callcenter.sip.transport import (
    DEFAULT_RCVBUF,
    SipTransportLayer,
    TcpTransport,
    Transport,
    UdpTransport,
    response_address,
)
from tests.support import free_port, require_tool

VECTORS = pathlib.Path(__file__).parent / "rfc4475"
EXPECTED: dict[str, int | None] = json.loads((VECTORS / "verdicts.json").read_text())
TIMEOUT = 5.0

Delivered = tuple[SipMessage, tuple[str, int], Any]


class Harness:
    def __init__(self, **kwargs: Any) -> None:
        self.queue: asyncio.Queue[Delivered] = asyncio.Queue()
        self.layer = SipTransportLayer(
            [("udp", "127.0.0.1", 0), ("tcp", "127.0.0.1", 0)], self.on_message, **kwargs
        )
        self.fail_on: str | None = None

    def on_message(self, msg: SipMessage, addr: tuple[str, int], transport: Any) -> None:
        if self.fail_on is not None and msg.call_id == self.fail_on:
            raise RuntimeError("handler bug")
        self.queue.put_nowait((msg, addr, transport))

    @property
    def udp(self) -> UdpTransport:
        t = self.layer.get("udp")
        assert isinstance(t, UdpTransport)
        return t

    @property
    def tcp(self) -> TcpTransport:
        t = self.layer.get("tcp")
        assert isinstance(t, TcpTransport)
        return t

    async def next(self) -> Delivered:
        return await asyncio.wait_for(self.queue.get(), TIMEOUT)

    async def until(self, call_id: str) -> list[Delivered]:
        """Everything delivered up to and including the message with `call_id`."""
        seen: list[Delivered] = []
        while True:
            item = await self.next()
            seen.append(item)
            if item[0].call_id == call_id:
                return seen


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    await h.layer.start()
    try:
        yield h
    finally:
        await h.layer.stop()


@pytest.fixture
def client() -> AsyncIterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


def options(
    call_id: str, via_host: str = "127.0.0.1", rport: bool = True, *, port: int | None = None
) -> bytes:
    sent_by = via_host if port is None else f"{via_host}:{port}"
    return (
        f"OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {sent_by};branch=z9hG4bK{call_id}{';rport' if rport else ''}\r\n"
        f"From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:probe@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


def summary(raw: bytes) -> tuple[int, str]:
    """(status, Call-ID) of an error response, read leniently: it echoes the
    malformed request's headers verbatim, so it need not pass the strict parser."""
    lines = raw.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    call_id = next(x for x in lines if x.startswith(b"Call-ID: "))[9:].decode()
    return status, call_id


def drain(sock: socket.socket) -> list[bytes]:
    out: list[bytes] = []
    while True:
        try:
            out.append(sock.recv(65535))
        except BlockingIOError:
            return out


async def test_udp_receive_buffer_is_4mb(harness: Harness) -> None:
    # Linux reports twice the size set; either way at least the 4 MB asked for.
    assert harness.udp.rcvbuf >= DEFAULT_RCVBUF


async def test_both_transports_are_what_the_ua_types_against(harness: Harness) -> None:
    """The UA and the transaction layer are typed against the Transport Protocol and use
    its members without checking: both listeners have them, with its parameters."""
    for t in (harness.udp, harness.tcp):
        assert isinstance(t, Transport)
        for method in (t.send_nowait, t.send):
            assert list(inspect.signature(method).parameters) == ["data", "addr"]
        assert inspect.iscoroutinefunction(t.send)
        assert not inspect.iscoroutinefunction(t.send_nowait)
    assert (harness.udp.name, harness.udp.reliable) == ("UDP", False)
    assert (harness.tcp.name, harness.tcp.reliable) == ("TCP", True)


async def test_rport_and_received_are_stamped(harness: Harness, client: socket.socket) -> None:
    src = client.getsockname()
    client.sendto(options("with-rport"), harness.udp.local)
    msg, addr, transport = await harness.next()
    assert addr == src and transport is harness.udp
    assert msg.vias[0].received == "127.0.0.1" and msg.vias[0].rport == src[1]
    # The response built from it routes back to the real source (RFC 3581 §4).
    response = make_response(msg, 200)
    assert response_address(response.vias[0]) == src

    # No rport, sent-by is a name: received added, no rport (RFC 3261 §18.2.1).
    client.sendto(options("by-name", "client.example.com", rport=False, port=5999), harness.udp.local)
    msg, _, _ = await harness.next()
    assert msg.vias[0].received == "127.0.0.1" and not msg.vias[0].has_rport
    assert response_address(msg.vias[0]) == ("127.0.0.1", 5999)

    # No rport, sent-by equals the source address: Via left alone.
    client.sendto(options("same-host", "127.0.0.1", rport=False), harness.udp.local)
    msg, _, _ = await harness.next()
    assert msg.vias[0].received is None
    assert response_address(msg.vias[0]) == ("127.0.0.1", 5060)


async def test_transport_sends_back_to_client(harness: Harness, client: socket.socket) -> None:
    client.sendto(options("echo"), harness.udp.local)
    msg, addr, transport = await harness.next()
    transport.send_nowait(make_response(msg, 200, to_tag="x"), addr)
    loop = asyncio.get_running_loop()
    data = await asyncio.wait_for(loop.sock_recv(client, 65535), TIMEOUT)
    reply = SipMessage.parse(data)
    assert reply.status == 200 and reply.call_id == "echo"
    assert reply.vias[0].rport == client.getsockname()[1]


async def test_advertised_address_is_configurable() -> None:
    layer = SipTransportLayer(
        [("udp", "127.0.0.1", 0)], lambda *a: None, advertised_host="203.0.113.5", advertised_port=5070
    )
    async with layer:
        udp = layer.get("UDP")
        assert udp.advertised == ("203.0.113.5", 5070)
        assert udp.local[0] == "127.0.0.1" and udp.local[1] != 5070
        # Responses naming the advertised address are ours (RFC 3261 §18.1.2).
        assert layer.is_our_via(Via.parse("SIP/2.0/UDP 203.0.113.5:5070;branch=z9hG4bK1"), udp)
        assert not layer.is_our_via(Via.parse("SIP/2.0/UDP 203.0.113.5;branch=z9hG4bK1"), udp)


async def test_responses_with_foreign_via_are_dropped(harness: Harness, client: socket.socket) -> None:
    ours = harness.udp.advertised
    good = (
        f"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {ours[0]}:{ours[1]};branch=z9hG4bKours\r\n"
        "From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: resp-ours\r\n"
        "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    foreign = good.replace(f"{ours[0]}:{ours[1]}".encode(), b"192.0.2.9:5060").replace(
        b"resp-ours", b"resp-foreign"
    )
    client.sendto(foreign, harness.udp.local)
    client.sendto(good, harness.udp.local)
    seen = await harness.until("resp-ours")
    assert [m.call_id for m, _, _ in seen] == ["resp-ours"]
    assert harness.layer.stats["foreign_responses"] == 1


async def test_all_rfc4475_messages_over_udp(harness: Harness, client: socket.socket) -> None:
    delivered: set[str] = set()
    for index, name in enumerate(sorted(EXPECTED)):
        data = (VECTORS / f"{name}.dat").read_bytes()
        client.sendto(data, harness.udp.local)
        probe = f"probe-{index}"
        client.sendto(options(probe), harness.udp.local)
        for msg, _, _ in await harness.until(probe):
            if msg.call_id != probe:
                delivered.add(msg.call_id)
        answers = [summary(raw) for raw in drain(client)]
        expected = EXPECTED[name]
        is_response = data.startswith(b"SIP/")
        call_id_line = (
            next(line for line in data.split(b"\r\n") if line.lower().startswith((b"call-id:", b"i:")))
            if name != "insuf"
            else None
        )
        call_id = call_id_line.split(b":", 1)[1].strip().decode() if call_id_line else None
        if expected is None and not is_response:
            assert call_id in delivered, name
            assert answers == [], name  # the transport itself answers nothing
        elif expected:
            if name == "insuf":
                assert answers == [], name  # no From/To/Call-ID: cannot be answered
            else:
                assert answers == [(expected, call_id)], name
        else:
            # Silent drops (bad responses), and good responses whose Via is not ours.
            assert answers == [] and call_id not in delivered, name
    # dblreq's trailing INVITE is noise, never a message of its own.
    assert "dblreq.0ha0isnda977644900765@192.0.2.15" not in delivered
    assert harness.layer.stats["handler_errors"] == 0
    # ... and the listener still serves.
    client.sendto(options("after-torture"), harness.udp.local)
    msg, _, _ = await harness.next()
    assert msg.call_id == "after-torture"


async def test_garbage_datagrams_never_break_the_listener(harness: Harness, client: socket.socket) -> None:
    rng = random.Random(4475)
    base = options("fuzz-base")
    for i in range(300):
        if i % 2:
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        else:
            pos = rng.randrange(len(base))
            junk = base[:pos] + bytes(rng.randrange(256) for _ in range(4)) + base[pos + 4 :]
        client.sendto(junk, harness.udp.local)
    client.sendto(options("fuzz-done"), harness.udp.local)
    await harness.until("fuzz-done")
    assert harness.layer.stats["handler_errors"] == 0
    drain(client)


async def test_handler_exception_is_contained(harness: Harness, client: socket.socket) -> None:
    harness.fail_on = "boom"
    client.sendto(options("boom"), harness.udp.local)
    client.sendto(options("fine"), harness.udp.local)
    seen = await harness.until("fine")
    assert [m.call_id for m, _, _ in seen] == ["fine"]
    assert harness.layer.stats["handler_errors"] == 1


async def test_async_on_message_is_awaited() -> None:
    done: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def on_message(msg: SipMessage, addr: tuple[str, int], transport: Any) -> None:
        await asyncio.sleep(0)
        done.set_result(msg.call_id)

    async with SipTransportLayer([("udp", "127.0.0.1", 0)], on_message) as layer:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(options("async-cb"), layer.get("udp").local)
            assert await asyncio.wait_for(done, TIMEOUT) == "async-cb"


# --- TCP ---------------------------------------------------------------------------
def tcp_invite(call_id: str, body: bytes = b"v=0\r\n") -> bytes:
    return (
        f"INVITE sip:600@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK{call_id}\r\n"
        f"From: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:600@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


@contextlib.asynccontextmanager
async def tcp_client(
    addr: tuple[str, int],
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection(addr[0], addr[1])
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def read_message(reader: asyncio.StreamReader) -> SipMessage:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    msg = SipMessage.parse(head + b"", stream=False)
    length = int(msg.headers.get("Content-Length") or 0)
    body = await asyncio.wait_for(reader.readexactly(length), TIMEOUT) if length else b""
    return SipMessage.parse(head + body, stream=True)


async def test_tcp_framing_and_connection_reuse(harness: Harness) -> None:
    async with tcp_client(harness.tcp.local) as (reader, writer):
        two = tcp_invite("tcp-1", b"a" * 10) + tcp_invite("tcp-2", b"b" * 20)
        third = tcp_invite("tcp-3", b"c" * 3000)
        writer.write(b"\r\n" + two + third[:7])  # leading CRLF and a split message
        await writer.drain()
        first, addr, transport = await harness.next()
        second, _, _ = await harness.next()
        assert (first.call_id, first.body) == ("tcp-1", b"a" * 10)
        assert (second.call_id, second.body) == ("tcp-2", b"b" * 20)
        assert isinstance(transport, TcpTransport) and transport.reliable
        assert first.vias[0].received is None  # sent-by host is the source IP (§18.2.1)
        writer.write(third[7:])
        await writer.drain()
        msg, _, _ = await harness.next()
        assert msg.body == b"c" * 3000
        # The response goes back over the connection the request came on.
        transport.send_nowait(make_response(first, 180, to_tag="r"), addr)
        reply = await read_message(reader)
        assert reply.status == 180 and reply.call_id == "tcp-1"
        # RFC 5626 keep-alive: a double CRLF ping gets a single CRLF pong.
        writer.write(b"\r\n\r\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.readexactly(2), TIMEOUT) == b"\r\n"


async def test_tcp_missing_content_length_answers_400_and_closes(harness: Harness) -> None:
    async with tcp_client(harness.tcp.local) as (reader, writer):
        bad = tcp_invite("tcp-nocl").replace(b"Content-Length: 5\r\n", b"")
        writer.write(bad)
        await writer.drain()
        reply = await read_message(reader)
        assert reply.status == 400 and reply.call_id == "tcp-nocl"
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""  # closed


async def test_tcp_oversized_message_gets_513_and_close() -> None:
    h = Harness(max_message_size=2000)
    async with h.layer, tcp_client(h.tcp.local) as (reader, writer):
        writer.write(tcp_invite("tcp-big", b"x" * 5000))
        await writer.drain()
        reply = await read_message(reader)
        assert reply.status == 513
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
    assert h.queue.empty()


async def test_tcp_rfc4475_content_length_errors() -> None:
    """ncl (negative Content-Length) cannot be framed: 400 and close. clerr (Content-Length
    beyond the data) over a stream just waits for more, until the idle timeout closes it
    (RFC 4475 §3.1.2.2–3)."""
    h = Harness(tcp_idle_timeout=0.3)
    async with h.layer:
        async with tcp_client(h.tcp.local) as (reader, writer):
            writer.write((VECTORS / "ncl.dat").read_bytes())
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
            assert head.startswith(b"SIP/2.0 400 ")
            assert b"Call-ID: ncl.0ha0isndaksdj2193423r542w35" in head
            assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
        async with tcp_client(h.tcp.local) as (reader, writer):
            writer.write((VECTORS / "clerr.dat").read_bytes())
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
    assert h.queue.empty()


async def test_tcp_idle_connection_is_closed() -> None:
    h = Harness(tcp_idle_timeout=0.2)
    async with h.layer, tcp_client(h.tcp.local) as (reader, _writer):
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
        assert h.tcp.connections == {}


async def test_tcp_outbound_request_and_reply_on_same_connection(harness: Harness) -> None:
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def far_end(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        await received.put(head)
        request = SipMessage.parse(head, stream=True)
        writer.write(make_response(request, 200, to_tag="far").to_bytes())
        await writer.drain()
        await reader.read()  # hold the connection until the listener closes it
        writer.close()

    server = await asyncio.start_server(far_end, "127.0.0.1", 0)
    far = server.sockets[0].getsockname()[:2]
    try:
        adv = harness.tcp.advertised
        request = SipMessage.request(
            "OPTIONS",
            f"sip:far@{far[0]}:{far[1]};transport=tcp",
            [
                ("Via", f"SIP/2.0/TCP {adv[0]}:{adv[1]};branch=z9hG4bKout1"),
                ("From", "<sip:cc@127.0.0.1>;tag=cc1"),
                ("To", "<sip:far@127.0.0.1>"),
                ("Call-ID", "outbound-1"),
                ("CSeq", "1 OPTIONS"),
                ("Max-Forwards", "70"),
            ],
        )
        await harness.tcp.send(request, (far[0], far[1]))
        head = await asyncio.wait_for(received.get(), TIMEOUT)
        assert b"Call-ID: outbound-1" in head
        reply, _, transport = await harness.next()
        assert reply.status == 200 and reply.to.tag == "far" and transport is harness.tcp
        assert (far[0], far[1]) in harness.tcp.connections
    finally:
        server.close()
        await harness.layer.stop()
        await server.wait_closed()


async def test_ipv6_loopback_udp_if_available() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this kernel")
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        probe.bind(("::1", 0))
    except OSError:
        pytest.skip("::1 not configured")
    got: asyncio.Queue[Delivered] = asyncio.Queue()
    layer = SipTransportLayer([("udp", "::1", 0)], lambda m, a, t: got.put_nowait((m, a, t)))
    async with layer:
        udp = layer.get("udp")
        assert udp.advertised[0] == "[::1]"
        data = options("v6").replace(b"SIP/2.0/UDP 127.0.0.1", b"SIP/2.0/UDP [::1]:1")
        probe.sendto(data, udp.local[:2])
        msg, addr, _ = await asyncio.wait_for(got.get(), TIMEOUT)
        assert addr[0] == "::1" and msg.vias[0].received == "::1"
        assert msg.vias[0].rport == probe.getsockname()[1]
    probe.close()


def test_listen_spec_validation() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        SipTransportLayer([("sctp", "127.0.0.1", 0)], lambda *a: None)
    with pytest.raises(ValueError, match="no SIP listeners"):
        SipTransportLayer([], lambda *a: None)


# --- a real peer: SIPp over UDP and TCP --------------------------------------------
SIPP_OPTIONS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="OPTIONS to the transport layer">
  <send retrans="500">
    <![CDATA[

      OPTIONS sip:probe@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:probe@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 OPTIONS
      Max-Forwards: 70
      Content-Length: [len]

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"""


@pytest.mark.parametrize("mode", ["u1", "t1"])
async def test_sipp_options_over_udp_and_tcp(mode: str, tmp_path: pathlib.Path) -> None:
    sipp = require_tool("sipp", "sip-tester")
    calls = 40
    answered: list[str] = []

    def on_message(msg: SipMessage, addr: tuple[str, int], transport: Any) -> None:
        if msg.method == "OPTIONS":
            answered.append(msg.call_id)
            transport.send_nowait(make_response(msg, 200, to_tag="opt"), addr)

    scenario = tmp_path / "options.xml"
    scenario.write_text(SIPP_OPTIONS)
    layer = SipTransportLayer([("udp", "127.0.0.1", 0), ("tcp", "127.0.0.1", 0)], on_message)
    async with layer:
        target = layer.get("tcp" if mode == "t1" else "udp").local
        kind = socket.SOCK_STREAM if mode == "t1" else socket.SOCK_DGRAM
        proc = await asyncio.create_subprocess_exec(
            sipp, f"{target[0]}:{target[1]}", "-sf", str(scenario), "-t", mode,
            "-i", "127.0.0.1", "-p", str(free_port(kind)), "-m", str(calls), "-r", "100",
            "-nostdin", "-timeout", "30s", "-timeout_error", "-trace_err",
            "-error_file", str(tmp_path / "errors.log"),
            cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 40)
        except TimeoutError:
            proc.kill()
            out, err = await proc.communicate()
        errors = (tmp_path / "errors.log").read_text(errors="replace") if (
            tmp_path / "errors.log").exists() else ""
        assert proc.returncode == 0, (out[-2000:], err[-2000:], errors[-2000:])
        assert len(set(answered)) == calls
        if mode == "t1":
            # SIPp's single TCP connection carried every request and every response.
            assert layer.stats["malformed"] == 0
        assert layer.stats["handler_errors"] == 0


async def test_udp_send_to_a_host_name_resolves_off_the_loop(
        harness: Harness, client: socket.socket) -> None:
    port = client.getsockname()[1]
    harness.udp.send_nowait(options("by-name-send"), ("localhost", port))
    loop = asyncio.get_running_loop()
    data = await asyncio.wait_for(loop.sock_recv(client, 65535), TIMEOUT)
    assert b"Call-ID: by-name-send" in data


async def test_destination_lookup_is_bounded_and_never_blocks_the_loop(
        monkeypatch: pytest.MonkeyPatch, client: socket.socket) -> None:
    """Issue 20 item 2: a name in a request URI or Route is resolved by the loop's
    resolver under ``resolve_timeout``. Here DNS never answers: the send fails with
    TimeoutError (UDP and TCP) while the listener goes on serving; the blocking
    ``socket.getaddrinfo`` is never called on the loop."""
    loop = asyncio.get_running_loop()
    lookups: list[str] = []

    async def dns_never_answers(host: str, *_a: Any, **_kw: Any) -> Any:
        lookups.append(host)
        await loop.create_future()

    def blocking_lookup(*_a: Any, **_kw: Any) -> Any:
        raise AssertionError("blocking getaddrinfo on the event loop")

    h = Harness(resolve_timeout=0.05)
    async with h.layer:
        monkeypatch.setattr(loop, "getaddrinfo", dns_never_answers)
        monkeypatch.setattr(socket, "getaddrinfo", blocking_lookup)
        port = client.getsockname()[1]
        udp_send = asyncio.ensure_future(h.udp.send(options("to-a-name"), ("slow.invalid", port)))
        tcp_send = asyncio.ensure_future(h.tcp.send(options("to-a-name-tcp"), ("slow.invalid", port)))
        client.sendto(options("served-meanwhile"), h.udp.local)
        assert (await h.next())[0].call_id == "served-meanwhile"
        # the sends fail by themselves (TIMEOUT only bounds a broken run)
        done, _ = await asyncio.wait({udp_send, tcp_send}, timeout=TIMEOUT)
        assert done == {udp_send, tcp_send}
        assert all(isinstance(send.exception(), TimeoutError) for send in done)
        assert lookups == ["slow.invalid", "slow.invalid"]
        assert h.tcp.connections == {}
