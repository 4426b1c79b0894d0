"""RFC 3261 §17 transaction state machines, driven by a manual clock (no sleeps)."""

from __future__ import annotations

import gc
import weakref

import pytest

from callcenter.sip.message import SipMessage, make_response
from callcenter.sip.timers import ManualScheduler, SipTimers
from callcenter.sip.transaction import (
    ClientInviteTransaction,
    State,
    TransactionLayer,
    Uas2xxRetransmitter,
)

PEER = ("127.0.0.1", 5999)


class Flow:
    """Stands for one transport: records what the layer sent, with the clock time."""

    def __init__(self, name: str = "UDP") -> None:
        self.name = name
        self.reliable = name == "TCP"  # what the transaction timers look at


class Harness:
    def __init__(self) -> None:
        self.clock = ManualScheduler()
        self.sent: list[tuple[float, bytes]] = []
        self.layer = TransactionLayer(self._send, self.clock, SipTimers())

    def _send(self, transport: object, data: bytes, addr: tuple[str, int]) -> None:
        assert addr == PEER
        self.sent.append((self.clock.time(), data))

    def start_lines(self) -> list[str]:
        return [data.split(b"\r\n", 1)[0].decode() for _, data in self.sent]

    def times(self, start_line_prefix: str) -> list[float]:
        return [
            t for t, data in self.sent if data.split(b"\r\n", 1)[0].decode().startswith(start_line_prefix)
        ]


