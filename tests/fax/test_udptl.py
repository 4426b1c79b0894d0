"""UDPTL framing (T.38 §9.1): byte layouts worked out from the ASN.1 with aligned PER,
redundancy recovery, FEC packets read for their primary, malformed input refused; and
SpanDSP's own T.38 terminals faxing to each other through our framing with loss."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from callcenter.fax.terminal import FaxJob, T38Fax
from callcenter.fax.udptl import UdptlError, UdptlPacket, UdptlReceiver, UdptlSender, decode, encode
from tests.fax.documents import differing_pages, make_document


def test_the_cng_indicator_packet_has_the_layout_of_the_spec() -> None:
    # seq 0, primary = IFP t30-indicator CNG (0x02: choice 0, indicator 1), no redundancy:
    # 2 octets seq, length 1, the IFP, error-recovery choice 0, zero secondary packets
    assert encode(UdptlPacket(0, b"\x02")) == bytes.fromhex("0000 01 02 00 00")
    assert decode(bytes.fromhex("0000 01 02 00 00")) == UdptlPacket(0, b"\x02", [])


def test_redundant_packets_follow_newest_first_and_long_fields_take_two_length_octets() -> None:
    big = bytes(range(256)) * 2  # 512 octets: length 0x82 0x00
    data = encode(UdptlPacket(0x1234, big, [b"\x04", b"\x02"]))
    assert data[:4] == bytes.fromhex("1234 8200")
    assert data[4 + 512:] == bytes.fromhex("00 02 01 04 01 02")
    assert decode(data) == UdptlPacket(0x1234, big, [b"\x04", b"\x02"])


def test_an_fec_packet_yields_its_primary() -> None:
    # error-recovery 0x80 (fec-info), fec-npackets = 3 (length 1, value 3), one parity string
    data = bytes.fromhex("0007 02 c0ff 80 01 03 01 02 aabb")
    pkt = decode(data)
    assert (pkt.seq, pkt.primary, pkt.fec) == (7, b"\xc0\xff", True)


@pytest.mark.parametrize("bad", ["", "00", "0000 05 02", "0000 01 02", "0000 01 02 00 03 01 02",
                                 "0000 c1 00 00 00"])
def test_malformed_datagrams_are_refused_and_counted(bad: str) -> None:
    with pytest.raises(UdptlError):
        decode(bytes.fromhex(bad))
    rx = UdptlReceiver()
    assert rx.feed(bytes.fromhex(bad)) == [] and rx.malformed == 1


def test_a_lost_packet_is_recovered_from_the_next_ones_redundancy_and_duplicates_dropped() -> None:
    tx, rx = UdptlSender(redundancy=2), UdptlReceiver()
    frames = [tx.frame(bytes([n])) for n in range(6)]
    got = []
    for n in (0, 1, 4, 4, 5):  # 2 and 3 lost, 4 arrives twice
        got += rx.feed(frames[n])
    assert got == [(0, b"\x00"), (1, b"\x01"), (2, b"\x02"), (3, b"\x03"), (4, b"\x04"), (5, b"\x05")]
    assert (rx.recovered, rx.lost, rx.duplicates) == (2, 0, 1)


def test_a_gap_wider_than_the_redundancy_is_counted_lost() -> None:
    tx, rx = UdptlSender(redundancy=1), UdptlReceiver()
    frames = [tx.frame(bytes([n])) for n in range(5)]
    got = rx.feed(frames[0]) + rx.feed(frames[4])
    assert got == [(0, b"\x00"), (3, b"\x03"), (4, b"\x04")] and rx.lost == 2


def test_spandsp_t38_terminals_fax_through_our_framing_with_five_percent_loss(tmp_path: Path) -> None:
    doc = make_document(tmp_path / "sent.tif", pages=2)
    out = tmp_path / "received.tif"
    rnd = random.Random(3)
    to_rx: list[bytes] = []
    to_tx: list[bytes] = []
    framer_a, framer_b = UdptlSender(), UdptlSender()
    deframer_a, deframer_b = UdptlReceiver(), UdptlReceiver()
    sender = T38Fax(FaxJob("send", str(doc), ident="SENDER"),
                    lambda ifp, _n: to_rx.append(framer_a.frame(ifp)))
    receiver = T38Fax(FaxJob("receive", str(out), ident="RECEIVER"),
                      lambda ifp, _n: to_tx.append(framer_b.frame(ifp)))
    for _ in range(50 * 120):  # sample time, not wall time: 20 ms per step
        if sender.done and receiver.done:
            break
        sender.tick()
        receiver.tick()
        for queue, deframer, term in ((to_rx, deframer_b, receiver), (to_tx, deframer_a, sender)):
            for data in queue:
                if rnd.random() >= 0.05:
                    for seq, ifp in deframer.feed(data):
                        term.rx_ifp(ifp, seq)
            queue.clear()
    assert sender.result is not None and receiver.result is not None
    assert sender.result.ok and receiver.result.ok, (sender.result, receiver.result)
    assert receiver.result.remote_ident == "SENDER" and receiver.result.pages == 2
    assert deframer_b.recovered > 0  # loss happened and redundancy filled it
    assert differing_pages(doc, out) == []
    sender.close()
    receiver.close()
