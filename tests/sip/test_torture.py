"""RFC 4475 torture messages against the message grammar (callcenter.sip.message).

Each vector in tests/sip/rfc4475/ is one message of the RFC, byte for byte. Per message
we assert the verdict docs/sip.md records: it parses, or it raises
SipParseError carrying the response to send (400/416/501/505) or 0 for a silent drop.
Verdicts that belong to higher layers (420, 415, 483, 401, 406, 481-style drops) are
listed too: for those the grammar must accept the message so that layer can decide.
"""

from __future__ import annotations

import json
import pathlib

import pytest

from callcenter.sip.message import SipMessage, SipParseError, build_error_response

VECTORS = pathlib.Path(__file__).parent / "rfc4475"

# name -> null (must parse) or the SipParseError.status expected (0 = silent drop).
# Why each verdict: tests/sip/rfc4475/README.md and docs/sip.md.
EXPECTED: dict[str, int | None] = json.loads((VECTORS / "verdicts.json").read_text())


def load(name: str) -> bytes:
    return (VECTORS / f"{name}.dat").read_bytes()


def test_every_vector_has_a_verdict() -> None:
    on_disk = {p.stem for p in VECTORS.glob("*.dat")}
    assert on_disk == set(EXPECTED), on_disk ^ set(EXPECTED)
    assert len(on_disk) == 49


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_rfc4475_verdict(name: str) -> None:
    data = load(name)
    expected = EXPECTED[name]
    if expected is None:
        msg = SipMessage.parse(data)
        # The views the SIP layers read must be ready and must not raise later.
        assert msg.vias and msg.call_id
        assert msg.cseq[1] and isinstance(msg.cseq[0], int)
        assert msg.from_.uri.scheme and msg.to.uri.scheme
        assert isinstance(msg.contacts, list | str)
        # Round trip: what we write parses again to the same essentials.
        again = SipMessage.parse(msg.to_bytes())
        assert again.start_line() == msg.start_line()
        assert again.cseq == msg.cseq and again.call_id == msg.call_id
        assert [str(v) for v in again.vias] == [str(v) for v in msg.vias]
        assert again.body == msg.body
    else:
        with pytest.raises(SipParseError) as info:
            SipMessage.parse(data)
        assert info.value.status == expected, info.value.reason


def test_wsinv_details() -> None:
    msg = SipMessage.parse(load("wsinv"))
    assert msg.method == "INVITE"
    assert [v.sent_by for v in msg.vias] == ["192.0.2.2", "spindle.example.com", "192.168.255.111"]
    assert [v.transport for v in msg.vias] == ["UDP", "TCP", "UDP"]
    assert msg.vias[2].branch == "z9hG4bK30239"
    assert msg.to.tag == "1918181833n" and msg.from_.tag == "98asjd8"
    assert msg.from_.display == 'J Rosenberg \\"'
    assert msg.max_forwards == 68 and msg.cseq == (9, "INVITE")
    assert msg.headers.get("Subject") == ""
    assert msg.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert msg.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    contact = msg.contacts[0]
    assert not isinstance(contact, str)
    assert contact.display == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert msg.routes[0].uri.params["unknown-no-value"] is None
    assert len(msg.body) == 150


def test_intmeth_details() -> None:
    msg = SipMessage.parse(load("intmeth"))
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    ruri = msg.request_uri
    assert ruri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert ruri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert msg.to.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert msg.from_.display == "token1~` token2'+_ token3*%!.-"
    assert msg.from_.params["fromparam''~+*_!.-%"] == '"работающий"'
    assert msg.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert msg.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def test_escapes_are_kept_verbatim() -> None:
    msg = SipMessage.parse(load("esc01"))
    assert msg.request_uri.user == "sips%3Auser%40example.com"
    contact = msg.contacts[0]
    assert not isinstance(contact, str)
    assert contact.uri.params == {"%6c%72": None, "n%61me": "v%61lue%25%34%31"}
    null = SipMessage.parse(load("escnull"))
    assert [c.uri.user for c in null.contacts if not isinstance(c, str)] == ["%00", "%00%00"]
    esc02 = SipMessage.parse(load("esc02"))
    # C%6Fntact is an unknown header, not a Contact: two contacts, not three.
    assert len(esc02.contacts) == 2 and esc02.method == "RE%47IST%45R"


def test_dblreq_extra_octets_dropped() -> None:
    msg = SipMessage.parse(load("dblreq"))
    assert msg.method == "REGISTER" and msg.body == b""


def test_longreq_has_34_vias_in_order() -> None:
    msg = SipMessage.parse(load("longreq"))
    assert len(msg.vias) == 34
    assert msg.vias[0].host == "sip33.example.com"
    assert msg.vias[-1].received == "192.0.2.5"


def test_mpart01_binary_body_framed_exactly() -> None:
    msg = SipMessage.parse(load("mpart01"))
    assert len(msg.body) == 553 and b"\x00" in msg.body
    assert msg.body.endswith(b"--7a9cbec02ceef655--\r\n")


def test_responses_parse() -> None:
    unreason = SipMessage.parse(load("unreason"))
    assert unreason.status == 200 and unreason.reason.startswith("= 2**3 * 5**2 но")
    noreason = SipMessage.parse(load("noreason"))
    assert noreason.status == 100 and noreason.reason == ""


def test_inv2543_body_without_content_length() -> None:
    msg = SipMessage.parse(load("inv2543"))
    assert msg.max_forwards is None and msg.vias[0].branch is None
    assert msg.body.startswith(b"v=0") and msg.body.endswith(b"RTP/AVP 0\r\n")


@pytest.mark.parametrize("name", sorted(n for n, s in EXPECTED.items() if s))
def test_error_response_built_for_answerable_requests(name: str) -> None:
    data = load(name)
    with pytest.raises(SipParseError) as info:
        SipMessage.parse(data)
    raw = build_error_response(data, info.value)
    if name == "insuf":
        assert raw is None  # no From/To/Call-ID: nothing the sender could match
        return
    assert raw is not None
    # The malformed values are echoed verbatim (the sender matches on them), so the
    # response need not pass our strict parser; check its framing and copied fields.
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep and body == b""
    lines = head.split(b"\r\n")
    assert lines[0].startswith(f"SIP/2.0 {info.value.status} ".encode())
    request_lines = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    call_id = next(x for x in request_lines if x.lower().startswith((b"call-id:", b"i:")))
    assert b"Call-ID: " + call_id.split(b":", 1)[1].strip() in lines
    assert sum(1 for x in lines if x.startswith(b"Via: ")) >= 1
    assert b"Content-Length: 0" in lines


@pytest.mark.parametrize("name", ["scalarlg", "bigcode", "bcast"])
def test_no_error_response_to_responses(name: str) -> None:
    assert build_error_response(load(name), SipParseError("x", 400)) is None
