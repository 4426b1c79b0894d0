"""Real peers for the end-to-end call path: baresip softphones as agents, a WebSocket
agent desktop, and a SIP caller built on our own UA (real SIP and RTP over loopback).

Every wait is on an event with a bounded timeout; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import socket
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import websockets
import yaml

from callcenter import events as ev
from callcenter.web.tokens import ws_subprotocols
from tests.support.ports import free_port, free_udp_tcp_port
from tests.support.services import ROOT, require_tool

BARESIP_MODULES = Path("/usr/lib/baresip/modules")


# runs a test twice: media in the server process (rtp.workers 1) and in two media worker
# processes (rtp.workers 2); the rig fixture reads the parameter
both_media_modes = pytest.mark.parametrize("rig", [1, 2], indirect=True, ids=["media1", "media2"])


def make_config_dir(
    tmp: Path,
    patch: Callable[[dict[str, Any]], None] | None = None,
    server_patch: dict[str, Any] | None = None,
    media_workers: int = 1,
    server_edit: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """The demo config with private ports and files, plus optional edits to queues.yaml;
    ``media_workers`` is ``rtp.workers`` (2: media in two worker processes);
    ``server_edit`` changes server.yaml's data in place, after everything else."""
    d = tmp / "config"
    shutil.copytree(ROOT / "config", d)
    server = yaml.safe_load((d / "server.yaml").read_text())
    sip_port = free_udp_tcp_port()
    server["sip"]["listen"] = [{"transport": "udp", "host": "127.0.0.1", "port": sip_port},
                               {"transport": "tcp", "host": "127.0.0.1", "port": sip_port}]  # fmt: skip
    rtp = random.randrange(50000, 60000) & ~1
    server["rtp"].update(port_min=rtp, port_max=rtp + 399, workers=media_workers)
    server["http"]["port"] = 0
    server["data_dir"] = str(tmp / "var")
    server["database"]["url"] = f"sqlite+aiosqlite:///{tmp}/crm.db"
    server["crm"]["files_dir"] = str(tmp / "files")
    if isinstance(server.get("email"), dict):  # the SMTP listener on a free port (the demo's is 2525)
        server["email"].setdefault("smtp", {})["port"] = 0
    # The TTS cache is shared between tests on purpose: prompts render once per run.
    server["speech"]["tts_cache_dir"] = str(ROOT / "var" / "test-tts-cache")
    server["logging"]["format"] = "text"
    server.update(server_patch or {})
    if server_edit is not None:
        server_edit(server)
    (d / "server.yaml").write_text(yaml.safe_dump(server))
    # Tests run at any hour: the main line is open around the clock here.
    services = yaml.safe_load((d / "services.yaml").read_text())
    for svc in services["services"].values():
        svc["hours"] = None
        svc["holidays"] = []
    (d / "services.yaml").write_text(yaml.safe_dump(services))
    if patch is not None:
        queues = yaml.safe_load((d / "queues.yaml").read_text())
        patch(queues)
        (d / "queues.yaml").write_text(yaml.safe_dump(queues))
    return d


def tone_wav(path: Path, seconds: float = 120.0, freq: float = 440.0) -> Path:
    """A long 8 kHz tone: baresip's aufile source ends the call when the file ends."""
    t = np.arange(int(8000 * seconds)) / 8000
    pcm = (np.sin(2 * np.pi * freq * t) * 8000).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm.tobytes())
    return path


class Baresip:
    """One baresip process registered as an agent, driven over ctrl_tcp (netstring JSON)."""

    def __init__(self, workdir: Path, user: str, password: str, registrar: tuple[str, int],
                 *, answer: str = "auto", tls_ca: Path | None = None, mediaenc: str | None = None,
                 net_interface: str = "127.0.0.1") -> None:  # fmt: skip
        """``tls_ca``: register over TLS (``registrar`` is then our TLS listener), trusting
        that CA; ``mediaenc``: baresip's media encryption for the account ("srtp-mand");
        ``net_interface``: the address baresip writes in its SDP (another host address
        while it still talks to us over loopback: the multi-homed phone of issue 19)."""
        self.net_interface = net_interface
        self.tls_ca = tls_ca
        self.mediaenc = mediaenc
        self.workdir = workdir
        self.user = user
        self.password = password
        self.registrar = registrar
        self.answer = answer
        self.sip_port = free_udp_tcp_port(span=2)  # baresip: UDP and TCP on it, TLS on the next
        self.ctrl_port = free_port(socket.SOCK_STREAM)
        self.proc: asyncio.subprocess.Process | None = None
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pump: asyncio.Task[None] | None = None
        self._token = 0
        self.log: list[str] = []
        self._stdout: asyncio.Task[None] | None = None

    async def _drain_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.log.append(line.decode(errors="replace").rstrip())

    async def start(self) -> None:
        exe = require_tool("baresip")
        d = self.workdir
        d.mkdir(parents=True, exist_ok=True)
        wav = tone_wav(d / "talk.wav")
        host, port = self.registrar
        rtp = random.randrange(43000, 47000) & ~1
        (d / "config").write_text(f"""poll_method epoll
net_interface {self.net_interface}
sip_listen 127.0.0.1:{self.sip_port}
audio_source aufile,{wav}
audio_player aubridge,nil
audio_alert aubridge,nil
rtp_ports {rtp}-{rtp + 99}
module_path {BARESIP_MODULES}
module g711.so
module aufile.so
module aubridge.so
module ctrl_tcp.so
module_tmp uuid.so
module_tmp account.so
module_app menu.so
ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}
""" + (f"sip_cafile {self.tls_ca}\n" if self.tls_ca else "")
          + ("module srtp.so\n" if self.mediaenc else ""))
        transport = ";transport=tls" if self.tls_ca else ""
        mediaenc = f";mediaenc={self.mediaenc}" if self.mediaenc else ""
        (d / "accounts").write_text(
            f"<sip:{self.user}@{host}:{port}{transport}>;auth_pass={self.password};regint=600;"
            f"answermode={self.answer}{mediaenc}\n"
        )
        self.proc = await asyncio.create_subprocess_exec(
            exe, "-f", str(d), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        # baresip prints "baresip is ready." once its modules (ctrl_tcp included) are loaded.
        async def ready() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            async for line in self.proc.stdout:
                self.log.append(line.decode(errors="replace").rstrip())
                if b"baresip is ready" in line:
                    return
            raise RuntimeError("baresip exited at start:\n" + "\n".join(self.log))

        await asyncio.wait_for(ready(), 15)
        self._stdout = asyncio.create_task(self._drain_stdout())
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.ctrl_port)
        self._pump = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._reader is not None
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                length = int((await self._reader.readuntil(b":"))[:-1])
                body = await self._reader.readexactly(length + 1)
                msg = json.loads(body[:-1])
                msg["_received_at"] = asyncio.get_running_loop().time()
                async with self._changed:
                    self.events.append(msg)
                    self._changed.notify_all()

    async def wait_event(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 20.0,
                         start: int = 0) -> dict[str, Any]:  # fmt: skip
        async def find() -> dict[str, Any]:
            async with self._changed:
                while True:
                    for e in self.events[start:]:
                        if pred(e):
                            return e
                    await self._changed.wait()

        return await asyncio.wait_for(find(), timeout)

    async def command(self, command: str, params: str = "") -> None:
        assert self._writer is not None
        self._token += 1
        body = json.dumps({"command": command, "params": params, "token": str(self._token)}).encode()
        self._writer.write(str(len(body)).encode() + b":" + body + b",")
        await self._writer.drain()

    async def stop(self) -> None:
        for task in (self._pump, self._stdout):
            if task is not None:
                task.cancel()
        if self._writer is not None:
            self._writer.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