def request(method: str, branch: str = "z9hG4bKabc1", cseq: int = 1, to_tag: str = "") -> SipMessage:
    to = "<sip:600@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    cseq_method = method
    raw = (
        f"{method} sip:600@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5999;branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@127.0.0.1>;tag=ftag\r\n"
        f"To: {to}\r\n"
        "Call-ID: call-1@127.0.0.1\r\n"
        f"CSeq: {cseq} {cseq_method}\r\n"
        "Contact: <sip:alice@127.0.0.1:5999>\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    return SipMessage.parse(raw.encode())


def response_to(req: SipMessage, status: int, to_tag: str = "ttag") -> SipMessage:
    return SipMessage.parse(make_response(req, status, to_tag=to_tag).to_bytes())


# ---------------------------------------------------------------- server INVITE


def test_server_invite_sends_trying_and_absorbs_retransmission() -> None:
    h = Harness()
    invite = request("INVITE")
    txn = h.layer.receive_request(invite, PEER, Flow())
    assert txn is not None
    assert h.start_lines() == ["SIP/2.0 100 Trying"]
    # A retransmitted INVITE is not a new call: the last provisional goes out again.
    assert h.layer.receive_request(request("INVITE"), PEER, Flow()) is None
    assert h.start_lines() == ["SIP/2.0 100 Trying", "SIP/2.0 100 Trying"]
    txn.reply(180)
    assert h.layer.receive_request(request("INVITE"), PEER, Flow()) is None
    assert h.start_lines()[-2:] == ["SIP/2.0 180 Ringing", "SIP/2.0 180 Ringing"]


def test_server_invite_error_retransmits_with_timer_g_until_ack() -> None:
    h = Harness()
    txn = h.layer.receive_request(request("INVITE"), PEER, Flow())
    assert txn is not None
    txn.reply(486)
    assert txn.state is State.COMPLETED
    h.clock.advance(8.0)
    # Timer G: T1, then doubling, capped at T2 = 4 s.
    assert h.times("SIP/2.0 486") == [0.0, 0.5, 1.5, 3.5, 7.5]
    assert h.layer.absorb_ack(request("ACK", to_tag="x"))
    assert txn.state is State.CONFIRMED
    h.clock.advance(20.0)
    assert len(h.times("SIP/2.0 486")) == 5  # no more after the ACK
    # Timer I (T4 = 5 s on UDP) ended the transaction.
    assert txn.state is State.TERMINATED
    assert not h.layer.server


def test_server_invite_timer_h_reports_missing_ack() -> None:
    h = Harness()
    txn = h.layer.receive_request(request("INVITE"), PEER, Flow())
    assert txn is not None
    lost: list[bool] = []
    txn.on_timeout = lambda: lost.append(True)
    txn.reply(500)
    h.clock.advance(31.9)
    assert not lost
    h.clock.advance(0.2)
    assert lost == [True]
    assert txn.state is State.TERMINATED
    assert not h.layer.server


def test_server_invite_2xx_enters_accepted_and_absorbs_invites() -> None:
    h = Harness()
    txn = h.layer.receive_request(request("INVITE"), PEER, Flow())
    assert txn is not None
    txn.reply(200)
    assert txn.state is State.ACCEPTED
    sent_before = len(h.sent)
    assert h.layer.receive_request(request("INVITE"), PEER, Flow()) is None
    assert len(h.sent) == sent_before  # RFC 6026: absorbed, the TU retransmits its 2xx
    # The ACK for a 2xx is not the transaction's: it goes to the TU.
    assert not h.layer.absorb_ack(request("ACK", branch="z9hG4bKother", to_tag="ttag"))
    h.clock.advance(32.1)  # Timer L
    assert txn.state is State.TERMINATED


def test_uas_2xx_retransmitter_spacing_stop_and_timeout() -> None:
    h = Harness()
    invite = request("INVITE")
    ok = response_to(invite, 200)
    retx = Uas2xxRetransmitter(h.layer, ok, PEER, Flow(), None)
    h.clock.advance(12.0)
    assert h.times("SIP/2.0 200") == [0.5, 1.5, 3.5, 7.5, 11.5]
    retx.stop()
    h.clock.advance(40.0)
    assert len(h.times("SIP/2.0 200")) == 5

    h2 = Harness()
    gave_up: list[bool] = []
    Uas2xxRetransmitter(h2.layer, ok, PEER, Flow(), lambda: gave_up.append(True))
    h2.clock.advance(31.9)
    assert not gave_up
    h2.clock.advance(0.2)
    assert gave_up == [True]
    assert h2.clock.pending() == 0


def test_cancel_finds_its_invite_transaction() -> None:
    h = Harness()
    txn = h.layer.receive_request(request("INVITE"), PEER, Flow())
    cancel = request("CANCEL")
    assert h.layer.find_invite_for_cancel(cancel) is txn
    assert h.layer.find_invite_for_cancel(request("CANCEL", branch="z9hG4bKnope")) is None
    # The CANCEL is its own non-INVITE transaction.
    cancel_txn = h.layer.receive_request(cancel, PEER, Flow())
    assert cancel_txn is not None and cancel_txn is not txn


# ---------------------------------------------------------------- server non-INVITE


def test_server_non_invite_timer_j_and_retransmissions() -> None:
    h = Harness()
    bye = request("BYE", to_tag="t")
    txn = h.layer.receive_request(bye, PEER, Flow())
    assert txn is not None
    assert h.sent == []  # no automatic 100 for non-INVITE
    assert h.layer.receive_request(request("BYE", to_tag="t"), PEER, Flow()) is None
    assert h.sent == []  # Trying: a retransmission is simply absorbed
    txn.reply(200)
    assert h.layer.receive_request(request("BYE", to_tag="t"), PEER, Flow()) is None
    assert h.start_lines() == ["SIP/2.0 200 OK", "SIP/2.0 200 OK"]
    h.clock.advance(31.9)
    assert txn.state is State.COMPLETED
    h.clock.advance(0.2)
    assert txn.state is State.TERMINATED
    assert not h.layer.server


def test_server_non_invite_over_tcp_ends_at_once() -> None:
    h = Harness()
    txn = h.layer.receive_request(request("OPTIONS"), PEER, Flow("TCP"))
    assert txn is not None
    txn.reply(200)
    h.clock.advance(0.0)
    assert txn.state is State.TERMINATED


# ---------------------------------------------------------------- client INVITE


def test_client_invite_timer_a_and_b() -> None:
    h = Harness()
    timeouts: list[bool] = []
    txn = h.layer.start_client(request("INVITE"), PEER, Flow(), None, lambda: timeouts.append(True))
    assert isinstance(txn, ClientInviteTransaction)
    h.clock.advance(40.0)
    # Timer A doubles without a cap; Timer B (64*T1 = 32 s) ends it.
    assert h.times("INVITE") == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert timeouts == [True]
    assert not h.layer.client


def test_client_invite_provisional_stops_retransmission() -> None:
    h = Harness()
    got: list[int] = []
    invite = request("INVITE")
    h.layer.start_client(invite, PEER, Flow(), lambda r: got.append(r.status or 0))
    h.clock.advance(0.6)
    assert h.layer.receive_response(response_to(invite, 180))
    h.clock.advance(60.0)
    assert h.times("INVITE") == [0.0, 0.5]
    assert got == [180]


def test_client_invite_error_is_acked_with_same_branch() -> None:
    h = Harness()
    got: list[int] = []
    invite = request("INVITE")
    txn = h.layer.start_client(invite, PEER, Flow(), lambda r: got.append(r.status or 0))
    busy = response_to(invite, 486, to_tag="busy")
    h.layer.receive_response(busy)
    assert got == [486]
    ack = SipMessage.parse(h.sent[-1][1])
    assert ack.method == "ACK"
    assert ack.vias[0].params["branch"] == "z9hG4bKabc1"
    assert ack.to.tag == "busy"
    assert ack.cseq == (1, "ACK")
    # A retransmitted 486 gets the ACK again but is not handed to the TU twice.
    h.layer.receive_response(busy)
    assert got == [486]
    assert h.start_lines().count("ACK sip:600@127.0.0.1 SIP/2.0") == 2
    h.clock.advance(32.1)  # Timer D
    assert txn.state is State.TERMINATED


def test_client_invite_2xx_goes_to_tu_including_retransmissions() -> None:
    h = Harness()
    got: list[int] = []
    invite = request("INVITE")
    txn = h.layer.start_client(invite, PEER, Flow(), lambda r: got.append(r.status or 0))
    ok = response_to(invite, 200)
    h.layer.receive_response(ok)
    h.layer.receive_response(ok)
    assert got == [200, 200]  # the TU re-ACKs each 2xx (RFC 6026 Accepted state)
    assert txn.state is State.ACCEPTED
    assert "ACK" not in " ".join(h.start_lines())  # ACK for 2xx is the TU's job
    h.clock.advance(32.1)  # Timer M
    assert txn.state is State.TERMINATED


# ---------------------------------------------------------------- client non-INVITE


def test_client_non_invite_timer_e_f() -> None:
    h = Harness()
    timeouts: list[bool] = []
    h.layer.start_client(request("BYE", to_tag="t"), PEER, Flow(), None, lambda: timeouts.append(True))
    h.clock.advance(12.0)
    assert h.times("BYE") == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5]  # E doubles to T2 = 4 s
    h.clock.advance(21.0)
    assert timeouts == [True]


