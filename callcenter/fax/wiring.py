"""Builds the fax channel and adds it to a ``Center`` (callcenter/center.py): the channel
on the contact core, the SIP entry (``FaxEntry`` wraps the voice channel's call handler),
the desk panel and its endpoints.

``FaxEntry`` sees every inbound call first. A call to a service whose flow is ``fax`` is
the fax channel's; a call to a service listed in ``fax.detect_on`` goes to the voice
channel as usual while its media listens for CNG: when a fax machine is heard, the IVR
is stopped, the voice contact ends (``fax_detected``) and the same call, already
answered, is received as a fax contact of ``fax.detect_service``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from callcenter.channels.fax import FaxChannel
from callcenter.configerrors import ConfigError
from callcenter.fax.config_check import fax_problems
from callcenter.fax.media_port import detect_cng, forget
from callcenter.fax.outbound import DocumentError
from callcenter.ivr.services import Service
from callcenter.sip.calls import Call
from callcenter.tasks import BackgroundTasks
from callcenter.web.channel_api import AgentId, HeldContact, include_channel
from callcenter.web.pages import PAGES_DIR

if TYPE_CHECKING:
    from callcenter.center import Center

log = logging.getLogger(__name__)
CallHandler = Callable[[Call], Awaitable[None]]
MAX_SEND_BYTES = 20 * 1024 * 1024  # a document to fax, decoded
FILE_TYPES = {"page1.png": ("png", "image/png"), "document.pdf": ("pdf", "application/pdf"),
              "document.tif": ("tif", "image/tiff")}  # fmt: skip


class FaxEntry:
    def __init__(self, channel: FaxChannel, resolve: Callable[[str], Service],
                 detect_on: set[str], detect_service: Service) -> None:  # fmt: skip
        self.channel = channel
        self.resolve = resolve
        self.detect_on = detect_on
        self.detect_service = detect_service
        self.tasks = BackgroundTasks(log)

    def wrap(self, voice_on_call: CallHandler) -> CallHandler:
        async def on_call(call: Call) -> None:
            service = self.resolve(call.dnis)
            if service.flow == "fax":
                await self.channel.on_call(call, service)
                return
            if service.name not in self.detect_on:
                await voice_on_call(call)
                return
            detect_cng(call.media, lambda: self._fax_heard(call))
            try:
                await voice_on_call(call)
                if call.data.get("fax_contact_id"):  # the fax reception runs to its end first
                    await self.tasks_done(call)
            finally:
                forget(call.media)  # the listener's caller-side state, fax or not

        return on_call

    async def tasks_done(self, call: Call) -> None:
        task = call.data.get("fax_task")
        if isinstance(task, asyncio.Task):
            await asyncio.shield(task)

    def _fax_heard(self, call: Call) -> None:
        """CNG during the IVR: hand the call to the fax channel."""
        if not call.is_active or call.data.get("fax_contact_id"):
            return
        core = self.channel.core
        voice_contact = core.contacts.get(call.data.get("contact_id", ""))
        fax_contact = self.channel.arrive(call, self.detect_service)
        call.data["fax_contact_id"] = fax_contact.contact_id
        log.info("fax tone on call %s: contact %s continues as fax %s", call.call_id,
                 voice_contact.contact_id if voice_contact else "-", fax_contact.contact_id)  # fmt: skip
        stop_ivr = call.data.get("ivr_stop")
        if callable(stop_ivr):
            stop_ivr()
        if voice_contact is not None:
            core.end(voice_contact, "fax_detected", "system")
        call.data["contact_id"] = fax_contact.contact_id
        call.data["fax_task"] = self.tasks.spawn(
            self.channel.take(call, fax_contact, self.detect_service, answer=False),
            f"fax-detected:{fax_contact.contact_id}")  # fmt: skip

    async def close(self) -> None:
        await self.tasks.close()


class SendIn(BaseModel):
    number: str = Field(min_length=3, max_length=40)
    name: str = Field("", max_length=200)
    content_base64: str = Field(min_length=4, max_length=MAX_SEND_BYTES * 4 // 3 + 8)


def _router(channel: FaxChannel) -> APIRouter:
    router = APIRouter(tags=["fax"])

    @router.post("/api/fax/{contact_id}/send", status_code=202)
    async def send_fax(contact: HeldContact, agent_id: AgentId, body: SendIn) -> dict[str, Any]:
        """Fax a document (PDF, TIFF or image, base64) to a number through the callback
        trunk; the result is recorded on this contact as an outgoing message."""
        try:
            data = base64.b64decode(body.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise HTTPException(422, "content_base64 is not base64") from None
        try:
            pages = channel.send(contact, body.number, data, body.name, agent_id)
        except DocumentError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"queued": True, "pages": pages}

    @router.get("/api/fax/{contact_id}/{name}")
    async def fax_file(contact: HeldContact, name: str) -> FileResponse:
        """A fax's page 1 (PNG), its PDF or its TIFF as received; the agent's own contacts only."""
        kind = FILE_TYPES.get(name)
        path = channel.file_of(contact.contact_id, kind[0]) if kind else None
        if kind is None or path is None or not path.is_file():
            raise HTTPException(404, f"no {name} for this fax")
        return FileResponse(path, media_type=kind[1], headers={"Cache-Control": "private, max-age=3600"},
                            filename=f"fax-{contact.contact_id}.{kind[0]}")  # fmt: skip

    return router


def install_fax(center: Center) -> FaxEntry | None:
    """The fax channel when a service has the fax flow or fax detection is configured."""
    cfg = center.cfg.server.fax
    services = center.cfg.services.services
    fax_services = [s for s in services.values() if s.flow == "fax"]
    if not fax_services and not cfg.detect_on:
        return None
    problems = fax_problems(center.cfg)  # check-config reports these too
    if problems:
        raise ConfigError(problems)
    detect_service = services.get(cfg.detect_service)
    data_dir = Path(center.cfg.server.data_dir)
    trunk = center.cfg.server.callbacks

    async def dial(number: str) -> Call:
        return await center.ua.place_call(trunk.uri_for(number), timeout=trunk.ring_s)

    channel = FaxChannel(center.core, cfg, files_dir=Path(center.cfg.server.crm.files_dir),
                         work_dir=data_dir / "fax", default_region=center.cfg.server.database.default_region,
                         services=services, dial=dial if trunk.dial_uri else None,
                         max_attempts=trunk.max_attempts, retry_after_s=trunk.retry_after_s)  # fmt: skip
    include_channel(center.app, "fax", router=_router(channel), script=PAGES_DIR / "desk_fax.js")
    return FaxEntry(channel, center.cfg.services.resolve, set(cfg.detect_on),
                    detect_service or fax_services[0])