class Desktop:
    """An agent (or supervisor) desktop: REST login + the live WebSocket stream."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url
        self.username = username
        self.password = password
        self.http = httpx.AsyncClient(base_url=base_url, timeout=10.0)
        self.token = ""
        self.messages: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()
        self._ws: Any = None
        self._pump: asyncio.Task[None] | None = None

    async def login(self) -> None:
        r = await self.http.post("/api/login", json={"username": self.username, "password": self.password})
        r.raise_for_status()
        self.token = r.json()["token"]
        self.http.headers["Authorization"] = f"Bearer {self.token}"
        ws_url = self.base_url.replace("http", "ws", 1) + "/ws"
        self._ws = await websockets.connect(ws_url, subprotocols=ws_subprotocols(self.token))
        self._pump = asyncio.create_task(self._read())
        await self.wait(lambda m: m["type"] == "snapshot")

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self._ws:
                msg = json.loads(raw)
                msg["_received_at"] = asyncio.get_running_loop().time()
                async with self._changed:
                    self.messages.append(msg)
                    self._changed.notify_all()

    async def wait(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 20.0,
                   start: int = 0) -> dict[str, Any]:  # fmt: skip
        async def find() -> dict[str, Any]:
            async with self._changed:
                while True:
                    for m in self.messages[start:]:
                        if pred(m):
                            return m
                    await self._changed.wait()

        return await asyncio.wait_for(find(), timeout)

    async def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return await self.http.post(path, json=body or {})

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(path)

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._pump is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        await self.http.aclose()


class Caller:
    """A customer's phone: our own UA on its own port, placing real SIP calls with real RTP."""

    def __init__(self, srtp: str = "off") -> None:
        from callcenter.media.engine import MediaEngine
        from callcenter.sip.transport import SipTransportLayer
        from callcenter.sip.ua import UserAgent

        base = random.randrange(40000, 59000) & ~1
        # wide: benchmarks may hold ports
        self.engine = MediaEngine("127.0.0.1", base, base + 999, srtp=srtp)
        self.ua = UserAgent(self.engine, user_agent="test-caller")
        self.transport = SipTransportLayer([("udp", "127.0.0.1", 0)], self.ua.on_message)

    async def start(self) -> None:
        await self.engine.start()
        await self.transport.start()
        self.ua.attach(self.transport)
        await self.ua.start()

    async def call(self, dnis: str, server: tuple[str, int], ani: str = "+441632960001",
                   headers: list[tuple[str, str]] | None = None) -> Any:  # fmt: skip
        host, port = server
        return await self.ua.place_call(
            f"sip:{dnis}@{host}:{port}", from_uri=f"sip:{ani}@127.0.0.1", from_display="Test Caller",
            timeout=15.0, headers=headers,
        )  # fmt: skip

    async def stop(self) -> None:
        await self.ua.stop()
        await self.transport.stop()
        await self.engine.stop()


class EventLog:
    """Everything published on the center's bus, with a way to wait for one."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []
        self._changed = asyncio.Condition()

    async def __call__(self, event: ev.Event) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    async def wait(self, kind: type[ev.Event], timeout: float = 30.0, **match: Any) -> Any:
        async def find() -> ev.Event:
            async with self._changed:
                while True:
                    for e in self.events:
                        if isinstance(e, kind) and all(getattr(e, k) == v for k, v in match.items()):
                            return e
                    await self._changed.wait()

        return await asyncio.wait_for(find(), timeout)

    def of(self, kind: type[ev.Event], **match: Any) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)
                and all(getattr(e, k) == v for k, v in match.items())]  # fmt: skip


def watch(rig: Any, name: str = "test") -> EventLog:
    """Record everything the rig's server publishes from now on."""
    log = EventLog()
    rig.center.bus.subscribe(name, log)
    return log
