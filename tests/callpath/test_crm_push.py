"""The finished interaction leaves the building: the server's outbox pushes the record
to a configured webhook (a real local HTTP server), signed, with an idempotency key."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_call_path import GRACE

from callcenter import events as ev
from callcenter.center import Center
from callcenter.config import load_config
from crm_bridge.signing import verify
from tests.support.peers import ROOT, Caller, EventLog, make_config_dir

SECRET = "test-webhook-secret"


class Receiver:
    """A tiny HTTP/1.1 server that keeps every POST it gets."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.changed = asyncio.Condition()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                async with self.changed:
                    self.posts.append((headers, body))
                    self.changed.notify_all()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def wait(self, pred: Any, timeout: float = 30.0) -> tuple[dict[str, str], bytes]:
        async def find() -> tuple[dict[str, str], bytes]:
            async with self.changed:
                while True:
                    for h, b in self.posts:
                        if pred(json.loads(b)):
                            return h, b
                    await self.changed.wait()

        return await asyncio.wait_for(find(), timeout)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.fixture
async def receiver() -> Any:
    r = Receiver()
    yield r
    await r.stop()


async def test_ivr_only_call_is_pushed_to_the_webhook(tmp_path: Path, receiver: Receiver) -> None:
    port = await receiver.start()
    cfg_dir = make_config_dir(tmp_path)
    server = yaml.safe_load((cfg_dir / "server.yaml").read_text())
    server["crm"]["webhooks"] = [{"name": "erp", "url": f"http://127.0.0.1:{port}/hook", "secret": SECRET}]
    (cfg_dir / "server.yaml").write_text(yaml.safe_dump(server))
    center = Center(load_config(cfg_dir), flows_dir=ROOT / "ivr_flows")
    await center.start()
    log = EventLog()
    center.bus.subscribe("test", log)
    caller = Caller()
    try:
        await caller.start()
        listen = center.cfg.server.sip.listen[0]
        call = await caller.call("5000", (listen.host, listen.port), ani=GRACE)
        arrived = await log.wait(ev.ContactArrived)
        await call.hangup()  # hangs up in the IVR: the record is still complete and pushed
        await log.wait(ev.ContactEnded, contact_id=arrived.contact_id)

        def ended_record(payload: dict[str, Any]) -> bool:
            text = json.dumps(payload)
            return arrived.contact_id in text and '"ended"' in text

        headers, body = await receiver.wait(ended_record)
        assert verify(SECRET, headers["x-crm-timestamp"], body, headers["x-crm-signature"])
        assert headers["idempotency-key"]
        assert GRACE in body.decode()
    finally:
        await caller.stop()
        await center.stop()
