"""SIP over TLS between two of our UAs on loopback (certificates made by the test):
sips: dialogs, Via/Contact, SRTP media, mutual TLS, and the TCP limits on TLS."""

from __future__ import annotations

import asyncio
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from callcenter.media.engine import MediaEngine
from callcenter.media.session import RtpSession
from callcenter.sip.calls import Call
from callcenter.sip.dialog import is_sips, uri_address, uri_transport
from callcenter.sip.message import SipMessage
from callcenter.sip.tls import client_context, server_context
from callcenter.sip.transport import SipTransportLayer, TlsTransport
from callcenter.sip.ua import UserAgent
from tests.support import eventually
from tests.support.certs import Pki, make_pki

TONE = (6000 * np.sin(np.arange(8000) * 0.3)).astype("<i2").tobytes()  # 1 s


class Peer:
    """A UA with UDP and TLS listeners and its own media engine."""

    def __init__(self, ua: UserAgent, layer: SipTransportLayer, engine: MediaEngine) -> None:
        self.ua, self.layer, self.engine = ua, layer, engine

    @property
    def tls_port(self) -> int:
        return self.layer.get("tls").local[1]

    @property
    def udp_port(self) -> int:
        return self.layer.get("udp").local[1]


MakePeer = Callable[..., Awaitable[Peer]]


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
async def make_peer(pki: Pki) -> AsyncIterator[MakePeer]:
    peers: list[Peer] = []

    async def make(on_call: Callable[[Call], Awaitable[None]] | None = None, *, srtp: str = "off",
                   verify_client: bool = False, present_cert: bool = False, **layer: Any) -> Peer:
        lo = random.randrange(61000, 65200) & ~1  # as tests/sip/conftest.py's rtp_range
        engine = MediaEngine("127.0.0.1", lo, lo + 199, srtp=srtp)
        await engine.start()
        ua = UserAgent(engine, on_call=on_call)
        mine = (str(pki.client_cert), str(pki.client_key)) if present_cert else (None, None)
        transport = SipTransportLayer(
            [("udp", "127.0.0.1", 0), ("tls", "127.0.0.1", 0)], ua.on_message,
            tls_server=server_context(str(pki.cert), str(pki.key), str(pki.ca), verify_client),
            tls_client=client_context(str(pki.ca), True, *mine), **layer,
        )
        await transport.start()
        ua.attach(transport)
        await ua.start()
        peer = Peer(ua, transport, engine)
        peers.append(peer)
        return peer

    yield make
    for p in peers:
        await p.ua.stop()
        await p.layer.stop()
        await p.engine.stop()


async def test_a_sips_call_runs_over_tls_with_srtp_media(make_peer: MakePeer) -> None:
    calls: asyncio.Queue[Call] = asyncio.Queue()

    async def answer(call: Call) -> None:
        await call.answer()
        calls.put_nowait(call)
        await call.media.play(TONE)
        await call.ended.wait()

    server = await make_peer(answer, srtp="mandatory")
    client = await make_peer(srtp="mandatory")
    out = await client.ua.place_call(f"sips:echo@127.0.0.1:{server.tls_port}", timeout=10)
    inbound = await asyncio.wait_for(calls.get(), 5)
    invite = inbound.request
    assert invite.vias[0].transport == "TLS"
    assert invite.headers.get("Contact", "").startswith("<sips:")  # a SIPS dialog: sips Contact
    assert isinstance(inbound.transport, TlsTransport)
    assert out.dialog is not None and out.dialog.remote_target.startswith("sips:")
    assert "RTP/SAVP" in (invite.body or b"").decode()
    media = out.media
    assert isinstance(media, RtpSession)
    await eventually(lambda: media.stats.rx_packets >= 25 and media.stats.rx_level_dbm0 > -20)
    assert media.stats.rx_srtp_failed == 0
    await out.hangup()
    await asyncio.wait_for(inbound.ended.wait(), 5)  # the BYE went over the same TLS connection


