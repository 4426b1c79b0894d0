"""The questions callcenter asks: customer by address or account, recent
interactions, interaction search, the screen-pop bundle, order status, timeline, identity audit."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from crm_bridge.addresses import KINDS, normalize
from crm_bridge.identity import live_ids
from crm_bridge.record_types import InteractionRecord, InteractionSummary
from crm_bridge.schema import (
    contact_points,
    customer_cases,
    customer_notes,
    customers,
    identity_matches,
    interaction_events,
    interactions,
)
from crm_bridge.store_core import (
    SUMMARY_COLUMNS,
    StoreCore,
)


class QueriesMixin(StoreCore):
    """Read-only questions; each a few indexed queries."""

    # -- questions -------------------------------------------------------------

    async def _customer(self, conn: AsyncConnection, customer_id: str) -> dict[str, Any] | None:
        row = (await conn.execute(select(customers).where(customers.c.id == customer_id))).one_or_none()
        if row is not None and row.merged_into:  # rare: follow the merge chain
            live = (await live_ids(conn, [customer_id])).get(customer_id)
            row = (await conn.execute(select(customers).where(customers.c.id == live))).one_or_none()
        if row is None:
            return None
        pts = await conn.execute(
            select(contact_points.c.kind, contact_points.c.value, contact_points.c.how)
            .where(contact_points.c.customer_id == row.id)
            .order_by(contact_points.c.kind, contact_points.c.value)
        )
        data = dict(row._mapping)
        data["contact_points"] = [dict(p._mapping) for p in pts]
        return data

    async def get_customer(self, customer_id: str) -> dict[str, Any] | None:
        """The customer (following merges to the survivor) with its contact points."""
        async with self.engine.connect() as conn:
            return await self._customer(conn, customer_id)

    def _point(self, kind: str, value: str) -> tuple[str, str] | None:
        """(kind, normalized value) of a contact point (``ani`` = phone), None if unusable."""
        kind = {"ani": "phone", "web_id": "web"}.get(kind, kind)
        if kind not in KINDS:
            raise ValueError(f"unknown contact point kind {kind!r}")
        norm = normalize(kind, value, self.default_region)
        return None if norm is None else (kind, norm)

    async def _owner(self, conn: AsyncConnection, point: tuple[str, str]) -> dict[str, Any] | None:
        kind, norm = point
        owner = (
            await conn.execute(
                select(contact_points.c.customer_id).where(
                    contact_points.c.kind == kind, contact_points.c.value == norm
                )
            )
        ).scalar_one_or_none()
        return await self._customer(conn, owner) if owner else None

    async def customer_by_address(self, kind: str, value: str) -> dict[str, Any] | None:
        """Customer owning a contact point (kind: phone|email|web|fax; ``ani`` = phone)."""
        point = self._point(kind, value)
        if point is None:
            return None
        async with self.engine.connect() as conn:
            return await self._owner(conn, point)

    async def customer_with_recent(
        self, kind: str, value: str, n: int
    ) -> tuple[dict[str, Any] | None, list[InteractionSummary]]:
        """``customer_by_address`` and that customer's last ``n`` interactions in one pooled
        connection: the screen-pop lookup every new contact makes (one checkout and one
        read transaction instead of two)."""
        point = self._point(kind, value)
        if point is None:
            return None, []
        async with self.engine.connect() as conn:
            customer = await self._owner(conn, point)
            if customer is None:
                return None, []
            return customer, await self._recent(conn, customer["id"], n)

    async def customer_by_account(self, account: str) -> dict[str, Any] | None:
        """Customer whose ``attributes["account"]`` equals ``account`` (IVR "enter
        your account number"). Live customers only; not indexed — fine for
        thousands of customers, add an expression index for millions."""
        account = (account or "").strip()
        if not account:
            return None
        async with self.engine.connect() as conn:
            cid = (
                await conn.execute(
                    select(customers.c.id)
                    .where(
                        customers.c.attributes["account"].as_string() == account,
                        customers.c.merged_into.is_(None),
                    )
                    .limit(1)
                )
            ).scalar_one_or_none()
            return await self._customer(conn, cid) if cid else None

    async def interaction(self, contact_id: str) -> InteractionRecord | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(interactions).where(interactions.c.id == contact_id))
            ).one_or_none()
            return cast(InteractionRecord, dict(row._mapping)) if row else None

    async def timeline(self, contact_id: str) -> list[dict[str, Any]]:
        """The append-only event timeline of one contact, in canonical order."""
        async with self.engine.connect() as conn:
            res = await conn.execute(
                select(interaction_events)
                .where(interaction_events.c.contact_id == contact_id)
                .order_by(interaction_events.c.ts, interaction_events.c.event_id)
            )
            return [dict(r._mapping) for r in res]

    async def search_interactions(
        self,
        *,
        channel: str = "",
        customer_id: str = "",
        agent_id: str = "",
        queue: str = "",
        outcome: str = "",
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
    ) -> list[InteractionSummary]:
        """Interactions matching every given filter (empty = any), newest first; ``since``
        and ``until`` bound ``sort_ts`` (until exclusive); a merged customer's id finds the
        interactions of the customer it was merged into."""
        q = select(*[interactions.c[c] for c in SUMMARY_COLUMNS], interactions.c.customer_id)
        for column, value in (("channel", channel), ("agent_id", agent_id), ("queue", queue),
                              ("outcome", outcome)):  # fmt: skip
            if value:
                q = q.where(interactions.c[column] == value)
        if since is not None:
            q = q.where(interactions.c.sort_ts >= since)
        if until is not None:
            q = q.where(interactions.c.sort_ts < until)
        async with self.engine.connect() as conn:
            if customer_id:
                live = (await live_ids(conn, [customer_id])).get(customer_id)
                if live is None:
                    return []
                q = q.where(interactions.c.customer_id == live)
            rows = await conn.execute(q.order_by(interactions.c.sort_ts.desc()).limit(limit))
            return [cast(InteractionSummary, dict(r._mapping)) for r in rows]

    async def _recent(
        self,
        conn: AsyncConnection,
        customer_id: str,
        n: int,
        exclude: str | None = None,
        handled_by: str | None = None,
    ) -> list[InteractionSummary]:
        cols = [interactions.c[c] for c in SUMMARY_COLUMNS]
        q = (
            select(*cols)
            .where(interactions.c.customer_id == customer_id)
            .order_by(interactions.c.sort_ts.desc())
            .limit(n + (1 if exclude else 0))
        )
        if handled_by is not None:
            q = q.where(interactions.c.agent_id == handled_by)
        rows = [cast(InteractionSummary, dict(r._mapping)) for r in await conn.execute(q)]
        return [r for r in rows if r["id"] != exclude][:n]

    async def recent_interactions(
        self, customer_id: str, n: int = 5, *, handled_by: str | None = None
    ) -> list[InteractionSummary]:
        """The last ``n`` interactions of a customer across all channels (newest first);
        with ``handled_by``, only those that agent handled (a privacy policy's "own")."""
        async with self.engine.connect() as conn:
            live = (await live_ids(conn, [customer_id])).get(customer_id)
            return await self._recent(conn, live, n, handled_by=handled_by) if live else []

    async def screen_pop(self, contact_id: str, recent_n: int = 5) -> dict[str, Any] | None:
        """Everything an agent desktop shows when the contact is offered."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(interactions).where(interactions.c.id == contact_id))
            ).one_or_none()
            if row is None:
                return None
            rec = dict(row._mapping)
            customer = await self._customer(conn, rec["customer_id"]) if rec["customer_id"] else None
            recent: list[InteractionSummary] = []
            cases: list[dict[str, Any]] = []
            notes: list[dict[str, Any]] = []
            if customer is not None:
                cid = customer["id"]
                recent = await self._recent(conn, cid, recent_n, exclude=contact_id)
                cases = [
                    dict(r._mapping)
                    for r in await conn.execute(
                        select(
                            customer_cases.c.number,
                            customer_cases.c.kind,
                            customer_cases.c.status,
                            customer_cases.c.subject,
                            customer_cases.c.updated_at,
                        )
                        .where(customer_cases.c.customer_id == cid, customer_cases.c.is_open)
                        .order_by(customer_cases.c.updated_at.desc())
                        .limit(10)
                    )
                ]
                notes = [
                    dict(r._mapping)
                    for r in await conn.execute(
                        select(
                            customer_notes.c.text,
                            customer_notes.c.author,
                            customer_notes.c.created_at,
                        )
                        .where(customer_notes.c.customer_id == cid)
                        .order_by(customer_notes.c.created_at.desc())
                        .limit(5)
                    )
                ]
        return {
            "contact_id": contact_id,
            "contact": {
                k: rec[k]
                for k in (
                    "channel",
                    "direction",
                    "ani",
                    "dnis",
                    "service",
                    "from_addr",
                    "to_addr",
                    "web_id",
                    "subject",
                    "queue",
                    "agent_id",
                    "arrived_at",
                    "language",
                    "status",
                )
            },
            "customer": customer,
            "tier": customer["tier"] if customer else None,
            "match": {"method": rec["match_method"], "detail": rec["match_detail"]},
            "ivr": {
                "flow": rec["flow"],
                "path": rec["ivr_path"],
                "inputs": rec["ivr_inputs"],
                "outcome": (rec["attributes"] or {}).get("ivr_outcome", ""),
            },
            "recent": recent,
            "open_cases": cases,
            "notes": notes,
        }

    async def order_status(self, order_number: str) -> dict[str, Any] | None:
        """Status of an order/case by its number, for IVR self-service."""
        number = (order_number or "").strip().upper()
        if not number:
            return None
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        customer_cases.c.number,
                        customer_cases.c.kind,
                        customer_cases.c.status,
                        customer_cases.c.subject,
                        customer_cases.c.is_open,
                        customer_cases.c.customer_id,
                        customer_cases.c.updated_at,
                        customers.c.name.label("customer_name"),
                    )
                    .join(customers, customers.c.id == customer_cases.c.customer_id)
                    .where(customer_cases.c.number == number)
                )
            ).one_or_none()
            return dict(row._mapping) if row else None

    async def identity_history(self, customer_id: str) -> list[dict[str, Any]]:
        """Audit trail: every match, link and merge that touched this customer."""
        async with self.engine.connect() as conn:
            res = await conn.execute(
                select(identity_matches)
                .where(
                    or_(
                        identity_matches.c.customer_id == customer_id,
                        identity_matches.c.source_customer_id == customer_id,
                    )
                )
                .order_by(identity_matches.c.id)
            )
            return [dict(r._mapping) for r in res]
