"""A real softphone: baresip registers with digest auth (SIP-C's registrar), a SIPp caller
dials the agent, our B2BUA bridges the call to baresip's registered contact, baresip
auto-answers, audio flows both ways, and a DTMF digit sent from baresip is detected."""

from __future__ import annotations

import asyncio
import json
import math
import struct
import subprocess
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from callcenter.sip.b2bua import bridge_call
from callcenter.sip.calls import Call
from callcenter.sip.digest import Credentials
from callcenter.sip.registrar import Registrar
from tests.support.ports import free_port as free_tcp_port
from tests.support.ports import free_udp_port

REALM = "callcenter.test"
BARESIP_MODULES = Path("/usr/lib/baresip/modules")


def write_tone_wav(path: Path, seconds: float = 30.0, freq: float = 1000.0) -> None:
    """8 kHz mono 16-bit tone at about -12 dBFS: baresip's microphone."""
    rate = 8000
    frames = bytearray()
    amp = 8000
    for n in range(int(rate * seconds)):
        frames += struct.pack("<h", int(amp * math.sin(2 * math.pi * freq * n / rate)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))


def wav_rms(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        data = w.readframes(w.getnframes())
        width = w.getsampwidth()
    if width != 2 or not data:
        return 0.0
    samples = struct.unpack(f"<{len(data) // 2}h", data[: len(data) // 2 * 2])
    return math.sqrt(sum(s * s for s in samples) / len(samples))


def baresip_config(confdir: Path, sip_port: int, ctrl_port: int, server_port: int, tone: Path) -> None:
    dumps = confdir / "dumps"
    dumps.mkdir()
    (confdir / "config").write_text(
        f"""poll_method epoll
net_interface 127.0.0.1
sip_listen 127.0.0.1:{sip_port}
audio_source aufile,{tone}
audio_player aubridge,nil
audio_alert aubridge,nil
rtp_ports {sip_port + 100}-{sip_port + 199}
module_path {BARESIP_MODULES}
module g711.so
module aufile.so
module aubridge.so
module sndfile.so
snd_path {dumps}
module ctrl_tcp.so
module_tmp uuid.so
module_tmp account.so
module_app menu.so
ctrl_tcp_listen 127.0.0.1:{ctrl_port}
"""
    )
    (confdir / "accounts").write_text(
        f"<sip:1001@127.0.0.1:{server_port}>;auth_pass=demo-1001;regint=60;answermode=auto\n"
    )


class BaresipControl:
    """ctrl_tcp client: netstring-framed JSON commands and events."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            while True:
                length = await self.reader.readuntil(b":")
                body = await self.reader.readexactly(int(length[:-1]))
                await self.reader.readexactly(1)  # trailing comma
                self.events.put_nowait(json.loads(body))
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            return

    def command(self, command: str, params: str = "") -> None:
        payload = json.dumps({"command": command, "params": params, "token": command}).encode()
        self.writer.write(str(len(payload)).encode() + b":" + payload + b",")

    async def wait_event(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        async def find() -> dict[str, Any]:
            while True:
                event = await self.events.get()
                if predicate(event):
                    return event

        return await asyncio.wait_for(find(), timeout)

    async def close(self) -> None:
        self._task.cancel()
        self.writer.close()


async def connect_ctrl(port: int, proc: asyncio.subprocess.Process, timeout: float = 10.0) -> BaresipControl:
    """baresip opens ctrl_tcp while starting up: retry the connection, bounded, while it lives."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            return BaresipControl(reader, writer)
        except OSError:
            if loop.time() > deadline or proc.returncode is not None:
                raise
            await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_baresip_agent_bridged_call(
    server_factory: Callable[..., Awaitable[Any]],
    sipp_start: Callable[..., Awaitable[Any]],
    sipp_pcap_cwd: Path,
    tool: Callable[[str], str],
    tmp_path: Path,
) -> None:
    baresip = tool("baresip")
    registrar = Registrar(REALM, {"1001": Credentials.from_password("1001", REALM, "demo-1001")})
    registered = asyncio.Event()
    registrar.on_change(lambda user, up: registered.set() if user == "1001" and up else None)
    legs: asyncio.Queue[Call] = asyncio.Queue()
    digits: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    async def to_agent(call: Call) -> None:
        bindings = await registrar.contacts(call.dnis)
        if not bindings:
            await call.reject(480)
            return
        outbound = await bridge_call(
            server.ua,
            call,
            bindings[0].uri,
            dest=bindings[0].source,
            headers={"X-Interaction-Id": "ix-1001"},
        )
        outbound.media.on_dtmf = lambda digit, source: digits.put_nowait((digit, source))
        legs.put_nowait(outbound)
        await call.ended.wait()

    server = await server_factory(to_agent, registrar=registrar)
    confdir = tmp_path / "baresip"
    confdir.mkdir()
    tone = tmp_path / "tone.wav"
    write_tone_wav(tone)
    # baresip listens on sip_port for UDP and TCP and on sip_port + 1 for TLS, and takes RTP
    # ports from sip_port + 100; ctrl_tcp needs a TCP port outside all of them.
    sip_port = free_udp_port(span=2, tcp=True)
    ctrl_port = free_tcp_port()
    while sip_port <= ctrl_port < sip_port + 200:
        ctrl_port = free_tcp_port()
    baresip_config(confdir, sip_port, ctrl_port, server.port, tone)
    proc = await asyncio.create_subprocess_exec(
        baresip,
        "-f",
        str(confdir),
        cwd=str(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    ctrl: BaresipControl | None = None
    try:
        await asyncio.wait_for(registered.wait(), 20)  # digest-authenticated REGISTER accepted
        ctrl = await connect_ctrl(ctrl_port, proc)
        caller = await sipp_start(
            server.uri_host, builtin="uac_pcap", service="1001", calls=1, timeout=40, cwd=sipp_pcap_cwd
        )
        outbound = await asyncio.wait_for(legs.get(), 15)
        ctrl.command("sndcode", "5")
        digit, source = await asyncio.wait_for(digits.get(), 10)
        result = await caller.wait()
        assert result.returncode == 0, result.errors or result.stdout[-2000:]
        inbound = server.calls[0]
        await asyncio.wait_for(outbound.ended.wait(), 10)
    finally:
        if ctrl is not None:
            ctrl.command("quit")
            await ctrl.close()
        if proc.returncode is None:
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    assert (digit, source) == ("5", "rfc4733")
    # caller → server: SIPp's PCMA capture arrived
    assert inbound.media.stats.rx_packets > 200
    # baresip → server: its tone arrived, with energy
    assert outbound.media.stats.rx_packets > 100
    assert outbound.media.stats.rx_energy_sum > 0
    # server → baresip: the caller's audio was relayed to the phone, which recorded it
    assert outbound.media.stats.tx_packets > 100
    # server → caller: the phone's tone relayed back to SIPp
    assert inbound.media.stats.tx_packets > 100
    decoded = sorted((confdir / "dumps").glob("*dec*.wav")) or sorted((confdir / "dumps").glob("*.wav"))
    assert decoded, "baresip wrote no received-audio dump"
    assert max(wav_rms(p) for p in decoded) > 50
    assert outbound.end_reason == "bridged_leg_ended"
    assert inbound.end_reason == "remote_bye"
