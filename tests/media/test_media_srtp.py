"""SRTP with SDES keys: a=crypto, the srtp policy in offer/answer, and encrypted media
between real sessions (in this process and in a media worker)."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
import pytest

from callcenter.media import sdp
from callcenter.media.negotiation import SdpNegotiator
from callcenter.media.srtp import Crypto, new_key
from callcenter.media.worker import MediaPool
from tests.support import eventually

from .conftest import EngineFactory, port_range

KEY = base64.b64encode(bytes(range(30))).decode()
TONE = (6000 * np.sin(np.arange(4000) * 0.3)).astype("<i2").tobytes()  # 500 ms


def offer(proto: str = "RTP/SAVP", crypto: str | None = f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}") -> str:
    lines = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
             f"m=audio 4000 {proto} 0 101"]
    if crypto:
        lines.append(f"a=crypto:{crypto}")
    lines += ["a=rtpmap:101 telephone-event/8000", "a=sendrecv"]
    return "\r\n".join(lines) + "\r\n"


def test_crypto_lines_parse_and_unsupported_ones_are_skipped() -> None:
    c = Crypto.parse(f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20")
    assert c is not None and c.key == bytes(range(30)) and c.tag == 1
    assert Crypto.parse(c.attribute().split(":", 1)[1]) == c
    assert Crypto.parse(f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4") is None  # MKI
    assert Crypto.parse(f"1 F8_128_HMAC_SHA1_80 inline:{KEY}") is None  # suite
    assert Crypto.parse("1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=") is None  # 5-byte key
    assert Crypto.parse("1 AES_CM_128_HMAC_SHA1_80 inline:!!notbase64") is None
    assert Crypto.parse(f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} UNENCRYPTED_SRTP") is None


@pytest.mark.parametrize("mode", ["optional", "mandatory"])
def test_an_srtp_offer_is_answered_with_srtp_and_our_own_key(mode: str) -> None:
    neg = SdpNegotiator("127.0.0.1", 30000, ("PCMU",), srtp=mode)
    result = neg.answer(offer())
    assert result is not None
    text, got, _ = result
    assert "m=audio 30000 RTP/SAVP 0 101" in text
    ours = sdp.parse(text).media[0].crypto
    assert len(ours) == 1 and ours[0].tag == 1 and ours[0].key != bytes(range(30))
    assert got.srtp is not None and got.srtp.rx_key == bytes(range(30)) and got.srtp.tx_key == ours[0].key


def test_policy_refuses_mismatches_and_optional_falls_back_to_plain() -> None:
    plain = offer("RTP/AVP", None)
    assert SdpNegotiator("127.0.0.1", 30000, ("PCMU",), srtp="mandatory").answer(plain) is None
    assert SdpNegotiator("127.0.0.1", 30000, ("PCMU",), srtp="off").answer(offer()) is None
    # SAVP without a key we can use: refused even when SRTP is allowed
    assert SdpNegotiator("127.0.0.1", 30000, ("PCMU",), srtp="optional").answer(offer(crypto=None)) is None
    result = SdpNegotiator("127.0.0.1", 30000, ("PCMU",), srtp="optional").answer(plain)
    assert result is not None and "RTP/AVP" in result[0] and "a=crypto" not in result[0]
    assert result[1].srtp is None
    # best-effort SRTP on RTP/AVP (baresip's mediaenc=srtp) is taken up when allowed...
    result = SdpNegotiator("127.0.0.1", 30000, ("PCMU",), srtp="optional").answer(offer("RTP/AVP"))
    assert result is not None and result[1].srtp is not None and "m=audio 30000 RTP/AVP" in result[0]
    # ...and ignored when it is off
    result = SdpNegotiator("127.0.0.1", 30000, ("PCMU",)).answer(offer("RTP/AVP"))
    assert result is not None and result[1].srtp is None and "a=crypto" not in result[0]


def test_our_offers_follow_the_policy() -> None:
    assert "RTP/SAVP" in SdpNegotiator("127.0.0.1", 1, ("PCMU",), srtp="mandatory").offer()
    best_effort = SdpNegotiator("127.0.0.1", 1, ("PCMU",), srtp="optional").offer()
    assert "m=audio 1 RTP/AVP" in best_effort and "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" in best_effort
    assert "a=crypto" not in SdpNegotiator("127.0.0.1", 1, ("PCMU",)).offer()
    # a plain answer to our mandatory offer is unusable
    mand = SdpNegotiator("127.0.0.1", 1, ("PCMU",), srtp="mandatory")
    mand.offer()
    assert mand.take_answer(offer("RTP/AVP", None)) is None


async def test_srtp_legs_exchange_audio_and_dtmf_and_drop_plain_or_forged_packets(
    make_engine: EngineFactory,
) -> None:
    engine = await make_engine(srtp="mandatory")
    a, b = engine.allocate(), engine.allocate()
    answer = b.answer(a.offer())
    assert answer is not None and "RTP/SAVP" in answer
    assert a.apply_answer(answer)
    digits: asyncio.Queue[str] = asyncio.Queue()
    b.on_dtmf = lambda d, s: digits.put_nowait(d)
    await a.play(TONE)
    a.send_dtmf("7")
    assert await asyncio.wait_for(digits.get(), 5) == "7"
    await eventually(lambda: b.stats.rx_packets >= 25 and b.stats.rx_level_dbm0 > -20)
    assert b.stats.rx_srtp_failed == 0 and a.stats.rx_srtp_failed == 0
    # a plain RTP packet from the latched address fails authentication and is dropped
    before = b.stats.rx_packets
    a_sock = a._sock
    assert a_sock is not None and b.remote is not None
    a_sock.sendto(b"\x80\x00\x00\x01" + b"\x00" * 8 + b"\xff" * 160, ("127.0.0.1", b.local_port))
    await eventually(lambda: b.stats.rx_srtp_failed >= 1)
    assert b.stats.rx_packets - before < 20  # only the real stream counted meanwhile


async def test_srtp_in_a_media_worker(make_engine: EngineFactory) -> None:
    lo, _ = port_range(64)
    pool = MediaPool("127.0.0.1", lo, lo + 63, workers=2, srtp="optional")
    await pool.start()
    try:
        phone = (await make_engine(srtp="mandatory")).allocate()
        leg = pool.allocate()
        answer = leg.answer(phone.offer())
        assert answer is not None and "RTP/SAVP" in answer
        assert phone.apply_answer(answer)
        digits: asyncio.Queue[str] = asyncio.Queue()
        leg.on_dtmf = lambda d, s: digits.put_nowait(d)
        phone.send_dtmf("5")
        assert await asyncio.wait_for(digits.get(), 5) == "5"
        await leg.play(TONE)
        await eventually(lambda: phone.stats.rx_packets >= 25 and phone.stats.rx_level_dbm0 > -20)
        stats = await leg.fetch_stats()
        assert stats["rx_srtp_failed"] == 0 and stats["rx_packets"] > 0
        assert phone.stats.rx_srtp_failed == 0
    finally:
        await pool.stop()


def test_each_leg_has_its_own_key() -> None:
    assert new_key() != new_key()
    n1 = SdpNegotiator("127.0.0.1", 1, ("PCMU",), srtp="optional")
    n2 = SdpNegotiator("127.0.0.1", 1, ("PCMU",), srtp="optional")
    assert sdp.parse(n1.offer()).media[0].crypto != sdp.parse(n2.offer()).media[0].crypto


async def test_a_new_key_in_a_re_offer_rebuilds_only_that_direction(make_engine: EngineFactory) -> None:
    engine = await make_engine(srtp="mandatory")
    a, b = engine.allocate(), engine.allocate()
    answer = b.answer(a.offer())
    assert answer is not None and a.apply_answer(answer)
    await eventually(lambda: b.stats.rx_packets >= 5 and a.stats.rx_packets >= 5)
    assert b._srtp is not None
    b_sends = b._srtp.protect
    a.negotiator._key = new_key()  # the peer re-keys: its re-INVITE carries a new a=crypto
    answer = b.update(a.offer())
    assert answer is not None and a.apply_answer(answer)
    assert b._srtp.protect is b_sends  # our sending context (and its rollover counter) kept
    received = b.stats.rx_packets
    await eventually(lambda: b.stats.rx_packets >= received + 10)  # decrypted with the new key
    assert b.stats.rx_srtp_failed <= 2  # at most what was in flight across the switch