async def test_a_plain_sip_uri_over_tls_says_transport_tls(make_peer: MakePeer) -> None:
    seen: asyncio.Queue[Call] = asyncio.Queue()

    async def answer(call: Call) -> None:
        seen.put_nowait(call)
        await call.answer()
        await call.ended.wait()

    server = await make_peer(answer)
    client = await make_peer()
    out = await client.ua.place_call(f"sip:echo@127.0.0.1:{server.tls_port};transport=tls", timeout=10)
    inbound = await asyncio.wait_for(seen.get(), 5)
    assert inbound.request.vias[0].transport == "TLS"
    contact = inbound.request.headers.get("Contact", "")
    assert contact.startswith("<sip:") and contact.endswith(";transport=tls>")
    await out.hangup()


async def test_a_sips_request_over_udp_is_refused_with_416(make_peer: MakePeer) -> None:
    server = await make_peer()
    replies: asyncio.Queue[SipMessage] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            replies.put_nowait(SipMessage.parse(data))

    transport, _ = await loop.create_datagram_endpoint(Client, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    options = (
        f"OPTIONS sips:echo@127.0.0.1:{server.udp_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKsips1;rport\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:t@127.0.0.1>;tag=1\r\nTo: <sips:echo@127.0.0.1>\r\n"
        "Call-ID: sips-over-udp\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    transport.sendto(options.encode(), ("127.0.0.1", server.udp_port))
    reply = await asyncio.wait_for(replies.get(), 5)
    transport.close()
    assert reply.status == 416


async def _options_over_tls(port: int, ctx: ssl.SSLContext) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1")
    try:
        local = writer.get_extra_info("sockname")
        writer.write((
            f"OPTIONS sip:echo@127.0.0.1:{port};transport=tls SIP/2.0\r\n"
            f"Via: SIP/2.0/TLS 127.0.0.1:{local[1]};branch=z9hG4bKtls{local[1]}\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:t@127.0.0.1>;tag=1\r\nTo: <sip:echo@127.0.0.1>\r\n"
            f"Call-ID: tls-{local[1]}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        ).encode())
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    finally:
        writer.close()


async def test_mutual_tls_refuses_a_client_without_a_certificate(make_peer: MakePeer, pki: Pki) -> None:
    server = await make_peer(verify_client=True)
    anonymous = client_context(str(pki.ca))
    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
        # TLS 1.3 finishes the client's handshake before the server has judged it: the
        # refusal arrives as an alert on the first read
        await _options_over_tls(server.tls_port, anonymous)
    with_cert = client_context(str(pki.ca), True, str(pki.client_cert), str(pki.client_key))
    assert (await _options_over_tls(server.tls_port, with_cert)).startswith(b"SIP/2.0 200")


async def test_the_per_ip_cap_counts_tls_connections(make_peer: MakePeer, pki: Pki) -> None:
    server = await make_peer(max_tcp_per_ip=1)
    ctx = client_context(str(pki.ca))
    first = await asyncio.open_connection("127.0.0.1", server.tls_port, ssl=ctx, server_hostname="127.0.0.1")
    tls = server.layer.get("tls")
    assert isinstance(tls, TlsTransport)
    await eventually(lambda: len(tls.connections) == 1)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.tls_port, ssl=ctx, server_hostname="127.0.0.1")
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the cap, after its handshake
    assert server.layer.stats["tcp_refused_per_ip"] == 1
    writer.close()
    first[1].close()


def test_sips_and_transport_tls_uris_select_tls_and_port_5061() -> None:
    assert uri_transport("sips:bob@example.com") == "TLS"
    assert uri_transport("<sip:bob@127.0.0.1;transport=tls>") == "TLS"
    assert uri_address("sips:bob@127.0.0.1") == ("127.0.0.1", 5061)
    assert uri_address("sip:bob@127.0.0.1;transport=tls") == ("127.0.0.1", 5061)
    assert uri_address("sip:bob@127.0.0.1") == ("127.0.0.1", 5060)
    assert is_sips("<sips:bob@127.0.0.1>") and not is_sips("sip:bob@127.0.0.1;transport=tls")
