"""The fax channel: a received fax becomes a contact (channel ``fax``) that waits in its
service's queue for an agent with the fax skill, who sees the pages on the desk, links
the document to a customer and closes it.

A call to a fax service (flow ``fax``) is answered and received at once
(``callcenter.fax.reception``); a voice call whose caller turns out to be a fax machine
(CNG heard during the IVR, ``FaxDetector``) is handed over to the same reception. The
contact arrives when the call does, so a server crash mid-fax still leaves a record; the
document is one ``ContactMessage`` (TIFF-F as received, PDF, PNG of page 1, with the
T.30 result in ``meta``) published when T.30 ends. The customer is found by the calling
number, or by the sender's station id (TSI) when the number is withheld.

A fax that brought no page ends at once (``fax_failed``: nothing for an agent to do);
one that brought pages is routed even when T.30 ended badly, flagged partial.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from callcenter import events as ev
from callcenter.channels.desk_task import DeskTaskChannel
from callcenter.config import FaxCfg
from callcenter.contacts.contact import Contact
from callcenter.contacts.core import ContactCore
from callcenter.contacts.errors import InvalidState
from callcenter.fax.document import FaxDocument, store_received
from callcenter.fax.outbound import Attempt, prepare, send_with_retries
from callcenter.fax.reception import ReceiveOptions, receive
from callcenter.fax.terminal import FaxResult
from callcenter.ivr.services import Service
from callcenter.sip.calls import Call
from crm_bridge.addresses import normalize_phone
from crm_bridge.files import store_path

log = logging.getLogger(__name__)


@dataclass(slots=True)
class FaxItem:
    """What the desk shows of one received fax."""

    result: FaxResult
    document: FaxDocument
    tsi: str

    def view(self, contact_id: str) -> dict[str, Any]:
        r, d = self.result, self.document
        base = f"/api/fax/{contact_id}"
        return {
            "pages": d.pages,
            "page1": f"{base}/page1.png" if d.png else None,
            "pdf": f"{base}/document.pdf" if d.pdf else None,
            "tiff": f"{base}/document.tif" if d.tiff else None,
            "ok": r.ok,
            "partial": r.partial,
            "reason": r.reason,
            "t30_code": r.code,
            "tsi": self.tsi,
            "bit_rate": r.bit_rate,
            "resolution": f"{r.x_dpi}x{r.y_dpi}",
            "ecm": r.ecm,
            "transport": r.transport,
            "problem": d.problem,
        }


class FaxChannel(DeskTaskChannel):
    name: ClassVar[str] = "fax"
    address_kind: ClassVar[str] = "phone"

    def __init__(self, core: ContactCore, cfg: FaxCfg, *, files_dir: Path, work_dir: Path,
                 default_region: str, services: dict[str, Service],
                 dial: Callable[[str], Awaitable[Call]] | None = None,
                 max_attempts: int = 3, retry_after_s: float = 300.0) -> None:  # fmt: skip
        super().__init__(core)
        self.dial = dial  # places a call to a +E.164 number through the callback trunk
        self.max_attempts = max_attempts
        self.retry_after_s = retry_after_s
        self._sends = itertools.count(1)
        self.cfg = cfg
        self.files_dir = files_dir
        self.work_dir = work_dir
        self.default_region = default_region
        self.services = services
        self.items: dict[str, FaxItem] = {}  # contact id -> the received document
        self.options = ReceiveOptions(ident=cfg.ident, ecm=cfg.ecm, t38=cfg.t38, max_seconds=cfg.max_seconds)

    # ------------------------------------------------------------------ receiving

    def arrive(self, call: Call, service: Service, *, contact_id: str | None = None) -> Contact:
        ani = normalize_phone(call.ani, self.default_region) or ""
        contact = self.new_contact(ani=ani, service=service.name, dnis=call.dnis, contact_id=contact_id)
        call.data["contact_id"] = contact.contact_id
        self.core.arrive(contact, ev.ContactArrived(
            contact_id=contact.contact_id, channel=self.name, ani=ani, dnis=call.dnis, service=service.name,
            from_addr=call.from_uri, to_addr=call.to_uri,
            attributes={"sip_call_id": call.call_id, "display": call.from_display}))  # fmt: skip
        return contact

    async def on_call(self, call: Call, service: Service) -> None:
        """A call to a fax service: answer, receive, deliver."""
        contact = self.arrive(call, service)
        await self.take(call, contact, service, answer=True)

    async def take(self, call: Call, contact: Contact, service: Service, *, answer: bool) -> None:
        """Receive the fax on ``call`` (answered already unless ``answer``) for ``contact``."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        path = self.work_dir / f"{contact.contact_id}.tif"
        try:
            result = await receive(call, str(path), self.options, answer=answer)
            await self.deliver(contact, result, service)
        finally:
            path.unlink(missing_ok=True)  # stored content-addressed by now (or nothing came)

    async def deliver(self, contact: Contact, result: FaxResult, service: Service) -> None:
        document = store_received(Path(result.path), self.files_dir) if result.pages else \
            FaxDocument(0, None, None, None, "no page arrived")
        tsi = result.remote_ident
        if not contact.ani and tsi:
            contact.ani = normalize_phone(tsi, self.default_region) or ""  # the customer by TSI
        item = FaxItem(result, document, tsi)
        self.items[contact.contact_id] = item
        what = f"{document.pages} page{'s' if document.pages != 1 else ''}"
        text = f"Fax, {what}" if result.ok else f"Fax, {what}, incomplete: {result.reason}"
        meta = {"fax": {k: v for k, v in result.as_dict().items() if k not in ("path", "extra")},
                "t30_ok": result.ok, "tsi": tsi, "problem": document.problem, **result.extra}
        self.message(contact, direction="in", message_id=f"fax-{contact.contact_id}",
                     author=contact.ani or tsi, text=text,
                     attachments=document.attachments(f"fax-{contact.contact_id}"), meta=meta)  # fmt: skip
        log.info("fax %s: %s, %d pages, %s (T.30 %d)", contact.contact_id, "received" if result.ok else
                 "failed", document.pages, result.reason, result.code)  # fmt: skip
        if self.core.contacts.get(contact.contact_id) is not contact:
            return  # ended meanwhile (server stopping)
        if document.pages == 0:
            self.core.end(contact, "fax_failed", "system")  # nothing for an agent: the record says why
            return
        await self.core.customer_context(contact, self.address_kind)
        if self.core.contacts.get(contact.contact_id) is contact:
            self.core.enqueue(contact, service.default_queue, 0, dict(self.cfg.skills))

    # ------------------------------------------------------------------ sending

    def send(self, contact: Contact, number: str, data: bytes, name: str, agent_id: str) -> int:
        """Fax ``data`` (PDF, TIFF or an image) to ``number`` for the agent holding
        ``contact``; returns the page count at once, the result arrives as a ContactMessage
        (direction out) once sent or given up. Raises InvalidState/DocumentError."""
        if self.dial is None:
            raise InvalidState("faxes cannot be sent: callbacks.dial_uri is not configured")
        e164 = normalize_phone(number, self.default_region)
        if not e164:
            raise InvalidState(f"not a phone number: {number!r}")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        n = next(self._sends)
        tiff = self.work_dir / f"out-{contact.contact_id}-{n}.tif"
        pages = prepare(data, tiff)
        self.tasks.spawn(self._send(contact, e164, tiff, name, agent_id, n, pages),
                         f"fax-send:{contact.contact_id}:{n}")  # fmt: skip
        return pages

    async def _send(self, contact: Contact, number: str, tiff: Path, name: str, agent_id: str,
                    n: int, pages: int) -> None:  # fmt: skip
        dial = self.dial
        assert dial is not None

        def logged(a: Attempt) -> None:
            log.info("fax send %s #%d attempt %d to %s: %s", contact.contact_id, n, a.number, number,
                     a.error or (a.result.reason if a.result else "?"))  # fmt: skip

        try:
            attempts = await send_with_retries(
                lambda: dial(number), tiff, ident=self.cfg.ident, ecm=self.cfg.ecm,
                max_attempts=self.max_attempts, retry_after_s=self.retry_after_s,
                max_seconds=self.cfg.max_seconds, on_attempt=logged)  # fmt: skip
            stored = store_path(self.files_dir, tiff)
        finally:
            tiff.unlink(missing_ok=True)
        last = attempts[-1]
        ok = last.result is not None and last.result.ok
        why = last.error or (last.result.reason if last.result else "")
        attempts_meta = [
            {"attempt": a.number, "error": a.error,
             "result": {k: v for k, v in a.result.as_dict().items() if k not in ("path", "extra")}
             if a.result else None}
            for a in attempts
        ]  # fmt: skip
        sheet = {"name": name or f"fax-out-{n}.tif", "size": stored.size, "sha256": stored.sha256,
                 "path": stored.path, "content_type": "image/tiff"}  # fmt: skip
        text = f"Fax to {number}, {pages} page{'s' if pages != 1 else ''}: " + (
            "sent" if ok else f"not sent ({why})")
        self.message(contact, direction="out", message_id=f"fax-out-{contact.contact_id}-{n}",
                     author=agent_id, text=text, attachments=[sheet],
                     meta={"to": number, "sent": ok, "pages": pages, "attempts": attempts_meta})

    # ------------------------------------------------------------------ the desk

    def view(self, contact: Contact) -> dict[str, Any]:
        item = self.items.get(contact.contact_id)
        return item.view(contact.contact_id) if item is not None else {}

    def file_of(self, contact_id: str, kind: str) -> Path | None:
        """The stored file of a fax (``png``, ``pdf`` or ``tif``), or None."""
        item = self.items.get(contact_id)
        if item is None:
            return None
        stored = {"png": item.document.png, "pdf": item.document.pdf, "tif": item.document.tiff}.get(kind)
        return self.files_dir / stored.path if stored is not None else None

    def forget(self, contact: Contact) -> None:
        self.items.pop(contact.contact_id, None)
