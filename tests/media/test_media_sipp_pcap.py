"""SIPp's own RTP (its bundled PCMA capture + one RFC 4733 digit) received by a session.

Two ways: replaying the capture's RTP payloads ourselves over UDP (fast, exact comparison),
and the real thing — SIPp's ``uac_pcap`` scenario calling a minimal SIP answerer written
here, whose SDP answer comes from ``RtpSession.answer`` (the SIP stack proper is SIP-B's
and is tested with SIPp in tests/sip).
"""

from __future__ import annotations

import asyncio
import os
import wave
from pathlib import Path

import pytest

from callcenter.media import RtpSession, g711, rtp
from tests.support import eventually, free_udp_port, require_tool, unavailable

from .conftest import EngineFactory, UdpPeer, offer_sdp
from .pcap_reader import udp_payloads

PCAP_DIR = Path("/usr/share/sip-tester")


def need_sipp() -> None:
    require_tool("sipp", "sip-tester")
    if not (PCAP_DIR / "g711a.pcap").exists():
        unavailable("SIPp's pcap files", f"{PCAP_DIR} (apt-get install sip-tester)")


async def test_replayed_sipp_capture_recorded_exactly(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    need_sipp()
    audio = udp_payloads(PCAP_DIR / "g711a.pcap")
    digit = udp_payloads(PCAP_DIR / "dtmf_2833_1.pcap")
    engine = await make_engine()
    s = engine.allocate()
    phone = UdpPeer()
    try:
        answer = s.answer(offer_sdp(phone.addr[1], "8 101"))
        assert answer is not None and s.codec == "PCMA"
        got: list[tuple[str, str]] = []
        s.on_dtmf = lambda d, src: got.append((d, src))
        s.start_recording(tmp_path / "in.wav")
        dest = ("127.0.0.1", s.local_port)
        for i, p in enumerate(audio + digit + digit[-3:]):  # end packets sent again
            phone.send(p, dest)
            if i % 50 == 49:  # pace the burst a little so the kernel buffer never overflows
                await eventually(lambda i=i: s.stats.rx_packets > i - 10)
        await eventually(lambda: s.stats.rx_packets == len(audio) + len(digit) + 3)
        path, *_ = s.stop_recording()  # type: ignore[misc]
        with wave.open(path) as w:
            recorded = w.readframes(w.getnframes())
        expected = g711.alaw_decode(b"".join(rtp.parse(p).payload for p in audio))
        assert recorded.startswith(expected)
        assert got == [("1", "rfc4733")]
        assert s.stats.rx_malformed == 0 and s.stats.rx_rms > 100
    finally:
        phone.close()


class MiniUas(asyncio.DatagramProtocol):
    """Just enough SIP to answer one call from SIPp's uac_pcap scenario."""

    def __init__(self, session: RtpSession) -> None:
        self.session = session
        self.transport: asyncio.DatagramTransport | None = None
        self.bye = asyncio.Event()
        self.answered = asyncio.Event()
        self.answer_sdp: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        method = lines[0].split(" ", 1)[0]
        if method not in ("INVITE", "BYE"):
            return  # ACK
        keep = [ln for ln in lines[1:] if ln.split(":", 1)[0].lower() in
                ("via", "from", "to", "call-id", "cseq")]
        keep = [ln + ";tag=uas1" if ln.lower().startswith("to:") and "tag=" not in ln else ln
                for ln in keep]
        payload = b""
        if method == "INVITE":
            if self.answer_sdp is None:
                self.answer_sdp = self.session.answer(body)
            payload = (self.answer_sdp or "").encode()
            keep += ["Contact: <sip:uas@127.0.0.1>", "Content-Type: application/sdp"]
            self.answered.set()
        else:
            self.bye.set()
        msg = "\r\n".join(["SIP/2.0 200 OK", *keep, f"Content-Length: {len(payload)}", "", ""])
        assert self.transport is not None
        self.transport.sendto(msg.encode() + payload, addr)


@pytest.mark.slow
async def test_sipp_uac_pcap_stream_received(make_engine: EngineFactory, tmp_path: Path) -> None:
    need_sipp()
    engine = await make_engine()
    s = engine.allocate()
    digits: list[tuple[str, str]] = []
    s.on_dtmf = lambda d, src: digits.append((d, src))
    loop = asyncio.get_running_loop()
    uas = MiniUas(s)
    transport, _ = await loop.create_datagram_endpoint(lambda: uas, local_addr=("127.0.0.1", 0))
    uas_port = transport.get_extra_info("sockname")[1]
    os.symlink(PCAP_DIR, tmp_path / "pcap")  # the scenario opens ./pcap/*.pcap
    proc = await asyncio.create_subprocess_exec(
        "sipp", "-sn", "uac_pcap", f"127.0.0.1:{uas_port}", "-m", "1", "-l", "1",
        "-i", "127.0.0.1", "-p", str(free_udp_port()), "-mi", "127.0.0.1",
        "-mp", str(free_udp_port(even=True)), "-nostdin", "-timeout", "40s",
        cwd=tmp_path, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
        transport.close()
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    assert uas.answer_sdp is not None and "a=rtpmap:8 PCMA/8000" in uas.answer_sdp
    assert uas.bye.is_set()
    assert digits == [("1", "rfc4733")]
    # all of the capture's 236 audio packets and 10 event packets arrived, from SIPp
    assert s.stats.rx_packets == 236 + 10
    assert s.stats.rx_rms > 100 and s.stats.rx_malformed == 0
    assert s.remote is not None and s.remote[0] == "127.0.0.1"
