"""Our UA core against real SIPp over 127.0.0.1 (calls, CANCEL, BYE both ways, errors)."""

from __future__ import annotations

import asyncio
import math
import struct
import wave
from pathlib import Path

from sip_helpers import ServerFactory, Sipp, answer_and_wait

from callcenter.apps.echo import EchoTest
from callcenter.sip.calls import Call, CallState


async def test_builtin_uac_calls_complete(server_factory: ServerFactory, sipp: Sipp) -> None:
    server = await server_factory(answer_and_wait)
    result = await sipp(server.uri_host, builtin="uac", calls=5, rate=10, duration_ms=300)
    assert result.returncode == 0, result.errors or result.stdout[-2000:]
    assert len(server.calls) == 5
    for call in server.calls:
        await asyncio.wait_for(call.ended.wait(), 5)
        assert call.end_reason == "remote_bye"
        assert call.confirmed.is_set()
        assert call.dnis == "600"
        assert call.ani == "sipp"
    assert server.ua.calls == {}
    assert server.ua.stats["calls_in"] == 5


async def test_uac_pcap_media_and_dtmf(
    server_factory: ServerFactory, sipp: Sipp, sipp_pcap_cwd: Path
) -> None:
    """SIPp plays PCMA audio and an RFC 4733 digit '1'; the echo app plays its prompt,
    hears both, and echoes the digit."""
    prompt = sipp_pcap_cwd / "prompt.wav"
    with wave.open(str(prompt), "wb") as w:  # 1 s, 8 kHz mono 16-bit: what the TTS cache renders
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", int(6000 * math.sin(i / 4))) for i in range(8000)))
    server = await server_factory(EchoTest(prompt))
    result = await sipp(server.uri_host, builtin="uac_pcap", calls=1, rate=1, timeout=40, cwd=sipp_pcap_cwd)
    assert result.returncode == 0, result.errors or result.stdout[-2000:]
    assert len(server.calls) == 1
    call = server.calls[0]
    await asyncio.wait_for(call.ended.wait(), 5)
    assert call.media.codec == "PCMA"
    assert call.media.stats.rx_packets > 200  # g711a.pcap holds ~5 s of 20 ms packets
    assert call.media.stats.rx_energy_sum > 0
    assert call.data["echoed_digits"][:1] == ["1"]
    assert call.media.stats.tx_packets >= 50  # the 1 s prompt (50 packets) plus the echoed digit
    assert call.end_reason == "remote_bye"


async def test_caller_cancels_before_answer(server_factory: ServerFactory, sipp: Sipp) -> None:
    async def ring_forever(call: Call) -> None:
        await call.ringing()
        await call.ended.wait()

    server = await server_factory(ring_forever)
    result = await sipp(server.uri_host, scenario="uac_cancel.xml", calls=3, rate=10)
    assert result.returncode == 0, result.errors or result.stdout[-2000:]
    assert len(server.calls) == 3
    for call in server.calls:
        await asyncio.wait_for(call.ended.wait(), 5)
        assert call.end_reason == "cancelled"
        assert call.end_status == 487
        assert call.media.closed
    assert server.ua.calls == {}


async def test_server_hangs_up(server_factory: ServerFactory, sipp: Sipp) -> None:
    async def answer_then_bye(call: Call) -> None:
        await call.answer()
        await asyncio.wait_for(call.confirmed.wait(), 10)
        await call.hangup()

    server = await server_factory(answer_then_bye)
    result = await sipp(server.uri_host, scenario="uac_server_bye.xml", calls=3, rate=10)
    assert result.returncode == 0, result.errors or result.stdout[-2000:]
    assert [c.end_reason for c in server.calls] == ["local_hangup"] * 3
    assert all(c.state is CallState.ENDED for c in server.calls)


async def test_bye_for_unknown_dialog_gets_481(server_factory: ServerFactory, sipp: Sipp) -> None:
    server = await server_factory(answer_and_wait)
    result = await sipp(server.uri_host, scenario="bye_unknown_dialog.xml", calls=2, rate=10)
    assert result.returncode == 0, result.errors or result.stdout[-2000:]
    assert server.calls == []


async def test_options_and_error_responses(server_factory: ServerFactory, sipp: Sipp) -> None:
    server = await server_factory(answer_and_wait)
    result = await sipp(server.uri_host, scenario="options_and_unknown.xml", calls=1)
    assert result.returncode == 0, result.errors or result.stdout[-2000:]
    assert server.calls == []


async def test_no_usable_codec_gets_488(server_factory: ServerFactory, sipp: Sipp) -> None:
    server = await server_factory(answer_and_wait)
    result = await sipp(server.uri_host, scenario="uac_488.xml", calls=1)
    assert result.returncode == 0, result.errors or result.stdout[-2000:]
    assert server.calls == []  # refused before the application saw it
    assert server.engine.sessions == []  # and the RTP port was given back


async def test_builtin_uac_over_tcp(server_factory: ServerFactory, sipp: Sipp) -> None:
    server = await server_factory(answer_and_wait)
    result = await sipp(
        f"127.0.0.1:{server.tcp_port}", builtin="uac", calls=3, rate=10, duration_ms=200, extra=["-t", "t1"]
    )
    assert result.returncode == 0, result.errors or result.stdout[-2000:]
    assert [c.end_reason for c in server.calls] == ["remote_bye"] * 3
    assert all(c.transport.name == "TCP" for c in server.calls)


async def test_missing_ack_retransmits_2xx_then_byes(server_factory: ServerFactory, sipp: Sipp) -> None:
    """RFC 6026 / 3261 13.3.1.4: 2xx resent until ACK; none comes, so BYE after 64*T1."""
    from callcenter.sip.timers import SipTimers

    server = await server_factory(answer_and_wait, timers=SipTimers(t1=0.05, t2=0.4, t4=0.5))
    result = await sipp(server.uri_host, scenario="uac_no_ack.xml", calls=1, timeout=30)
    assert result.returncode == 0, result.errors or result.stdout[-2000:]
    assert server.calls[0].end_reason == "no_ack"