def test_client_non_invite_provisional_then_final_timer_k() -> None:
    h = Harness()
    got: list[int] = []
    bye = request("BYE", to_tag="t")
    txn = h.layer.start_client(bye, PEER, Flow(), lambda r: got.append(r.status or 0))
    h.layer.receive_response(response_to(bye, 100))
    h.clock.advance(9.0)
    # In Proceeding Timer E fires every T2.
    assert h.times("BYE") == [0.0, 0.5, 4.5, 8.5]
    h.layer.receive_response(response_to(bye, 200))
    h.layer.receive_response(response_to(bye, 200))
    assert got == [100, 200]
    h.clock.advance(4.9)
    assert txn.state is State.COMPLETED
    h.clock.advance(0.2)  # Timer K = T4
    assert txn.state is State.TERMINATED


def test_client_over_tcp_never_retransmits() -> None:
    h = Harness()
    h.layer.start_client(request("INVITE"), PEER, Flow("TCP"), None)
    h.layer.start_client(request("OPTIONS", branch="z9hG4bKo"), PEER, Flow("TCP"), None)
    h.clock.advance(31.0)
    assert len(h.sent) == 2


def test_unmatched_response_is_reported() -> None:
    h = Harness()
    assert not h.layer.receive_response(response_to(request("INVITE"), 200))


@pytest.mark.parametrize("method", ["INVITE", "BYE"])
def test_terminated_transactions_leave_no_cycles(method: str) -> None:
    """After termination nothing but our own variable holds a transaction: refcounting frees it."""
    h = Harness()
    req = request(method, to_tag="t" if method == "BYE" else "")
    client = h.layer.start_client(req, PEER, Flow(), lambda r: None, lambda: None)
    server = h.layer.receive_request(
        request(method, branch="z9hG4bKsrv", to_tag=req.to.tag or ""), PEER, Flow()
    )
    assert server is not None
    server.reply(486 if method == "INVITE" else 200)
    h.layer.receive_response(response_to(req, 500))
    refs = [weakref.ref(client), weakref.ref(server)]
    gc.disable()
    try:
        h.clock.advance(60.0)
        del client, server
        assert [r() for r in refs] == [None, None]
    finally:
        gc.enable()


def test_delayed_trying_is_skipped_when_answered_quickly() -> None:
    h = Harness()
    h.layer.trying_delay = 0.2
    txn = h.layer.receive_request(request("INVITE"), PEER, Flow())
    assert txn is not None
    h.clock.advance(0.1)
    txn.reply(200)
    h.clock.advance(1.0)
    assert h.start_lines() == ["SIP/2.0 200 OK"]

    h2 = Harness()
    h2.layer.trying_delay = 0.2
    slow = h2.layer.receive_request(request("INVITE"), PEER, Flow())
    assert slow is not None
    h2.clock.advance(0.25)
    assert h2.start_lines() == ["SIP/2.0 100 Trying"]  # due after 200 ms without an answer

    h3 = Harness()
    h3.layer.trying_delay = 0.2
    h3.layer.receive_request(request("INVITE"), PEER, Flow())
    h3.layer.receive_request(request("INVITE"), PEER, Flow())  # retransmitted before 200 ms
    assert h3.start_lines() == ["SIP/2.0 100 Trying"]
    h3.clock.advance(1.0)
    assert h3.start_lines() == ["SIP/2.0 100 Trying"]
