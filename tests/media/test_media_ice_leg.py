"""A WebRTC leg carried by the engine (``adopt_ice``, callcenter/webrtc/lean.py), against a
stand-in browser: a UDP socket with libsrtp contexts for the DTLS-derived keys and aioice's
STUN codec. In process and in a media worker: consent checks answered (integrity and
fingerprint valid), SRTP both ways with the announced SSRC, RTCP/DTLS on the muxed port
dropped, garbage survived, and the media follows the browser only to a pair it checked."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import pylibsrtp
import pytest
from aioice import stun

from callcenter.media import g711
from callcenter.media.sdp import Negotiated
from callcenter.media.srtp import SrtpKeys
from callcenter.media.worker import MediaPool
from tests.support import eventually

from .conftest import EngineFactory, UdpPeer, port_range

UFRAG, PWD = "srvU", "server-password-0123456789"
SSRC = 0x1234ABCD
TX, RX = os.urandom(30), os.urandom(30)  # the server's sending key, the browser's


def policy(key: bytes, direction: int) -> pylibsrtp.Session:
    return pylibsrtp.Session(pylibsrtp.Policy(
        key=key, ssrc_type=direction, srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80))


class Browser:
    """The far end: sends SRTP with the browser's key, reads ours, runs ICE checks."""

    def __init__(self) -> None:
        self.peer = UdpPeer()
        self.tx = policy(RX, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        self.rx = policy(TX, pylibsrtp.Policy.SSRC_ANY_INBOUND)
        self.seq = 100

    def send_rtp(self, to: tuple[str, int], payload: bytes = b"\xd5" * 160) -> None:
        self.seq += 1
        pkt = struct.pack("!BBHII", 0x80, 0, self.seq, self.seq * 160, 0x5EED) + payload
        self.peer.sock.sendto(self.tx.protect(pkt), to)

    def check(self, to: tuple[str, int], password: str = PWD, user: str = f"{UFRAG}:brws") -> bytes:
        req = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
        req.attributes["USERNAME"] = user
        req.attributes["PRIORITY"] = 1853824767
        req.attributes["ICE-CONTROLLING"] = 42
        req.add_message_integrity(password.encode())
        self.peer.sock.sendto(bytes(req), to)
        return req.transaction_id

    async def next_rtp(self) -> tuple[int, bytes]:
        while True:
            data, _ = await self.peer.recv()
            if data[0] >= 128:
                plain = self.rx.unprotect(data)
                return struct.unpack_from("!I", plain, 8)[0], plain[12:]

    async def next_stun(self) -> stun.Message:
        while True:
            data, _ = await self.peer.recv()
            if data[0] < 4:
                return stun.parse_message(data)


@pytest.fixture
async def pool() -> AsyncIterator[MediaPool]:
    lo, _ = port_range(64)
    p = MediaPool("127.0.0.1", lo, lo + 63, workers=1)
    await p.start()
    yield p
    await p.stop()


@pytest.mark.parametrize("where", ["engine", "worker"])
async def test_an_ice_leg_answers_consent_checks_and_carries_srtp(
    where: str, make_engine: EngineFactory, pool: MediaPool
) -> None:
    media: Any = await make_engine() if where == "engine" else pool
    ice_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ice_sock.bind(("127.0.0.1", 0))
    addr = ice_sock.getsockname()
    browser, other = Browser(), Browser()
    leg = media.adopt_ice(ice_sock, SSRC, UFRAG, PWD)
    leg.apply(Negotiated("PCMU", 0, None, browser.peer.addr, "sendrecv", 20, 0,
                         "UDP/TLS/RTP/SAVPF", srtp=SrtpKeys("AES_CM_128_HMAC_SHA1_80", TX, RX)), True)
    try:
        # the engine sends SRTP as the SSRC the browser was told (silence while unbridged)
        ssrc, payload = await browser.next_rtp()
        assert ssrc == SSRC and payload == bytes([g711.SILENCE_BYTE["PCMU"]]) * 160

        # a consent check is answered: integrity with our password, fingerprint, its address
        tid = browser.check(addr)
        answer = await browser.next_stun()
        assert answer.message_class == stun.Class.RESPONSE and answer.transaction_id == tid
        assert answer.attributes["XOR-MAPPED-ADDRESS"] == browser.peer.addr
        assert answer.check_message_integrity(PWD.encode()) and "FINGERPRINT" in answer.attributes

        # wrong password, another user, garbage, RTCP and DTLS on the port: no answer, no crash
        browser.check(addr, password="not-the-password-0123456")
        browser.check(addr, user="someone:brws")
        browser.peer.sock.sendto(b"\x00\x01\x00\x00" + os.urandom(30), addr)
        browser.peer.sock.sendto(b"\x81\xc8\x00\x06" + os.urandom(40), addr)  # an SRTCP sender report
        browser.peer.sock.sendto(b"\x16\xfe\xfd" + os.urandom(40), addr)  # a DTLS record
        for _ in range(5):
            browser.send_rtp(addr)

        async def five_in() -> bool:
            return (await leg.fetch_stats())["rx_packets"] >= 5

        await eventually(five_in, 5)
        st = await leg.fetch_stats()
        assert st["stun_answered"] == 1 and st["stun_refused"] == 3 and st["rx_srtp_failed"] == 0

        # a call bridged to the line: the phone's audio reaches the browser on the line's own
        # 20 ms ticks (paced), and the browser's reaches the phone
        phone = UdpPeer()
        call_leg = media.allocate(near=leg)
        call_leg.apply(Negotiated("PCMU", 0, None, phone.addr, "sendrecv", 20, 0), True)
        leg.bridge(call_leg)
        voice = bytes(range(160))
        for k in range(30):
            hdr = struct.pack("!BBHII", 0x80, 0, k, k * 160, 0xCA11)
            phone.sock.sendto(hdr + voice, ("127.0.0.1", call_leg.local_port))

        async def browser_hears() -> None:
            while (await browser.next_rtp())[1] != voice:
                pass

        async def phone_hears() -> None:
            while (await phone.recv())[0][12:] != voice:
                pass

        await asyncio.wait_for(browser_hears(), 5)
        browser.send_rtp(addr, voice)
        await asyncio.wait_for(phone_hears(), 5)
        call_leg.close()
        phone.close()

        # authentic SRTP from a pair the browser never checked: not followed
        other.tx = policy(RX, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        other.seq = 5000
        other.send_rtp(addr)

        async def ignored() -> bool:
            return (await leg.fetch_stats())["rx_ignored"] >= 1

        await eventually(ignored, 5)
        assert (await leg.fetch_stats())["remote"] == browser.peer.addr
        # once checked from there (the browser switched pairs), the media follows
        other.check(addr)
        await other.next_stun()
        other.send_rtp(addr)

        async def moved() -> bool:
            return tuple((await leg.fetch_stats())["remote"]) == other.peer.addr

        await eventually(moved, 5)
        ssrc, _ = await other.next_rtp()
        assert ssrc == SSRC
    finally:
        leg.close()
        browser.peer.close()
        other.peer.close()


def test_consent_responder_survives_garbage_and_mutated_checks() -> None:
    """Random bytes that look like STUN, and a valid check with bytes flipped: never an
    exception; a flipped check is refused unless only its FINGERPRINT was hit."""
    from callcenter.media.ice_consent import IceResponder

    rnd = random.Random(15)
    responder = IceResponder(UFRAG, PWD)
    req = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    req.attributes["USERNAME"] = f"{UFRAG}:brws"
    req.add_message_integrity(PWD.encode())
    good = bytes(req)
    assert responder.respond(good, ("192.0.2.1", 4000)) is not None
    for i in range(20_000):
        if i % 2:
            data = bytearray(good)
            for _ in range(rnd.randint(1, 4)):
                data[rnd.randrange(len(data))] = rnd.randrange(256)
            data = data[: rnd.randint(20, len(data))]
        else:
            data = bytearray([rnd.randrange(4)]) + rnd.randbytes(rnd.randint(19, 80))
        responder.respond(bytes(data), ("192.0.2.1", 4000))
    assert responder.refused > 19_000
