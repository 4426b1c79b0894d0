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
``lookup: current`` an agent searches only while holding a contact (offered, connected or
in wrap-up: to identify its caller), links only a contact they hold or handled, reads only
the customers of contacts they hold or handled, and edits only the customer of a contact
they hold; with ``lookup: any`` reads every customer. Found on ``app.state.customers`` (set
by Center); without it, 503.
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
    ``current_contact``); ``contacts`` the live contacts by id; ``settle()`` waits until the
    CRM has written every event published so far (a link right after the call arrived needs
    its record). With the contact core set (``core``: the app's backend's, see ``_desk``),
    every contact the agent holds counts, wrap-ups included."""

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
        self.core: Any = None  # the multi-contact core (live_contacts, wrap_up_contacts), when known

    def _held(self, reader: Reader) -> dict[str, Contact | None]:
        """The contacts the agent holds now by id (offered, connected, in wrap-up); the
        Contact is None where only the desk's current contact is known of it."""
        if reader.role != "agent":
            return {}
        held: dict[str, Contact | None] = {}
        if self.core is not None:
            held.update({c.contact_id: c for c in self.core.live_contacts(reader.subject)})
            held.update({c.contact_id: c for c, _draft in self.core.wrap_up_contacts(reader.subject)})
        current = self._current(reader.subject)
        if current and current.get("contact_id") and current["contact_id"] not in held:
            held[str(current["contact_id"])] = self._contacts.get(str(current["contact_id"]))
        return held

    async def _serving(self, reader: Reader) -> set[str]:
        """The (live) customer ids of the contacts the agent holds."""
        ids: set[str] = set()
        for contact_id, contact in self._held(reader).items():
            cid = contact.customer.get("id") if contact is not None and contact.customer else None
            if not cid:  # known only to the CRM (e.g. in wrap-up on an older core)
                record = await self.crm.interaction(contact_id)
                cid = record["customer_id"] if record else None
            found = await self.crm.get_customer(str(cid)) if cid else None  # follows a merge
            if found is not None:
                ids.add(str(found["id"]))
        return ids

    async def may_read(self, reader: Reader, customer_id: str) -> None:
        """AccessDenied unless ``reader`` may read this customer (lookup rule, held or handled)."""
        if self.privacy.rules(reader).lookup == "any" or customer_id in await self._serving(reader):
            return
        # A customer whose contact the agent handled: their own record shows it already.
        if reader.role == "agent" and await self.crm.search_interactions(
            agent_id=reader.subject, customer_id=customer_id, limit=1
        ):
            return
        raise AccessDenied("you may read only the customers of contacts you hold or handled")

    async def search(self, reader: Reader, q: str) -> list[dict[str, Any]]:
        held = list(self._held(reader))
        if self.privacy.rules(reader).lookup != "any" and not held:
            raise AccessDenied("you may search customers only while handling a contact")
        found = await self.crm.search_customers(q)
        log.info("customer search", extra={"reader": reader.subject, "role": reader.role,
                 "contact_id": ",".join(held), "customers": [c["id"] for c in found]})  # fmt: skip
        return found

    async def customer(self, reader: Reader, customer_id: str) -> dict[str, Any]:
        found = await self.crm.get_customer(customer_id)
        if found is None:
            raise HTTPException(404, "no such customer")
        await self.may_read(reader, str(found["id"]))
        return {"customer": found, "recent": await self._recent(reader, str(found["id"]))}

    async def _recent(self, reader: Reader, customer_id: str, exclude: str = "") -> list[dict[str, Any]]:
        owner = self.privacy.history_owner(reader)
        rows = await self.crm.recent_interactions(customer_id, RECENT_N + 1, handled_by=owner)
        shown = self.privacy.history(reader, [dict(r) for r in rows if r["id"] != exclude][:RECENT_N])
        self.privacy.read(reader, customer_id, "customer panel", shown, exclude)
        return shown

    async def link(self, reader: Reader, contact_id: str, customer_id: str) -> dict[str, Any]:
        held = self._held(reader)
        if reader.role == "agent" and contact_id not in held:
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
        contact = held.get(contact_id) or self._contacts.get(contact_id)
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
        if reader.role == "agent" and live_id not in await self._serving(reader):
            raise AccessDenied("you may change only the customer of a contact you hold")
        wanted = [(p.kind, p.value) for p in points]
        try:
            await self.crm.set_contact_points(live_id, wanted, actor=reader.subject)
        except InvalidContactPoints as exc:  # every bad value named, nothing saved
            raise HTTPException(422, f"nothing saved: {exc}") from None
        except ContactPointConflict as exc:
            raise HTTPException(409, str(exc)) from None
        customer = await self.crm.get_customer(live_id)
        assert customer is not None
        for contact in [*self._contacts.values(), *self._held(reader).values()]:  # screen-pops stay true
            if contact is not None and contact.customer and contact.customer.get("id") == live_id:
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
    if service.core is None:  # the backend's contact core: every contact an agent holds
        core = getattr(getattr(request.app.state, "backend", None), "core", None)
        if hasattr(core, "wrap_up_contacts"):
            service.core = core
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
