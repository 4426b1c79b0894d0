"""Bad input never crashes: SDP, RTP datagrams and telephone-events from hypothesis."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcenter.media import MediaEngine, rtp, sdp
from callcenter.media.telephone_event import TelephoneEventReceiver

from .conftest import port_range

SDP_LINES = st.sampled_from([
    "v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0",
    "c=IN IP6 ::1", "t=0 0", "m=audio 4000 RTP/AVP 0 8 101", "m=audio 0 RTP/AVP 0",
    "m=video 4002 RTP/AVP 96", "m=audio 4000 RTP/SAVP 0", "a=rtpmap:101 telephone-event/8000",
    "a=rtpmap:8 PCMA/8000", "a=fmtp:101 0-16", "a=ptime:30", "a=sendonly", "a=inactive",
    "a=recvonly", "m=audio", "c=IN", "a=rtpmap:", "x", "=", "m=audio -1 RTP/AVP 0",
])


@given(st.lists(st.one_of(SDP_LINES, st.text(max_size=30)), max_size=14))
def test_sdp_parse_and_negotiate_only_raise_sdp_error(lines: list[str]) -> None:
    text = "\r\n".join(lines)
    try:
        sd = sdp.parse(text)
    except sdp.SdpError:
        return
    neg = sdp.negotiate(sd)
    if neg is not None:
        assert neg.codec in ("PCMU", "PCMA")
        assert neg.remote_addr is None or 0 < neg.remote_addr[1] < 65536


@given(st.lists(st.tuples(st.binary(max_size=8), st.integers(0, 2**32 - 1), st.booleans()),
                max_size=40))
def test_telephone_event_receiver_never_raises(packets: list[tuple[bytes, int, bool]]) -> None:
    rx = TelephoneEventReceiver()
    for payload, ts, marker in packets:
        digit = rx.feed(payload, ts, marker)
        assert digit is None or digit in "0123456789*#ABCD"


def _datagrams() -> st.SearchStrategy[bytes]:
    valid = st.builds(
        rtp.build, st.sampled_from([0, 8, 101, 13, 99]), st.integers(0, 65535),
        st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.binary(max_size=400),
        st.booleans(),
    )
    return st.one_of(valid, st.binary(max_size=300))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_datagrams(), max_size=30))
def test_session_receive_path_survives_anything(datagrams: list[bytes]) -> None:
    async def run() -> None:
        lo, hi = port_range()
        engine = MediaEngine("127.0.0.1", lo, hi, comedia=True, inband_dtmf="on")
        await engine.start()
        try:
            s = engine.allocate()
            answer = s.answer(
                "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 9 RTP/AVP 0 101\r\n"
                "a=rtpmap:101 telephone-event/8000\r\n"
            )
            assert answer is not None
            frames: list[bytes] = []
            s.on_audio = frames.append
            s.on_dtmf = lambda d, src: None
            for d in datagrams:
                s._on_datagram(d, ("127.0.0.1", 9))
            st_ = s.stats
            assert st_.rx_packets + st_.rx_malformed + st_.rx_ignored >= len(datagrams)
            assert all(len(f) == 320 for f in frames)
            s.close()
        finally:
            await engine.stop()

    asyncio.run(run())
