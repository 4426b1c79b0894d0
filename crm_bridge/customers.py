"""Customers: create/update, search, contact points (add one, or replace a customer's phones
and emails as an agent edits them), notes, orders/cases, and the identity operations —
link a contact to a customer, merge two customers."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from crm_bridge.addresses import normalize, normalize_phone
from crm_bridge.db import upsert
from crm_bridge.identity import live_ids, new_customer_id
from crm_bridge.schema import (
    contact_points,
    customer_cases,
    customer_notes,
    customers,
    identity_matches,
    interactions,
)
from crm_bridge.store_core import (
    _ATTACH_NS,
    ContactPointConflict,
    CrmError,
    NotFound,
    StoreCore,
)

# The kinds an agent edits on the desk; web identities and fax numbers come from their channels.
EDITABLE_KINDS = ("phone", "email")
SEARCH_LIMIT = 20
_MIN_DIGITS = 4  # a shorter run of digits in a search matches too many numbers to help


class InvalidContactPoints(CrmError, ValueError):
    """One or more contact points are not valid; ``problems`` names each (all at once)."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p['value']!r}: {p['reason']}" for p in problems))


class CustomersMixin(StoreCore):
    """Customer management and identity operations."""

    # -- customers -------------------------------------------------------------

    async def upsert_customer(
        self,
        name: str,
        *,
        tier: str = "standard",
        language: str = "",
        attributes: Mapping[str, Any] | None = None,
        contact_points: Iterable[tuple[str, str]] = (),
        customer_id: str | None = None,
    ) -> str:
        """Create or update a (non-provisional) customer; returns its id.

        A contact point held by a *provisional* customer is taken over by
        merging that provisional into this one (its history comes along); one
        held by another real customer raises :class:`ContactPointConflict`.
        """
        cid = customer_id or new_customer_id()
        now = self.clock()
        points = [(k, self._norm(k, v)) for k, v in contact_points]
        async with self._write() as conn:
            values = {
                "name": name,
                "tier": tier,
                "language": language,
                "attributes": dict(attributes or {}),
                "provisional": False,
                "updated_at": now,
            }
            ins = upsert(self.engine, customers)
            await conn.execute(
                ins.on_conflict_do_update(index_elements=["id"], set_=values),
                [{"id": cid, "merged_into": None, "created_at": now, **values}],
            )
            for kind, value in points:
                await self._claim_point(conn, cid, kind, value, "admin", "", now)
        return cid

    def _norm(self, kind: str, value: str) -> str:
        norm = normalize(kind, value, self.default_region)
        if norm is None:
            raise ValueError(f"not a valid {kind} contact point: {value!r}")
        return norm

    async def _claim_point(
        self, conn: AsyncConnection, cid: str, kind: str, value: str, how: str, actor: str, now: float
    ) -> None:
        owner = (
            await conn.execute(
                select(contact_points.c.customer_id).where(
                    contact_points.c.kind == kind, contact_points.c.value == value
                )
            )
        ).scalar_one_or_none()
        if owner == cid:
            return
        if owner is None:
            await conn.execute(
                upsert(self.engine, contact_points).on_conflict_do_nothing(index_elements=["kind", "value"]),
                [{"kind": kind, "value": value, "customer_id": cid, "how": how, "created_at": now}],
            )
            return
        provisional = (
            await conn.execute(select(customers.c.provisional).where(customers.c.id == owner))
        ).scalar_one()
        if not provisional:
            raise ContactPointConflict(f"{kind} {value} belongs to customer {owner}")
        await self._merge(conn, owner, cid, f"claim:{kind}", actor, now)

    async def add_contact_point(
        self, customer_id: str, kind: str, value: str, *, how: str = "agent", actor: str = ""
    ) -> str:
        """Attach a contact point; returns the normalized value."""
        norm = self._norm(kind, value)
        now = self.clock()
        async with self._write() as conn:
            live = (await live_ids(conn, [customer_id])).get(customer_id)
            if live is None:
                raise NotFound(f"no customer {customer_id}")
            await self._claim_point(conn, live, kind, norm, how, actor, now)
        self.outbox_signal.set()
        return norm

    async def search_customers(self, q: str, limit: int = SEARCH_LIMIT) -> list[dict[str, Any]]:
        """Live, non-provisional customers matching ``q`` by name (part, any case), phone
        (the number as typed in any format, or a run of its digits), email (part) or
        account number (exact), by name; each with its contact points."""
        q = (q or "").strip()
        if not q:
            return []
        text = q.lower()
        points = contact_points.c
        point_hits = [(points.kind == "email") & func.lower(points.value).contains(text, autoescape=True)]
        phone = normalize_phone(q, self.default_region)
        if phone is not None:
            point_hits.append(points.kind.in_(("phone", "fax")) & (points.value == phone))
        digits = re.sub(r"\D", "", q)
        if len(digits) >= _MIN_DIGITS:
            point_hits.append(
                points.kind.in_(("phone", "fax")) & points.value.contains(digits, autoescape=True)
            )
        by_point = select(points.customer_id).where(or_(*point_hits))
        query = (
            select(customers.c.id)
            .where(
                customers.c.merged_into.is_(None),
                customers.c.provisional.is_(False),
                or_(
                    func.lower(customers.c.name).contains(text, autoescape=True),
                    customers.c.name.contains(q, autoescape=True),  # SQLite's lower() is ASCII-only
                    customers.c.id.in_(by_point),
                    customers.c.attributes["account"].as_string() == q,
                ),
            )
            .order_by(customers.c.name, customers.c.id)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            ids = [r.id for r in await conn.execute(query)]
            if not ids:
                return []
            rows = {
                r.id: dict(r._mapping)
                for r in await conn.execute(select(customers).where(customers.c.id.in_(ids)))
            }
            pts = await conn.execute(
                select(points.customer_id, points.kind, points.value, points.how)
                .where(points.customer_id.in_(ids))
                .order_by(points.kind, points.value)
            )
            for row in rows.values():
                row["contact_points"] = []
            for p in pts:
                rows[p.customer_id]["contact_points"].append({"kind": p.kind, "value": p.value, "how": p.how})
        return [rows[i] for i in ids]

    async def set_contact_points(
        self, customer_id: str, wanted: Iterable[tuple[str, str]], *, actor: str = "", how: str = "agent"
    ) -> list[tuple[str, str]]:
        """Make the customer's phones and emails exactly ``wanted`` (kind, value as typed):
        new ones are added, missing ones removed; web and fax points are left alone.

        Everything is checked before anything is written: invalid values raise
        :class:`InvalidContactPoints` naming each; a value held by another real customer
        raises :class:`ContactPointConflict` naming it (one held by a provisional customer
        is taken over by merging that provisional in, as ``upsert_customer`` does).
        Returns the normalized (kind, value) pairs now held."""
        problems: list[dict[str, str]] = []
        keep: dict[tuple[str, str], None] = {}
        for kind, raw in wanted:
            if kind not in EDITABLE_KINDS:
                problems.append(
                    {"kind": kind, "value": raw, "reason": f"kind must be one of {', '.join(EDITABLE_KINDS)}"}
                )
                continue
            norm = normalize(kind, raw, self.default_region)
            if norm is None:
                what = "phone number" if kind == "phone" else "email address"
                problems.append({"kind": kind, "value": raw, "reason": f"not a valid {what}"})
            else:
                keep[(kind, norm)] = None
        if problems:
            raise InvalidContactPoints(problems)
        now = self.clock()
        async with self._write() as conn:
            live = (await live_ids(conn, [customer_id])).get(customer_id)
            if live is None:
                raise NotFound(f"no customer {customer_id}")
            held = {
                (r.kind, r.value)
                for r in await conn.execute(
                    select(contact_points.c.kind, contact_points.c.value).where(
                        contact_points.c.customer_id == live, contact_points.c.kind.in_(EDITABLE_KINDS)
                    )
                )
            }
            added = [k for k in keep if k not in held]
            for kind, value in added:  # refuse before writing: one conflict leaves everything as it was
                owner = (
                    await conn.execute(
                        select(customers.c.id, customers.c.provisional)
                        .join(contact_points, contact_points.c.customer_id == customers.c.id)
                        .where(contact_points.c.kind == kind, contact_points.c.value == value)
                    )
                ).one_or_none()
                if owner is not None and not owner.provisional:
                    raise ContactPointConflict(
                        f"{value} already belongs to another customer ({owner.id}); "
                        "it was not added — merge the two customers or use another " + kind
                    )
            for kind, value in held - set(keep):
                await conn.execute(
                    delete(contact_points).where(
                        contact_points.c.kind == kind,
                        contact_points.c.value == value,
                        contact_points.c.customer_id == live,
                    )
                )
            for kind, value in added:
                await self._claim_point(conn, live, kind, value, how, actor, now)
            await conn.execute(update(customers).where(customers.c.id == live).values(updated_at=now))
        self.outbox_signal.set()
        return list(keep)

    async def add_note(
        self, customer_id: str, text_: str, *, author: str = "", contact_id: str | None = None
    ) -> str:
        note_id = uuid.uuid4().hex
        async with self._write() as conn:
            live = (await live_ids(conn, [customer_id])).get(customer_id)
            if live is None:
                raise NotFound(f"no customer {customer_id}")
            await conn.execute(
                customer_notes.insert(),
                [
                    {
                        "id": note_id,
                        "customer_id": live,
                        "contact_id": contact_id,
                        "author": author,
                        "text": text_,
                        "created_at": self.clock(),
                    }
                ],
            )
        return note_id

    async def upsert_case(
        self,
        customer_id: str,
        number: str,
        status: str,
        *,
        kind: str = "order",
        subject: str = "",
        is_open: bool = True,
        attributes: Mapping[str, Any] | None = None,
    ) -> str:
        """Create or update an order/case by its number; returns its id."""
        now = self.clock()
        number = number.strip().upper()
        async with self._write() as conn:
            live = (await live_ids(conn, [customer_id])).get(customer_id)
            if live is None:
                raise NotFound(f"no customer {customer_id}")
            values = {
                "customer_id": live,
                "kind": kind,
                "status": status,
                "subject": subject,
                "is_open": is_open,
                "attributes": dict(attributes or {}),
                "updated_at": now,
            }
            case_id = uuid.uuid5(_ATTACH_NS, f"case:{number}").hex
            ins = upsert(self.engine, customer_cases)
            await conn.execute(
                ins.on_conflict_do_update(index_elements=["number"], set_=values),
                [{"id": case_id, "number": number, "opened_at": now, **values}],
            )
        return case_id

    async def link_contact(
        self, contact_id: str, customer_id: str, *, how: str = "agent", actor: str = ""
    ) -> str:
        """Tie a contact to a known customer (an agent or a lookup identified the caller).

        If the contact sits on a provisional customer, that provisional is
        merged into ``customer_id`` so its earlier contacts come along. Returns
        the live customer id.
        """
        now = self.clock()
        async with self._write() as conn:
            target = (await live_ids(conn, [customer_id])).get(customer_id)
            if target is None:
                raise NotFound(f"no customer {customer_id}")
            row = (
                await conn.execute(select(interactions.c.customer_id).where(interactions.c.id == contact_id))
            ).one_or_none()
            if row is None:
                raise NotFound(f"no interaction {contact_id}")
            current = (await live_ids(conn, [row.customer_id])).get(row.customer_id or "")
            if current != target:
                if current is not None:
                    prov = (
                        await conn.execute(select(customers.c.provisional).where(customers.c.id == current))
                    ).scalar_one()
                    if prov:
                        await self._merge(conn, current, target, f"link:{how}", actor, now)
                await conn.execute(
                    update(interactions)
                    .where(interactions.c.id == contact_id)
                    .values(
                        customer_id=target,
                        original_customer_id=func.coalesce(interactions.c.original_customer_id, current),
                        match_method=f"link:{how}",
                        match_detail=actor,
                        updated_at=now,
                    )
                )
                await conn.execute(
                    identity_matches.insert(),
                    [
                        {
                            "customer_id": target,
                            "contact_id": contact_id,
                            "method": f"link:{how}",
                            "detail": "",
                            "source_customer_id": current,
                            "actor": actor,
                            "at": now,
                        }
                    ],
                )
        self.outbox_signal.set()
        return target

    async def merge_customers(
        self, source_id: str, target_id: str, *, how: str = "agent", actor: str = ""
    ) -> str:
        """Merge ``source`` into ``target``: contact points, notes, cases and
        interactions move over; ``source`` stays as a tombstone pointing at the
        survivor, and each interaction remembers the customer it was first
        matched to. Returns the survivor id."""
        now = self.clock()
        async with self._write() as conn:
            live = await live_ids(conn, [source_id, target_id])
            if source_id not in live or target_id not in live:
                raise NotFound(f"no customer {source_id if source_id not in live else target_id}")
            await self._merge(conn, live[source_id], live[target_id], how, actor, now)
        self.outbox_signal.set()
        return live[target_id]

    async def _merge(
        self, conn: AsyncConnection, source: str, target: str, how: str, actor: str, now: float
    ) -> None:
        if source == target:
            return
        for table in (contact_points, customer_notes, customer_cases):
            await conn.execute(update(table).where(table.c.customer_id == source).values(customer_id=target))
        await conn.execute(
            update(interactions)
            .where(interactions.c.customer_id == source)
            .values(
                customer_id=target,
                original_customer_id=func.coalesce(interactions.c.original_customer_id, source),
            )
        )
        await conn.execute(
            update(customers)
            .where(or_(customers.c.id == source, customers.c.merged_into == source))
            .values(merged_into=target, updated_at=now)
        )
        src = (await conn.execute(select(customers).where(customers.c.id == source))).one()
        tgt = (await conn.execute(select(customers).where(customers.c.id == target))).one()
        # The survivor keeps its own values; it only fills gaps from the source.
        await conn.execute(
            update(customers)
            .where(customers.c.id == target)
            .values(
                name=tgt.name or src.name,
                language=tgt.language or src.language,
                attributes={**(src.attributes or {}), **(tgt.attributes or {})},
                provisional=tgt.provisional and src.provisional,
                updated_at=now,
            )
        )
        await conn.execute(
            identity_matches.insert(),
            [
                {
                    "customer_id": target,
                    "contact_id": None,
                    "method": f"merge:{how}",
                    "detail": "",
                    "source_customer_id": source,
                    "actor": actor,
                    "at": now,
                }
            ],
        )
        key = f"customer.merged:{source}:{target}"
        await self._enqueue(
            conn,
            [
                {
                    "key": key,
                    "topic": "customer.merged",
                    "aggregate_id": target,
                    "payload": {
                        "topic": "customer.merged",
                        "key": key,
                        "source_id": source,
                        "target_id": target,
                        "how": how,
                        "actor": actor,
                        "at": now,
                    },
                    "created_at": now,
                    "fanned_out": False,
                }
            ],
        )
