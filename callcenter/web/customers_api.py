"""The desk's customer panel over HTTP: search customers, link a contact to one, read a
customer with their recent interactions, edit their phones and emails.

    GET  /api/customers/search?q=            name (part), phone (any format, or a run of its
                                             digits), email (part) or account number (exact)
    GET  /api/customers/{id}                 the customer and their recent interactions (notes
                                             as the privacy policy shows them)
    POST /api/interactions/{id}/customer     {customer_id}: this contact is that customer; an
                                             unknown caller's provisional customer merges into it
    PUT  /api/customers/{id}/contact-points  {points: [{kind, value}]}: the customer's phones and
                                             emails become exactly these

Agents and supervisors (token as for the rest of the API). The privacy policy
(server.yaml ``privacy``, callcenter/privacy.py) decides what an agent may do: with
``lookup: current`` an agent searches only while handling a contact (to identify its
caller), links only a contact they hold or handled, and reads or edits only the customer
of the contact they hold; with ``lookup: any`` every customer. Found on
``app.state.customers`` (set by Center); without it, 503.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from callcenter.bus import EventBus
from callcenter.contacts.contact import Contact
from callcenter.contacts.core import jsonable
from callcenter.privacy import AccessDenied, Privacy, Reader
from crm_bridge.batching import EventBatcher
from crm_bridge.customers import InvalidContactPoints
from crm_bridge.store import ContactPointConflict, CrmStore, NotFound

log = logging.getLogger("callcenter.audit")
router = APIRouter(tags=["customers"])
_bearer = HTTPBearer(auto_error=False)
RECENT_N = 6  # as many as the screen-pop shows
MAX_POINTS = 20


class LinkIn(BaseModel):
    customer_id: str = Field(min_length=1, max_length=64)


class PointIn(BaseModel):
    kind: Literal["phone", "email"]
    value: str = Field(min_length=1, max_length=320)


class PointsIn(BaseModel):
    points: list[PointIn] = Field(max_length=MAX_POINTS)


class CustomerDesk:
    """What the panel's routes do, given the CRM, the privacy policy and the live contacts.

    ``current(agent)`` is the agent's current contact as the desk sees it (the backend's
    ``current_contact``: offered, connected or in wrap-up); ``contacts`` the live contacts by
    id; ``settle()`` waits until the CRM has written every event published so far (a link
    right after the call arrived needs its record)."""

    def __init__(
        self,
        crm: CrmStore,
        privacy: Privacy,
        current: Callable[[str], dict[str, Any] | None],
        contacts: Mapping[str, Contact],
        settle: Callable[[], Awaitable[None]],
    ) -> None:
        self.crm = crm
        self.privacy = privacy
        self._current = current
        self._contacts = contacts
        self._settle = settle

    def _held(self, reader: Reader) -> str | None:
        current = self._current(reader.subject) if reader.role == "agent" else None
        return str(current["contact_id"]) if current and current.get("contact_id") else None

    async def _serving(self, reader: Reader) -> str | None:
        """The (live) customer id of the agent's current contact, if it has one."""
        held = self._held(reader)
        if held is None:
            return None
        live = self._contacts.get(held)
        if live is not None and live.customer and live.customer.get("id"):
            found = await self.crm.get_customer(str(live.customer["id"]))  # follows a merge
            return str(found["id"]) if found else None
        record = await self.crm.interaction(held)  # in wrap-up the contact lives only in the CRM
        if record is None or not record["customer_id"]:
            return None
        found = await self.crm.get_customer(record["customer_id"])
        return str(found["id"]) if found else None

    async def _may_read(self, reader: Reader, customer_id: str) -> None:
        if self.privacy.rules(reader).lookup == "any":
            return
        if customer_id != await self._serving(reader):
            raise AccessDenied("you may read or change only the customer of your current contact")

    async def search(self, reader: Reader, q: str) -> list[dict[str, Any]]:
        if self.privacy.rules(reader).lookup != "any" and self._held(reader) is None:
            raise AccessDenied("you may search customers only while handling a contact")
        found = await self.crm.search_customers(q)
        log.info("customer search", extra={"reader": reader.subject, "role": reader.role,
                 "contact_id": self._held(reader) or "", "customers": [c["id"] for c in found]})  # fmt: skip
        return found

    async def customer(self, reader: Reader, customer_id: str) -> dict[str, Any]:
        found = await self.crm.get_customer(customer_id)
        if found is None:
            raise HTTPException(404, "no such customer")
        await self._may_read(reader, str(found["id"]))
        return {"customer": found, "recent": await self._recent(reader, str(found["id"]))}

    async def _recent(self, reader: Reader, customer_id: str, exclude: str = "") -> list[dict[str, Any]]:
        owner = self.privacy.history_owner(reader)
        rows = await self.crm.recent_interactions(customer_id, RECENT_N + 1, handled_by=owner)
        shown = self.privacy.history(reader, [dict(r) for r in rows if r["id"] != exclude][:RECENT_N])
        self.privacy.read(reader, customer_id, "customer panel", shown, exclude)
        return shown

    async def link(self, reader: Reader, contact_id: str, customer_id: str) -> dict[str, Any]:
        held = self._held(reader)
        if reader.role == "agent" and contact_id != held:
            record = await self.crm.interaction(contact_id)
            if record is None or record["agent_id"] != reader.subject:
                raise AccessDenied("you may link only a contact you are handling or handled")
        await self._settle()  # the contact's record exists before it is linked
        try:
            live_id = await self.crm.link_contact(contact_id, customer_id, how="agent", actor=reader.subject)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None
        customer = await self.crm.get_customer(live_id)
        assert customer is not None  # link_contact found it
        recent = await self._recent(reader, live_id, exclude=contact_id)
        contact = self._contacts.get(contact_id)
        if contact is not None:  # the screen-pop (and a desk reload) shows the customer from now on
            contact.customer = jsonable(customer) | {"id": live_id}
            contact.recent = [jsonable(r) for r in recent]
        log.info("contact linked to customer", extra={"reader": reader.subject, "contact_id": contact_id,
                 "customer_id": live_id})  # fmt: skip
        return {"contact_id": contact_id, "customer": customer, "recent": recent}

    async def set_points(self, reader: Reader, customer_id: str, points: list[PointIn]) -> dict[str, Any]:
        """The customer's phones and emails become ``points`` (agents: their current contact's customer)."""
        found = await self.crm.get_customer(customer_id)
        if found is None:
            raise HTTPException(404, "no such customer")
        live_id = str(found["id"])
        # Editing is for the customer in front of the agent, whatever the lookup rule says.
        if reader.role == "agent" and live_id != await self._serving(reader):
            raise AccessDenied("you may change only the customer of your current contact")
        wanted = [(p.kind, p.value) for p in points]
        try:
            await self.crm.set_contact_points(live_id, wanted, actor=reader.subject)
        except InvalidContactPoints as exc:  # every bad value named, nothing saved
            raise HTTPException(422, f"nothing saved: {exc}") from None
        except ContactPointConflict as exc:
            raise HTTPException(409, str(exc)) from None
        customer = await self.crm.get_customer(live_id)
        assert customer is not None
        for contact in self._contacts.values():  # live screen-pops of this customer stay true
            if contact.customer and contact.customer.get("id") == live_id:
                contact.customer = jsonable(customer) | {"id": live_id}
        return {"customer": customer}


