"""Message grammar API: parsing details, serialization, responses, robustness."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.sip.headers import Headers, Via
from callcenter.sip.message import (
    SipMessage,
    SipParseError,
    build_error_response,
    make_response,
)
from callcenter.sip.uri import NameAddr, SipUri, UriError


def request(
    *extra: str, start: str = "INVITE sip:600@127.0.0.1 SIP/2.0", body: bytes = b"", cl: bool = True
) -> bytes:
    lines = [
        start,
        "Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bK-abc;rport",
        'From: "Alice" <sip:alice@example.com>;tag=a1',
        "To: <sip:600@127.0.0.1>",
        "Call-ID: c1@10.0.0.1",
        "CSeq: 1 " + start.split(" ", 1)[0],
        "Max-Forwards: 70",
        *extra,
    ]
    if cl:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_compact_forms_expand_to_long_names() -> None:
    data = (
        b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/TCP h;branch=z9hG4bK1\r\nf: <sip:x@y>;tag=1\r\n"
        b"t: sip:a@b\r\ni: cid\r\nCSeq: 2 OPTIONS\r\nm: <sip:x@10.0.0.2>\r\nk: timer\r\n"
        b"l: 0\r\n\r\n"
    )
    msg = SipMessage.parse(data)
    assert msg.headers.get("Via") == "SIP/2.0/TCP h;branch=z9hG4bK1"
    assert msg.call_id == "cid" and msg.headers.get("supported") == "timer"
    assert [name for name, _ in msg.headers][:4] == ["Via", "From", "To", "Call-ID"]
    assert msg.contacts[0].uri.host == "10.0.0.2"  # type: ignore[union-attr]


def test_comma_lists_split_outside_quotes_and_brackets() -> None:
    msg = SipMessage.parse(
        request(
            'Contact: "Doe, John" <sip:j,x@h1;a=1>;q=0.5, <sip:k@h2>',
            "Allow: INVITE, ACK,BYE",
            'Authorization: Digest username="a", realm="b"',
        )
    )
    contacts = msg.contacts
    assert not isinstance(contacts, str)
    assert [c.display for c in contacts] == ["Doe, John", None]
    assert (
        contacts[0].uri.user == "j,x"
        and contacts[0].uri.params == {"a": "1"}
        and contacts[0].params == {"q": "0.5"}
    )
    assert msg.headers.get_all("Allow") == ["INVITE", "ACK", "BYE"]
    assert msg.header_tokens("allow") == ["invite", "ack", "bye"]
    # Not a list header: commas separate auth-params inside one value.
    assert len(msg.headers.get_all("Authorization")) == 1


def test_via_rport_received_and_ipv6() -> None:
    via = Via.parse("SIP/2.0/UDP [2001:db8::9]:5070;branch=z9hG4bKx;rport;received=10.0.0.9")
    assert via.host == "[2001:db8::9]" and via.port == 5070
    assert via.has_rport and via.rport is None and via.received == "10.0.0.9"
    via.params["rport"] = "5071"
    assert via.rport == 5071
    assert str(via) == ("SIP/2.0/UDP [2001:db8::9]:5070;branch=z9hG4bKx;rport=5071;received=10.0.0.9")
    for bad in ("SIP/2.0/UDP [zz::1]", "SIP/2.0/UDP host:99999", "SIP/2.0 host", "SIP/2.0/UDP host;rport=x"):
        with pytest.raises(UriError):
            Via.parse(bad)


def test_uri_forms() -> None:
    uri = SipUri.parse("sips:alice:pw@[::1]:5061;transport=TCP;lr?subject=hi")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == ("sips", "alice", "pw", "[::1]", 5061)
    assert uri.transport == "tcp" and "lr" in uri.params and uri.headers == "subject=hi"
    assert str(SipUri.parse("sip:bob@example.com;user=phone")) == "sip:bob@example.com;user=phone"
    tel = SipUri.parse("tel:+1-201-555-0123")
    assert tel.scheme == "tel" and not tel.is_sip and str(tel) == "tel:+1-201-555-0123"
    for bad in ("sip:", "sip:user@", "sip:a b@c", "sip:host:port", "nocolon"):
        with pytest.raises(UriError):
            SipUri.parse(bad)


def test_name_addr_forms() -> None:
    na = NameAddr.parse('"A \\"q\\"" <sip:a@b>;tag=1;x')
    assert na.display == 'A "q"' and na.tag == "1" and na.params["x"] is None
    assert NameAddr.parse(str(na)).display == na.display
    assert NameAddr.parse("sip:a@b;tag=9").tag == "9"  # params after bare URI: header's
    assert NameAddr.parse("sip:a@b;tag=9").uri.params == {}
    with pytest.raises(UriError):
        NameAddr.parse("<sip:a@b")


def test_folding_and_whitespace_around_colon() -> None:
    data = request("Subject  :  multi\r\n line\r\n\tvalue")
    msg = SipMessage.parse(data)
    assert msg.headers.get("Subject") == "multi line value"


def test_body_framing_udp_and_stream() -> None:
    body = b"v=0\r\n"
    assert SipMessage.parse(request(body=body)).body == body
    # UDP: extra datagram bytes beyond Content-Length are discarded.
    assert SipMessage.parse(request(body=body) + b"garbage").body == body
    # UDP without Content-Length: body is the rest of the datagram.
    no_cl = request(cl=False) + b"abc"
    assert SipMessage.parse(no_cl).body == b"abc"
    # A stream transport must carry Content-Length.
    with pytest.raises(SipParseError) as info:
        SipMessage.parse(no_cl, stream=True)
    assert info.value.status == 400
    # Body shorter than Content-Length: a request gets 400.
    short = request(body=body)[:-2]
    with pytest.raises(SipParseError) as info:
        SipMessage.parse(short)
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"\r\n\r\n", 0),  # keep-alive
        (b"", 0),
        (b"\x16\x03\x01\x00garbage-tls-hello", 0),
        (b"INVITE sip:a@b SIP/2.0\r\nVia: x", 400),  # no header end
        (request().replace(b"\r\nTo:", b"\nTo:"), 400),  # bare LF
        (request("Max-Forwards: 256").replace(b"Max-Forwards: 70\r\n", b""), 400),
        (request().replace(b"CSeq: 1 INVITE", b"CSeq: 2147483648 INVITE"), 400),
        (request().replace(b"CSeq: 1 INVITE", b"CSeq: one INVITE"), 400),
        (request().replace(b"Call-ID: c1@10.0.0.1", b"Call-ID: a b"), 400),
        (request(start="INVITE tel:+1234 SIP/2.0"), None),
        (request(start="INVITE mailto:a@b SIP/2.0"), 416),
        (request("Contact: *"), None),
        (request("Contact: *, <sip:a@b>"), 400),
        (request("Via: SIP/2.0/UDP ,"), 400),
        (request("Bad Header: x"), 400),
        (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n\r\n", 0),  # response missing headers
    ],
)
def test_status_for_malformed_input(data: bytes, status: int | None) -> None:
    if status is None:
        SipMessage.parse(data)
        return
    with pytest.raises(SipParseError) as info:
        SipMessage.parse(data)
    assert info.value.status == status


def test_make_response_copies_per_rfc3261_8_2_6() -> None:
    req = SipMessage.parse(
        request("Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK-p", "Record-Route: <sip:p;lr>")
    )
    resp = make_response(req, 180, to_tag="t9", headers=[("Contact", "<sip:600@127.0.0.1>")])
    assert resp.status == 180 and resp.reason == "Ringing" and not resp.is_request
    assert resp.headers.get_all("Via") == req.headers.get_all("Via")
    assert resp.to.tag == "t9" and resp.from_.tag == "a1"
    assert resp.cseq == (1, "INVITE") and resp.call_id == "c1@10.0.0.1"
    assert "Record-Route" not in resp.headers  # the dialog layer adds it when it must
    wire = resp.to_bytes()
    assert wire.startswith(b"SIP/2.0 180 Ringing\r\n")
    assert wire.endswith(b"Content-Length: 0\r\n\r\n")
    again = SipMessage.parse(wire)
    assert again.to.tag == "t9" and again.contacts[0].uri.user == "600"  # type: ignore[union-attr]
    # A To that already has a tag keeps it.
    tagged = make_response(
        SipMessage.parse(
            wire.replace(b"SIP/2.0 180 Ringing", b"BYE sip:x@y SIP/2.0").replace(
                b"CSeq: 1 INVITE", b"CSeq: 1 BYE"
            )
        ),
        200,
        to_tag="other",
    )
    assert tagged.to.tag == "t9"


def test_request_builder_and_content_length_rewritten() -> None:
    msg = SipMessage.request(
        "OPTIONS",
        SipUri.parse("sip:1001@127.0.0.1:5082"),
        [
            ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKq"),
            ("From", "<sip:cc@x>;tag=1"),
            ("To", "<sip:1001@127.0.0.1>"),
            ("Call-ID", "k1"),
            ("CSeq", "7 OPTIONS"),
            ("Content-Length", "999"),
        ],
        body=b"hello",
    )
    wire = msg.to_bytes()
    assert wire.count(b"Content-Length") == 1 and b"Content-Length: 5\r\n\r\nhello" in wire
    assert SipMessage.parse(wire).body == b"hello"


def test_views_follow_header_changes() -> None:
    msg = SipMessage.parse(request())
    via = msg.top_via
    via.params["received"] = "192.0.2.7"
    via.params["rport"] = "40000"
    msg.set_top_via(via)
    assert msg.headers.get("Via", "").endswith("rport=40000;received=192.0.2.7")
    assert msg.vias[0].rport == 40000
    msg.headers.prepend("Via", "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKtop")
    assert msg.vias[0].branch == "z9hG4bKtop" and len(msg.vias) == 2
    msg.headers.remove_first("Via")
    assert msg.vias[0].received == "192.0.2.7"


def test_headers_multidict() -> None:
    h = Headers([("v", "a"), ("Via", "b"), ("X-Custom", "1")])
    assert h.get_all("VIA") == ["a", "b"] and h.count("via") == 2
    h.set("via", "c")
    assert h.get_all("Via") == ["c"] and "x-custom" in h and "Nope" not in h
    h.add("x-custom", "2")
    h.remove("X-CUSTOM")
    assert "X-Custom" not in h and len(h) == 1
    assert h.copy().items() == [("Via", "c")]


def test_expires_and_max_forwards_views() -> None:
    msg = SipMessage.parse(request("Expires: 99999999999999"))
    assert msg.expires == 2**32 - 1 and msg.max_forwards == 70
    assert SipMessage.parse(request("Expires: soon")).expires is None


def test_error_response_for_bad_request_line() -> None:
    data = request(start="INVITE  sip:600@127.0.0.1 SIP/2.0").replace(b"CSeq: 1 INVITE ", b"CSeq: 1 INVITE")
    with pytest.raises(SipParseError) as info:
        SipMessage.parse(data)
    raw = build_error_response(data, info.value)
    assert raw is not None
    resp = SipMessage.parse(raw)
    assert resp.status == 400 and resp.to.tag  # a To tag is added (RFC 3261 §8.2.6.2)
    assert resp.vias[0].branch == "z9hG4bK-abc"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_raise_anything_but_sip_parse_error(data: bytes) -> None:
    try:
        SipMessage.parse(data)
    except SipParseError as exc:
        assert exc.status in (0, 400, 416, 501, 505)
        build_error_response(data, exc)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=len(request(body=b"v=0\r\n")) - 1), st.binary(min_size=1, max_size=8)
)
def test_mutated_request_never_raises_anything_but_sip_parse_error(pos: int, junk: bytes) -> None:
    base = request("Contact: <sip:a@10.0.0.1>", body=b"v=0\r\n")
    data = base[:pos] + junk + base[pos + len(junk) :]
    try:
        msg = SipMessage.parse(data)
    except SipParseError as exc:
        build_error_response(data, exc)
        return
    # Whatever parsed must serialize and parse again.
    SipMessage.parse(msg.to_bytes())


def test_header_field_cap_bounds_work_per_message() -> None:
    many_lines = request(*[f"X-H{i}: v" for i in range(300)])
    many_commas = request("Allow: " + ",".join(["INVITE"] * 300))
    for data in (many_lines, many_commas):
        with pytest.raises(SipParseError, match="too many header fields") as info:
            SipMessage.parse(data)
        assert info.value.status == 400
    assert len(SipMessage.parse(request(*[f"X-H{i}: v" for i in range(200)])).headers) > 200
