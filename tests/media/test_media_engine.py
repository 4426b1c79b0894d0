"""Engines talking over real loopback UDP."""

from __future__ import annotations

import asyncio
import itertools
import wave
from pathlib import Path

import numpy as np
import pytest

from callcenter.media import AudioFormatError, MediaEngine, NoFreePortError, RtpSession, g711, rtp
from callcenter.media.dtmf_inband import generate_digits
from callcenter.media.session import routable
from tests.support import eventually

from .conftest import EngineFactory, UdpPeer, offer_sdp


def tone(ms: int, freq: float = 1000.0, amp: float = 8000.0) -> bytes:
    t = np.arange(8 * ms) / 8000
    return (amp * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def write_wav(path: Path, pcm: bytes, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return path


def contains_audio(recorded: bytes, expected: bytes) -> bool:
    """``expected`` appears in ``recorded`` bit-exactly, allowing for silence the recorder
    wrote for RTP time without packets (the sender's clock skips ticks when this busy
    machine stalls it): compared with zero samples removed from both sides."""
    if expected in recorded:
        return True
    r = np.frombuffer(recorded, "<i2")
    e = np.frombuffer(expected, "<i2")
    return e[e != 0].tobytes() in r[r != 0].tobytes()


async def connect(a: RtpSession, b: RtpSession) -> None:
    """a offers, b answers (what a UAC leg and a UAS leg do)."""
    answer = b.answer(a.offer())
    assert answer is not None
    assert a.apply_answer(answer)


async def test_wav_played_with_right_packets_and_timestamps(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    engine = await make_engine()
    session = engine.allocate()
    phone = UdpPeer()
    try:
        answer = session.answer(offer_sdp(phone.addr[1], "0 101"))
        assert answer is not None and f"m=audio {session.local_port} RTP/AVP 0 101" in answer
        pcm = tone(1010)  # 50.5 packets: the last one padded with silence
        wav = write_wav(tmp_path / "prompt.wav", pcm)
        assert await session.play(wav) is True
        expected = g711.ulaw_encode(pcm)
        frames = [expected[i : i + 160] for i in range(0, len(expected), 160)]
        frames[-1] += b"\xff" * (160 - len(frames[-1]))
        received: list[rtp.RtpPacket] = []
        while True:  # everything the play produced is in the socket by now
            data, src = await phone.recv()
            assert src == ("127.0.0.1", session.local_port)
            received.append(rtp.parse(data))
            if received[-1].payload == frames[-1]:
                break
        first = next(i for i, p in enumerate(received) if p.payload == frames[0])
        played = received[first:]
        assert [p.payload for p in played] == frames
        assert len(played) == 51
        assert all(p.payload_type == 0 and len(p.payload) == 160 for p in played)
        assert all(p.ssrc == session.ssrc for p in played)
        for x, y in itertools.pairwise(played):
            assert (y.sequence - x.sequence) & 0xFFFF == 1
            assert (y.timestamp - x.timestamp) & 0xFFFFFFFF == 160
        assert session.stats.tx_packets >= 51
    finally:
        phone.close()


async def test_pcmu_both_ways_record_and_compare(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    e1, e2 = await make_engine(), await make_engine()
    a, b = e1.allocate(), e2.allocate()
    await connect(a, b)
    assert a.codec == b.codec == "PCMU"
    b.start_recording(tmp_path / "rec.wav")
    pcm = tone(600, 440.0)
    assert await a.play(pcm) is True
    sent_audio = a.stats.tx_packets
    await eventually(lambda: b.stats.rx_packets >= sent_audio)
    path, size, digest, seconds = b.stop_recording()  # type: ignore[misc]
    assert Path(path).stat().st_size == size and len(digest) == 64
    with wave.open(path) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        recorded = w.readframes(w.getnframes())
    assert seconds == pytest.approx(len(recorded) / 16000)
    expected = g711.ulaw_decode(g711.ulaw_encode(pcm))
    # bit-exact through PCMU, in order, nothing lost
    assert contains_audio(recorded, expected)
    # the other direction carries a's comfort silence / b's stream: both sides received
    await eventually(lambda: a.stats.rx_packets > 0)
    assert b.stats.rx_rms > 1000 and b.last_rx is not None


async def test_transcoding_bridge_pcmu_to_pcma_with_dtmf_passthrough(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    phones = await make_engine(codecs=("PCMU",))
    alaw_phones = await make_engine(codecs=("PCMA",))
    server = await make_engine()
    caller, agent = phones.allocate(), alaw_phones.allocate()
    leg_a, leg_b = server.allocate(), server.allocate()
    await connect(caller, leg_a)  # caller offers PCMU only
    await connect(leg_b, agent)  # server offers PCMU+PCMA, agent answers PCMA
    assert (leg_a.codec, leg_b.codec, agent.codec) == ("PCMU", "PCMA", "PCMA")
    leg_a.bridge(leg_b)
    assert leg_a.bridged_to is leg_b and leg_b.bridged_to is leg_a
    digits: list[tuple[str, str]] = []
    got_all = asyncio.Event()

    def on_dtmf(d: str, source: str) -> None:
        digits.append((d, source))
        if len(digits) == 3:
            got_all.set()

    agent.on_dtmf = on_dtmf
    agent.start_recording(tmp_path / "agent.wav")
    pcm = tone(400, 700.0)
    assert await caller.play(pcm) is True
    caller.send_dtmf("9*4")
    await asyncio.wait_for(got_all.wait(), 5)
    assert digits == [("9", "rfc4733"), ("*", "rfc4733"), ("4", "rfc4733")]
    path, *_ = agent.stop_recording()  # type: ignore[misc]
    with wave.open(path) as w:
        recorded = w.readframes(w.getnframes())
    expected = g711.alaw_decode(g711.ulaw_to_alaw(g711.ulaw_encode(pcm)))
    assert contains_audio(recorded, expected)
    # and back: the agent's audio reaches the caller transcoded to PCMU
    caller.start_recording(tmp_path / "caller.wav")
    c0, a0 = caller.stats.rx_packets, agent.stats.tx_packets
    back = tone(200, 1200.0)
    assert await agent.play(back) is True
    sent = agent.stats.tx_packets - a0
    await eventually(lambda: caller.stats.rx_packets - c0 >= sent + 2)  # relayed one to one
    path, *_ = caller.stop_recording()  # type: ignore[misc]
    with wave.open(path) as w:
        recorded = w.readframes(w.getnframes())
    expected = g711.ulaw_decode(g711.alaw_to_ulaw(g711.alaw_encode(back)))
    assert contains_audio(recorded, expected)
    leg_a.unbridge()
    assert leg_a.bridged_to is None and leg_b.bridged_to is None


async def test_rfc4733_digits_received_once_each(make_engine: EngineFactory) -> None:
    e1, e2 = await make_engine(), await make_engine()
    a, b = e1.allocate(), e2.allocate()
    await connect(a, b)
    assert a.dtmf_pt == b.dtmf_pt == 101
    got: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    b.on_dtmf = lambda d, s: got.put_nowait((d, s))
    a.send_dtmf("0123456789*#ABCD")
    received = [await asyncio.wait_for(got.get(), 5) for _ in range(16)]
    assert "".join(d for d, _ in received) == "0123456789*#ABCD"
    assert {s for _, s in received} == {"rfc4733"}
    # three end packets each, yet no extra digit: the queue stays empty after the next audio
    last = b.stats.rx_packets
    await eventually(lambda: b.stats.rx_packets >= last + 5)
    assert got.empty()


async def test_inband_digits_through_ulaw_at_minus_30_dbm0(make_engine: EngineFactory) -> None:
    e1, e2 = await make_engine(), await make_engine()
    a, b = e1.allocate(), e2.allocate()
    # the far end offers no telephone-event: in-band detection turns on by itself
    answer = b.answer(a.offer().replace(" 0 8 101", " 0 8"))
    assert answer is not None and "telephone-event" not in answer
    assert a.apply_answer(answer) and a.dtmf_pt is None
    got: list[str] = []
    done = asyncio.Event()

    def on_dtmf(d: str, s: str) -> None:
        assert s == "inband"
        got.append(d)
        if len(got) == 16:
            done.set()

    b.on_dtmf = on_dtmf
    assert await a.play(generate_digits("0123456789*#ABCD", 40, 40, -30.0)) is True
    await asyncio.wait_for(done.wait(), 5)
    assert "".join(got) == "0123456789*#ABCD"
    # send_dtmf without telephone-event falls back to tones, detected the same way
    got.clear()
    done.clear()
    a.send_dtmf("0123456789*#ABCD")
    await asyncio.wait_for(done.wait(), 10)
    assert "".join(got) == "0123456789*#ABCD"


async def test_info_dtmf_and_play_interrupted_by_digit(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    s = engine.allocate()
    phone = UdpPeer()
    try:
        assert s.answer(offer_sdp(phone.addr[1])) is not None
        got: list[tuple[str, str]] = []
        s.on_dtmf = lambda d, src: got.append((d, src))
        task = asyncio.ensure_future(s.play(tone(5000), interrupt_on_dtmf=True))
        await phone.recv()  # the prompt is under way
        s.feed_info_dtmf("7")
        assert await asyncio.wait_for(task, 5) is False
        assert got == [("7", "info")]
    finally:
        phone.close()


async def test_strict_latch_ignores_the_callers_ip_on_another_port(
    make_engine: EngineFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 20 item 8: before the caller's first packet, 20 packets in sequence from the
    caller's IP on another port captured the stream. Strict latching (the default) takes
    only the SDP's address and port, and says so once in the log."""
    engine = await make_engine()
    s = engine.allocate()
    phone, intruder = UdpPeer(), UdpPeer()  # same IP as the caller, another port
    caplog.set_level("INFO", logger="callcenter.media.session")
    try:
        assert s.answer(offer_sdp(phone.addr[1])) is not None
        dest = ("127.0.0.1", s.local_port)
        for seq in range(20):
            intruder.send(rtp.build(0, seq, 160 * seq, 0xBAD, b"\xff" * 160), dest)
        await eventually(lambda: s.stats.rx_ignored == 20)
        assert s.stats.rx_packets == 0 and s.remote == phone.addr
        phone.send(rtp.build(0, 1, 160, 0xABC, b"\x7f" * 160), dest)
        await eventually(lambda: s.stats.rx_packets == 1)
        assert s.remote == phone.addr
        intruder.send(rtp.build(0, 20, 3200, 0xBAD, b"\xff" * 160), dest)
        await eventually(lambda: s.stats.rx_ignored == 21)
        assert s.stats.rx_packets == 1 and s.remote == phone.addr
        strays = [r for r in caplog.records if "unexpected source" in r.getMessage()]
        assert len(strays) == 1 and strays[0].levelname == "INFO"
        assert f":{intruder.addr[1]}" in strays[0].getMessage()
    finally:
        phone.close()
        intruder.close()


async def test_comedia_latches_to_the_real_source_after_probation(make_engine: EngineFactory) -> None:
    """comedia, SDP with an unroutable address (a phone behind NAT writes its LAN one):
    the source that really sends latches once it sent 3 packets in sequence."""
    engine = await make_engine(comedia=True)
    s = engine.allocate()
    advertised, real = UdpPeer(), UdpPeer()  # the SDP says one port, packets come from another
    try:
        assert s.answer(offer_sdp(advertised.addr[1])) is not None
        assert s.remote == advertised.addr
        # before latching our packets go where the SDP said
        await advertised.recv()
        dest = ("127.0.0.1", s.local_port)
        # a port the SDP did not name must prove itself: 3 packets in sequence
        real.send(rtp.build(0, 10, 160, 0xABC, b"\xff" * 160), dest)
        real.send(rtp.build(0, 12, 480, 0xABC, b"\xff" * 160), dest)  # out of sequence
        real.send(rtp.build(0, 13, 640, 0xABC, b"\xff" * 160), dest)
        await eventually(lambda: s.stats.rx_ignored == 3)
        assert s.remote == advertised.addr
        real.send(rtp.build(0, 14, 800, 0xABC, b"\xff" * 160), dest)
        await eventually(lambda: s.stats.rx_packets == 1)
        assert s.remote == real.addr
        data, _ = await real.recv()
        assert rtp.parse(data).ssrc == s.ssrc
        # once latched, another source (even the advertised port) is ignored
        advertised.send(rtp.build(0, 1, 160, 0xABC, b"\xff" * 160), dest)
        await eventually(lambda: s.stats.rx_ignored == 4)
        assert s.stats.rx_packets == 1 and s.remote == real.addr
    finally:
        advertised.close()
        real.close()


def test_comedia_applies_only_to_unroutable_sdp_addresses() -> None:
    """With a routable SDP address the peer is reachable where it said: latch strictly
    even with comedia (checked on the decision itself: no packet leaves loopback)."""
    assert not routable("203.0.113.7") and not routable("192.168.1.20") and not routable("100.64.0.9")
    assert not routable("127.0.0.1") and not routable("fe80::1") and not routable("10.1.2.3")
    assert routable("8.8.8.8") and routable("2001:4860:4860::8888")


async def test_latching_from_another_ip_only_when_configured(make_engine: EngineFactory) -> None:
    strict, loose = await make_engine(), await make_engine(comedia=True)
    elsewhere = UdpPeer("127.0.0.2")  # a "NATed" source address on loopback
    phone = UdpPeer()
    try:
        for engine, accepted in ((strict, False), (loose, True)):
            s = engine.allocate()
            assert s.answer(offer_sdp(phone.addr[1])) is not None
            for seq in range(3):
                pkt = rtp.build(0, seq, 160 * seq, 0xABC, b"\xff" * 160)
                elsewhere.send(pkt, ("127.0.0.1", s.local_port))
            if accepted:
                await eventually(lambda s=s: s.stats.rx_packets == 1)
                assert s.stats.rx_ignored == 2 and s.remote == elsewhere.addr
            else:
                await eventually(lambda s=s: s.stats.rx_ignored == 3)
                assert s.stats.rx_packets == 0 and s.remote == phone.addr
    finally:
        elsewhere.close()
        phone.close()


async def test_malformed_rtp_ignored_without_crashing(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    s = engine.allocate()
    phone = UdpPeer()
    try:
        assert s.answer(offer_sdp(phone.addr[1])) is not None
        junk = [b"", b"x", b"\x00" * 12, b"\x8f" + b"\x00" * 11, b"\xa0" + b"\x00" * 11,
                bytes([0x80, 200]) + b"\x00" * 30, b"INVITE sip:x SIP/2.0\r\n\r\n",
                bytes(range(256)) * 5]
        dest = ("127.0.0.1", s.local_port)
        for j in junk:
            phone.send(j, dest)
        phone.send(rtp.build(99, 1, 1, 1, b"\x00" * 10), dest)  # unknown payload type
        phone.send(rtp.build(101, 2, 1, 1, b"\x01"), dest)  # truncated telephone-event
        phone.send(rtp.build(0, 3, 160, 1, b"\xff" * 160), dest)
        await eventually(lambda: s.stats.rx_packets == 3)
        assert s.stats.rx_malformed == len(junk)
        assert s.stats.rx_ignored == 1
        # still serving: it answers a re-INVITE and keeps sending
        assert s.update(offer_sdp(phone.addr[1])) is not None
        await phone.recv()
    finally:
        phone.close()


async def test_on_audio_tap_gets_20ms_frames(make_engine: EngineFactory) -> None:
    e1, e2 = await make_engine(), await make_engine()
    a, b = e1.allocate(), e2.allocate()
    await connect(a, b)
    frames: asyncio.Queue[bytes] = asyncio.Queue()
    b.on_audio = frames.put_nowait
    pcm = tone(200)
    await a.play(pcm)
    sizes = {len(await asyncio.wait_for(frames.get(), 5)) for _ in range(10)}
    assert sizes == {320}


async def test_hold_and_reinvite_direction(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    s = engine.allocate()
    phone = UdpPeer()
    try:
        ans = s.answer(offer_sdp(phone.addr[1], extra="a=sendonly"))
        assert ans is not None and "a=recvonly" in ans
        assert s not in engine._active.values()  # nothing to send while the peer holds us
        ans = s.update(offer_sdp(phone.addr[1]))
        assert ans is not None and "a=sendrecv" in ans
        await phone.recv()  # comfort RTP resumes
        s.set_hold(True)
        assert "a=sendonly" in s.offer()
        ans = s.update(offer_sdp(phone.addr[1]))
        assert ans is not None and "a=sendonly" in ans
        held = s.answer(offer_sdp(phone.addr[1]).replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0"))
        assert held is not None and "a=inactive" in held
    finally:
        phone.close()


async def test_488_and_bad_prompts(make_engine: EngineFactory, tmp_path: Path) -> None:
    engine = await make_engine()
    s = engine.allocate()
    assert s.answer(offer_sdp(5004, "9 96")) is None
    assert s.answer("not sdp at all") is None
    bad = write_wav(tmp_path / "cd.wav", tone(100), rate=44100)
    with pytest.raises(AudioFormatError, match="8000 Hz mono 16-bit"):
        await s.play(bad)
    with pytest.raises(AudioFormatError, match="no such file"):
        await s.play(tmp_path / "missing.wav")
    raw = tmp_path / "prompt.alaw"
    raw.write_bytes(g711.alaw_encode(tone(100)))
    phone = UdpPeer()
    try:
        assert s.answer(offer_sdp(phone.addr[1], "0")) is not None
        assert await s.play(raw) is True  # raw A-law transcoded to the call's PCMU
    finally:
        phone.close()


async def test_port_range_exhaustion_and_reuse() -> None:
    engine = MediaEngine("127.0.0.1", 45000, 45003)
    await engine.start()
    try:
        got = [engine.allocate(), engine.allocate()]
        assert {s.local_port % 2 for s in got} == {0}
        with pytest.raises(NoFreePortError):
            engine.allocate()
        port = got[0].local_port
        got[0].close()
        got[0].close()  # idempotent
        assert engine.allocate().local_port == port
    finally:
        await engine.stop()


async def test_reinvite_with_new_port_moves_the_stream(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    s = engine.allocate()
    old, new = UdpPeer(), UdpPeer()
    try:
        assert s.answer(offer_sdp(old.addr[1])) is not None
        old.send(rtp.build(0, 1, 160, 7, b"\xff" * 160), ("127.0.0.1", s.local_port))
        await eventually(lambda: s.stats.rx_packets == 1)
        assert s.update(offer_sdp(old.addr[1])) is not None
        assert s.remote == old.addr  # same SDP address: the latch is kept
        assert s.update(offer_sdp(new.addr[1])) is not None
        assert s.remote == new.addr
        data, _ = await new.recv()
        assert rtp.parse(data).ssrc == s.ssrc
        new.send(rtp.build(0, 2, 320, 7, b"\xff" * 160), ("127.0.0.1", s.local_port))
        await eventually(lambda: s.stats.rx_packets == 2)
    finally:
        old.close()
        new.close()


async def test_sdp_with_host_name_is_refused_not_resolved(make_engine: EngineFactory) -> None:
    """Resolving c= would block the SIP loop on DNS: a name is unusable SDP (488), and the
    session stays as it was (nothing to send to)."""
    engine = await make_engine()
    s = engine.allocate()
    assert s.answer(offer_sdp(40000, host="localhost")) is None
    assert s.remote is None


async def test_rfc4733_packets_on_the_wire(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    s = engine.allocate()
    phone = UdpPeer()
    try:
        assert s.answer(offer_sdp(phone.addr[1])) is not None
        s.send_dtmf("11")
        events: list[tuple[int, rtp.RtpPacket]] = []
        index = 0
        while len([p for _, p in events if p.payload[1] & 0x80]) < 6:
            p = rtp.parse((await phone.recv())[0])
            if p.payload_type == 101:
                events.append((index, p))
            index += 1
        first = [(i, p) for i, p in events if p.timestamp == events[0][1].timestamp]
        second = [(i, p) for i, p in events if p.timestamp != events[0][1].timestamp]
        for digit_packets in (first, second):
            pkts = [p for _, p in digit_packets]
            assert pkts[0].marker and not any(p.marker for p in pkts[1:])
            assert [p.payload[1] >> 7 for p in pkts][-3:] == [1, 1, 1]  # three end packets
            assert all(p.payload[0] == 1 for p in pkts)
        # audio (silence) packets separate the two "1"s, so they are two key presses
        assert second[0][0] - first[-1][0] >= 3
    finally:
        phone.close()
