"""A small SIP fax machine for tests: its own SIP over UDP (INVITE, ACK, re-INVITE to
T.38, BYE), its own RTP and UDPTL, and SpanDSP on its end of the line.

It shares nothing with the server's SIP stack or media engine (only the SpanDSP
terminals and the UDPTL framing, which it needs to speak fax at all), so a fault on our
side cannot hide behind the same fault in the sender. Media is paced in real time,
20 ms per frame, as a gateway sends it.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import struct
import time
from dataclasses import dataclass, field

from callcenter.fax import t38_sdp
from callcenter.fax.terminal import AudioFax, FaxJob, FaxResult, T38Fax
from callcenter.fax.udptl import UdptlReceiver, UdptlSender
from callcenter.media import g711

PT = {"PCMU": 0, "PCMA": 8}
FRAME = 160


@dataclass
class SipMessage:
    first: str
    headers: dict[str, list[str]]
    body: bytes

    @property
    def status(self) -> int:
        return int(self.first.split()[1]) if self.first.startswith("SIP/2.0") else 0

    @property
    def method(self) -> str:
        return "" if self.first.startswith("SIP/2.0") else self.first.split()[0]

    def get(self, name: str) -> str:
        return (self.headers.get(name.lower()) or [""])[0]


def parse_sip(data: bytes) -> SipMessage:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    compact = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
               "l": "content-length", "c": "content-type"}
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = compact.get(name.strip().lower(), name.strip().lower())
        headers.setdefault(key, []).append(value.strip())
    return SipMessage(lines[0], headers, body)


def sdp_remote(body: bytes, media: str) -> tuple[str, int]:
    addr, port = "", 0
    for line in body.decode().splitlines():
        if line.startswith("c=IN IP4 "):
            addr = line.split()[-1]
        elif line.startswith(f"m={media} "):
            port = int(line.split()[1])
    return addr, port


@dataclass
class SenderLog:
    statuses: list[int] = field(default_factory=list)  # final responses, in order
    reinvite_status: int | None = None
    bye_from_server: bool = False
    switched_to_t38: bool = False
    rtp_sent: int = 0
    rtp_dropped: int = 0


class FaxSender:
    def __init__(
        self,
        tiff: str,
        *,
        codec: str = "PCMU",
        ident: str = "+1 555 0100",
        ani: str = "+15550100",
        loss: float = 0.0,
        seed: int = 1,
        t38_after_s: float | None = None,
        hangup_after_pages: int | None = None,
        ecm: bool = True,
        max_seconds: float = 120.0,
    ) -> None:
        self.job = FaxJob("send", tiff, ident=ident, ecm=ecm)
        self.codec = codec
        self.ani = ani
        self.loss = loss
        self.rng = random.Random(seed)
        self.t38_after_s = t38_after_s
        self.hangup_after_pages = hangup_after_pages
        self.max_seconds = max_seconds
        self.log = SenderLog()
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind(("127.0.0.1", 0))
        self.sip.setblocking(False)
        self.media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.media.bind(("127.0.0.1", 0))
        self.media.setblocking(False)
        self.sip_port = self.sip.getsockname()[1]
        self.media_port = self.media.getsockname()[1]
        self.call_id = os.urandom(8).hex() + "@fax-sender"
        self.tag = os.urandom(4).hex()
        self.cseq = 1
        self.remote_tag = ""
        self.remote_contact = ""
        self.inbox: asyncio.Queue[SipMessage] = asyncio.Queue()

    # --------------------------------------------------------------------- SIP
    def _on_sip(self) -> None:
        while True:
            try:
                data, _ = self.sip.recvfrom(65535)
            except BlockingIOError:
                return
            msg = parse_sip(data)
            if msg.method == "BYE":
                self.log.bye_from_server = True
                self._reply(msg, 200, "OK")
            elif msg.method in ("INVITE", "UPDATE", "OPTIONS", "INFO"):
                self._reply(msg, 200, "OK")  # session refresh: nothing to change
            elif msg.method == "ACK":
                pass
            else:
                self.inbox.put_nowait(msg)

    def _reply(self, req: SipMessage, status: int, reason: str) -> None:
        lines = [f"SIP/2.0 {status} {reason}"]
        for name in ("via", "from", "to", "call-id", "cseq"):
            lines += [f"{name.title()}: {v}" for v in req.headers.get(name, [])]
        lines += ["Content-Length: 0", "", ""]
        self.sip.sendto("\r\n".join(lines).encode(), self.target)

    def _request(self, method: str, cseq: int, body: str = "",
                 branch: str | None = None) -> tuple[bytes, str]:
        branch = branch or "z9hG4bK" + os.urandom(6).hex()
        uri = self.remote_contact or f"sip:{self.dnis}@{self.target[0]}:{self.target[1]}"
        to = f"<sip:{self.dnis}@{self.target[0]}:{self.target[1]}>"
        if self.remote_tag:
            to += f";tag={self.remote_tag}"
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.sip_port};branch={branch};rport",
            "Max-Forwards: 70",
            f'From: "Fax" <sip:{self.ani}@127.0.0.1:{self.sip_port}>;tag={self.tag}',
            f"To: {to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:{self.ani}@127.0.0.1:{self.sip_port}>",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines += [f"Content-Length: {len(body.encode())}", "", body]
        return "\r\n".join(lines).encode(), branch

    async def _transaction(self, method: str, body: str = "") -> SipMessage:
        """Send a request (retransmitted every 0.5 s until answered); its final response."""
        cseq = self.cseq
        self.cseq += 1
        data, branch = self._request(method, cseq, body)
        deadline = time.monotonic() + 32
        provisional = False
        while time.monotonic() < deadline:
            if not provisional:
                self.sip.sendto(data, self.target)
            try:
                msg = await asyncio.wait_for(self.inbox.get(), 0.5)
            except TimeoutError:
                continue
            if not msg.get("cseq").startswith(f"{cseq} "):
                continue
            if msg.status < 200:
                provisional = True
                continue
            if method == "INVITE":
                self._ack(msg, cseq, branch)
            return msg
        raise TimeoutError(f"no final response to {method}")

    def _ack(self, response: SipMessage, cseq: int, branch: str) -> None:
        if response.status >= 300:  # hop-by-hop ACK: same branch, same request URI
            data, _ = self._request("ACK", cseq, branch=branch)
        else:
            to = response.get("to")
            if ";tag=" in to:
                self.remote_tag = to.split(";tag=")[1].split(";")[0]
            contact = response.get("contact")
            if contact:
                self.remote_contact = contact.split("<")[-1].split(">")[0]
            data, _ = self._request("ACK", cseq)
        self.sip.sendto(data, self.target)

    def _audio_sdp(self) -> str:
        pt = PT[self.codec]
        return (
            "v=0\r\no=fax 1 1 IN IP4 127.0.0.1\r\ns=fax\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {self.media_port} RTP/AVP {pt}\r\na=rtpmap:{pt} {self.codec}/8000\r\n"
            "a=sendrecv\r\n"
        )

    # --------------------------------------------------------------------- the call
    async def send(self, target: tuple[str, int], dnis: str) -> FaxResult:
        """Call ``dnis`` at ``target``, fax the document, hang up; the sender's result."""
        self.target, self.dnis = target, dnis
        loop = asyncio.get_running_loop()
        loop.add_reader(self.sip.fileno(), self._on_sip)
        try:
            ok = await self._transaction("INVITE", self._audio_sdp())
            self.log.statuses.append(ok.status)
            if ok.status != 200:
                raise RuntimeError(f"INVITE answered {ok.status}")
            remote = sdp_remote(ok.body, "audio")
            return await self._run(remote)
        finally:
            loop.remove_reader(self.sip.fileno())
            self.sip.close()
            self.media.close()

    async def _run(self, remote: tuple[str, int]) -> FaxResult:
        term: AudioFax | T38Fax = AudioFax(self.job)
        t38_out: list[bytes] = []
        udptl_tx, udptl_rx = UdptlSender(), UdptlReceiver()
        ts, seq, ssrc = 0, 0, 0x1234
        rx_next: int | None = None
        reinvite: asyncio.Task[SipMessage] | None = None
        pages_at: float | None = None
        start = time.monotonic()
        tick = 0
        while not term.done and not self.log.bye_from_server:
            now = time.monotonic()
            elapsed = now - start
            if elapsed > self.max_seconds:
                break
            # our 20 ms of fax
            if isinstance(term, AudioFax):
                payload = g711.encode(self.codec, term.tx())
                pkt = struct.pack("!BBHII", 0x80, PT[self.codec], seq, ts, ssrc) + payload
                seq, ts = (seq + 1) & 0xFFFF, (ts + FRAME) & 0xFFFFFFFF
                if self.loss and self.rng.random() < self.loss:
                    self.log.rtp_dropped += 1
                else:
                    self.media.sendto(pkt, remote)
                    self.log.rtp_sent += 1
            else:
                term.tick(FRAME)
                for pkt in t38_out:
                    self.media.sendto(pkt, remote)
                t38_out.clear()
            # what the far end sent
            while True:
                try:
                    data, _ = self.media.recvfrom(4096)
                except BlockingIOError:
                    break
                if isinstance(term, T38Fax):
                    for s, ifp in udptl_rx.feed(data):
                        term.rx_ifp(ifp, s)
                elif len(data) > 12 and data[0] == 0x80:
                    rseq = struct.unpack_from("!H", data, 2)[0]
                    if rx_next is not None and rseq != rx_next:
                        gap = (rseq - rx_next) & 0xFFFF
                        if gap >= 0x8000:
                            continue
                        term.rx_missing(gap * FRAME)
                    rx_next = (rseq + 1) & 0xFFFF
                    codec = {0: "PCMU", 8: "PCMA"}.get(data[1] & 0x7F)
                    if codec:
                        term.rx(g711.decode(codec, data[12:]))
            # the T.38 switch, as a gateway does it once it hears the fax
            if self.t38_after_s is not None and reinvite is None and elapsed >= self.t38_after_s:
                offer = t38_sdp.offer("127.0.0.1", self.media_port)
                reinvite = asyncio.ensure_future(self._transaction("INVITE", offer))
            if reinvite is not None and reinvite.done() and self.log.reinvite_status is None:
                answer = reinvite.result()
                self.log.reinvite_status = answer.status
                if answer.status == 200:
                    remote = sdp_remote(answer.body, "image")
                    term.on_done = None
                    term.close()
                    term = T38Fax(self.job, lambda ifp, _count: t38_out.append(udptl_tx.frame(ifp)))
                    self.log.switched_to_t38 = True
            # a sender that gives up mid-document
            if self.hangup_after_pages is not None and term.pages() >= self.hangup_after_pages:
                pages_at = pages_at or now
                if now - pages_at > 3.0:  # well into the next page
                    break
            tick += 1
            await asyncio.sleep(max(0.0, start + tick * 0.02 - time.monotonic()))
        result = term.result if term.done else term.hangup()
        term.close()
        if not self.log.bye_from_server:
            bye = await self._transaction("BYE")
            self.log.statuses.append(bye.status)
        assert result is not None
        return result
