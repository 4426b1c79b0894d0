"""Dialog state (RFC 3261 §12) built from hand-written messages."""

from __future__ import annotations

from callcenter.sip.dialog import Dialog, DialogState, new_branch, new_tag, uri_address, uri_transport
from callcenter.sip.message import SipMessage, make_response

INVITE = (
    "INVITE sip:600@10.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bKp1\r\n"
    "Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKc1\r\n"
    "Record-Route: <sip:p1.example;lr>, <sip:p2.example;lr>\r\n"
    "Max-Forwards: 69\r\n"
    'From: "Alice" <sip:alice@example.com>;tag=a1\r\n'
    "To: <sip:600@10.0.0.1>\r\n"
    "Call-ID: c1@10.0.0.2\r\n"
    "CSeq: 7 INVITE\r\n"
    "Contact: <sip:alice@10.0.0.2:5060>\r\n"
    "Content-Length: 0\r\n\r\n"
)


def parse(text: str) -> SipMessage:
    return SipMessage.parse(text.encode())


def test_uas_dialog_from_invite() -> None:
    invite = parse(INVITE)
    d = Dialog.as_uas(invite, "l1", "sip:cc@10.0.0.1:5060")
    assert d.id == ("c1@10.0.0.2", "l1", "a1")
    assert d.remote_target == "sip:alice@10.0.0.2:5060"
    assert d.route_set == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]  # UAS keeps the order
    assert d.remote_cseq == 7
    assert d.local.endswith(";tag=l1")
    bye = d.create_request("BYE", via="SIP/2.0/UDP 10.0.0.1:5060;rport")
    assert bye.method == "BYE"
    assert bye.uri == "sip:alice@10.0.0.2:5060"
    assert bye.headers.get_all("Route") == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
    assert bye.from_.tag == "l1" and bye.to.tag == "a1"
    assert bye.cseq == (d.local_cseq, "BYE")
    assert bye.vias[0].params["branch"].startswith("z9hG4bK")
    assert d.next_hop() == "sip:p1.example;lr"
    # The built request survives a round trip through the parser.
    assert SipMessage.parse(bye.to_bytes()).call_id == "c1@10.0.0.2"


def test_uac_dialog_reverses_record_route_and_acks_with_invite_cseq() -> None:
    invite = parse(INVITE)
    ok = parse(
        make_response(
            invite,
            200,
            to_tag="b2",
            headers=[
                ("Record-Route", "<sip:p1.example;lr>"),
                ("Record-Route", "<sip:p2.example;lr>"),
                ("Contact", "<sip:bob@10.0.0.3:5062>"),
            ],
        )
        .to_bytes()
        .decode()
    )
    d = Dialog.as_uac(invite, ok, "sip:cc@10.0.0.1")
    assert d.state is DialogState.CONFIRMED
    assert d.route_set == ["<sip:p2.example;lr>", "<sip:p1.example;lr>"]
    assert d.remote_target == "sip:bob@10.0.0.3:5062"
    assert d.remote_tag == "b2" and d.local_tag == "a1"
    ack = d.create_request("ACK", via="SIP/2.0/UDP 10.0.0.1:5060", cseq=7)
    assert ack.cseq == (7, "ACK")
    assert d.local_cseq == 7  # ACK does not consume a CSeq number
    info = d.create_request("INFO", via="SIP/2.0/UDP 10.0.0.1:5060")
    assert info.cseq == (8, "INFO")


def test_remote_cseq_must_not_go_backwards() -> None:
    d = Dialog.as_uas(parse(INVITE), "l1", "sip:cc@10.0.0.1")
    lower = parse(
        INVITE.replace("CSeq: 7 INVITE", "CSeq: 6 INVITE").replace(
            "To: <sip:600@10.0.0.1>", "To: <sip:600@10.0.0.1>;tag=l1"
        )
    )
    higher = parse(INVITE.replace("CSeq: 7 INVITE", "CSeq: 9 INVITE"))
    assert not d.accept_remote_cseq(lower)
    assert d.accept_remote_cseq(higher)
    assert d.remote_cseq == 9


def test_target_refresh_takes_new_contact() -> None:
    d = Dialog.as_uas(parse(INVITE), "l1", "sip:cc@10.0.0.1")
    reinvite = parse(INVITE.replace("<sip:alice@10.0.0.2:5060>", "<sip:alice@192.0.2.7:5099>"))
    d.refresh_target(reinvite)
    assert d.remote_target == "sip:alice@192.0.2.7:5099"


def test_address_helpers_and_ids() -> None:
    assert uri_address("sip:bob@127.0.0.1:5099;transport=tcp") == ("127.0.0.1", 5099)
    assert uri_address("<sip:bob@127.0.0.1>") == ("127.0.0.1", 5060)
    assert uri_address("sip:bob@example.com;maddr=127.0.0.2") == ("127.0.0.2", 5060)
    assert uri_transport("sip:bob@127.0.0.1;transport=tcp") == "TCP"
    assert uri_transport("sip:bob@127.0.0.1") == "UDP"
    assert len({new_tag() for _ in range(1000)}) == 1000
    assert new_branch().startswith("z9hG4bK")