def _desk(
    request: Request, cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> tuple[CustomerDesk, Reader]:
    p = request.app.state.auth.verify(cred.credentials) if cred else None
    if p is None:
        raise HTTPException(401, "missing or invalid token", {"WWW-Authenticate": "Bearer"})
    service = getattr(request.app.state, "customers", None)
    if service is None:
        raise HTTPException(503, "customer records are not available on this server")
    return service, Reader(p.subject, p.role)


Who = Annotated[tuple[CustomerDesk, Reader], Depends(_desk)]


@router.get("/api/customers/search")
async def search(who: Who, q: Annotated[str, Query(min_length=1, max_length=128)]) -> dict[str, Any]:
    """Customers matching ``q`` by name, phone, email or account (at most 20, by name)."""
    desk, reader = who
    return {"customers": await desk.search(reader, q)}


@router.get("/api/customers/{customer_id}")
async def customer(who: Who, customer_id: str) -> dict[str, Any]:
    """One customer (after a merge: the survivor) and their recent interactions."""
    desk, reader = who
    if len(customer_id) > 64:
        raise HTTPException(422, "customer id too long")
    return await desk.customer(reader, customer_id)


@router.post("/api/interactions/{contact_id}/customer")
async def link(who: Who, contact_id: str, body: LinkIn) -> dict[str, Any]:
    """This contact is this customer; an unknown caller's provisional customer (and its
    history and number) merges into it."""
    desk, reader = who
    if len(contact_id) > 64:
        raise HTTPException(422, "contact id too long")
    return await desk.link(reader, contact_id, body.customer_id)


@router.put("/api/customers/{customer_id}/contact-points",
            responses={409: {"description": "a number or address belongs to another customer"},
                       422: {"description": "invalid values, each named in detail"}})  # fmt: skip
async def contact_points(who: Who, customer_id: str, body: PointsIn) -> dict[str, Any]:
    """The customer's phone numbers and email addresses become exactly ``points``."""
    desk, reader = who
    if len(customer_id) > 64:
        raise HTTPException(422, "customer id too long")
    return await desk.set_points(reader, customer_id, body.points)


def settled(bus: EventBus, batcher: EventBatcher) -> Callable[[], Awaitable[None]]:
    """``settle`` for :class:`CustomerDesk`: every event published so far is in the CRM."""

    async def settle() -> None:
        await bus.drain()
        await batcher.flush()

    return settle
