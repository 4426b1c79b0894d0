import pytest

from callcenter.media import sdp

SIPP_OFFER = """v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-11,16
"""

BARESIP_LIKE = (
    "v=0\r\no=- 123 456 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
    "m=audio 30000 RTP/AVP 9 0 8 96 97\r\na=rtpmap:9 G722/8000\r\na=rtpmap:96 opus/48000/2\r\n"
    "a=rtpmap:97 telephone-event/8000\r\na=fmtp:97 0-15\r\na=ptime:30\r\na=sendrecv\r\n"
)


def test_parse_sipp_offer_and_choose_pcma() -> None:
    sd = sdp.parse(SIPP_OFFER)
    neg = sdp.negotiate(sd)
    assert neg is not None
    assert (neg.codec, neg.payload_type, neg.dtmf_payload_type) == ("PCMA", 8, 101)
    assert neg.remote_addr == ("127.0.0.1", 6000)
    assert neg.remote_direction == "sendrecv"


def test_offerer_order_wins_and_dynamic_dtmf_pt_is_kept() -> None:
    neg = sdp.negotiate(sdp.parse(BARESIP_LIKE))
    assert neg is not None and neg.codec == "PCMU" and neg.dtmf_payload_type == 97
    assert neg.ptime == 30
    neg = sdp.negotiate(sdp.parse(BARESIP_LIKE.replace("9 0 8", "9 8 0")))
    assert neg is not None and neg.codec == "PCMA"
    # our own restriction: PCMA only
    neg = sdp.negotiate(sdp.parse(BARESIP_LIKE), codecs=("PCMA",))
    assert neg is not None and neg.codec == "PCMA"


def test_no_usable_codec_gives_none() -> None:
    offer = BARESIP_LIKE.replace("9 0 8 96 97", "9 96 97")
    assert sdp.negotiate(sdp.parse(offer)) is None
    assert sdp.negotiate(sdp.parse(BARESIP_LIKE.replace("30000", "0"))) is None  # disabled
    assert sdp.negotiate(sdp.parse("v=0\r\n")) is None


@pytest.mark.parametrize(
    ("attr", "conn", "ours", "hold", "expected"),
    [
        ("a=sendrecv", "127.0.0.1", "sendrecv", False, ("sendrecv", True)),
        ("a=sendonly", "127.0.0.1", "recvonly", False, ("recvonly", False)),
        ("a=recvonly", "127.0.0.1", "sendonly", False, ("sendonly", True)),
        ("a=inactive", "127.0.0.1", "inactive", False, ("inactive", False)),
        ("", "0.0.0.0", "recvonly", False, ("recvonly", False)),  # RFC 2543 hold
        ("a=sendrecv", "127.0.0.1", "sendonly", True, ("sendonly", True)),  # we hold them
    ],
)
def test_direction_answers(
    attr: str, conn: str, ours: str, hold: bool, expected: tuple[str, bool]
) -> None:
    text = SIPP_OFFER.replace("c=IN IP4 127.0.0.1", f"c=IN IP4 {conn}")
    if attr:
        text += attr + "\n"
    neg = sdp.negotiate(sdp.parse(text))
    assert neg is not None
    d = sdp.answer_direction(neg.remote_direction, neg.remote_addr is None, hold)
    assert d == ours == expected[0]
    assert (d in ("sendrecv", "sendonly")) is expected[1]


def test_media_level_connection_and_session_direction() -> None:
    text = (
        "v=0\no=x 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\na=sendonly\n"
        "m=video 5000 RTP/AVP 96\na=rtpmap:96 H264/90000\n"
        "m=audio 5002 RTP/AVP 0\nc=IN IP4 5.6.7.8\n"
    )
    sd = sdp.parse(text)
    neg = sdp.negotiate(sd)
    assert neg is not None
    assert neg.remote_addr == ("5.6.7.8", 5002) and neg.remote_direction == "sendonly"
    assert neg.media_index == 1
    body = sdp.build("9.9.9.9", 40000, [(0, "PCMU")], None, "recvonly",
                     refused=sd.media, media_index=neg.media_index)
    lines = body.split("\r\n")
    m_lines = [ln for ln in lines if ln.startswith("m=")]
    assert m_lines == ["m=video 0 RTP/AVP 96", "m=audio 40000 RTP/AVP 0"]


def test_answer_text_is_parseable_and_complete() -> None:
    body = sdp.build("127.0.0.1", 40002, [(8, "PCMA")], 101, "sendrecv", 7, 2)
    assert body.endswith("\r\n")
    for needed in ("v=0", "o=callcenter 7 2 IN IP4 127.0.0.1", "c=IN IP4 127.0.0.1",
                   "m=audio 40002 RTP/AVP 8 101", "a=rtpmap:8 PCMA/8000",
                   "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=ptime:20",
                   "a=sendrecv"):
        assert needed in body.split("\r\n")
    again = sdp.negotiate(sdp.parse(body))
    assert again is not None and again.codec == "PCMA" and again.dtmf_payload_type == 101


@pytest.mark.parametrize(
    "bad",
    ["garbage", "v=0\nm=audio x RTP/AVP 0\n", "v=0\nc=IN XX 1.2.3.4\n", "m=audio 1 RTP/AVP 0\n",
     "v=0\nm=audio 70000 RTP/AVP 0\n"],
)
def test_malformed_sdp_raises_sdp_error(bad: str) -> None:
    with pytest.raises(sdp.SdpError):
        sdp.parse(bad)


def test_bytes_and_odd_attributes_tolerated() -> None:
    text = SIPP_OFFER + "a=ptime:abc\na=rtpmap:zz nonsense\na=fmtp:101\n"
    neg = sdp.negotiate(sdp.parse(text.encode()))
    assert neg is not None and neg.ptime == 20
