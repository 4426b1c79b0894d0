"""Customers: create/update, contact points, notes, orders/cases, and the
identity operations — link a contact to a customer, merge two customers."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from crm_bridge.addresses import normalize
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
    NotFound,
    StoreCore,
)


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
