"""Identity resolution: which customer is this contact?

Match by normalized contact point (phone/email/web/fax); an unknown caller or
sender gets a *provisional* customer whose id is derived from the contact point
(so two nodes, or a replayed batch, create the same one rather than two), and
which merges into a real customer later. Every decision is written to
``identity_matches`` with the method used.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from crm_bridge.db import upsert
from crm_bridge.schema import contact_points, customers, identity_matches

_NAMESPACE = uuid.UUID("5b1d8f1e-4c1a-4a8e-9d1e-c2b0cafe0001")
MAX_MERGE_HOPS = 16


def provisional_id(kind: str, value: str) -> str:
    return "p-" + uuid.uuid5(_NAMESPACE, f"{kind}:{value}").hex


def new_customer_id() -> str:
    return "c-" + uuid.uuid4().hex


@dataclass(slots=True)
class Match:
    customer_id: str | None
    method: str  # given | phone | email | web | fax | provisional | none
    detail: str


async def live_ids(conn: AsyncConnection, ids: Iterable[str]) -> dict[str, str]:
    """Map each *existing* customer id to the live customer it was merged into (or itself)."""
    ids = {i for i in ids if i}
    merged: dict[str, str | None] = {}  # id -> merged_into; absent = no such customer
    frontier = set(ids)
    for _ in range(MAX_MERGE_HOPS):
        ask = [i for i in frontier if i not in merged]
        if not ask:
            break
        rows = (
            await conn.execute(select(customers.c.id, customers.c.merged_into).where(customers.c.id.in_(ask)))
        ).all()
        merged.update({r.id: r.merged_into for r in rows})
        frontier = {r.merged_into for r in rows if r.merged_into}
    result: dict[str, str] = {}
    for start in ids:
        if start not in merged:
            continue
        cur = start
        for _ in range(MAX_MERGE_HOPS):
            nxt = merged.get(cur)
            if not nxt or nxt not in merged:
                break
            cur = nxt
        result[start] = cur
    return result


async def lookup_points(conn: AsyncConnection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Owners of contact points. One ``kind = ? AND value IN (…)`` query per kind:
    a row-value ``(kind, value) IN (…)`` list is not matched to the primary-key
    index by PostgreSQL and would scan the whole table."""
    by_kind: dict[str, list[str]] = {}
    for kind, value in dict.fromkeys(keys):
        by_kind.setdefault(kind, []).append(value)
    out: dict[tuple[str, str], str] = {}
    for kind, values in sorted(by_kind.items()):
        for i in range(0, len(values), 500):
            rows = await conn.execute(
                select(contact_points.c.value, contact_points.c.customer_id).where(
                    contact_points.c.kind == kind, contact_points.c.value.in_(values[i : i + 500])
                )
            )
            out.update({(kind, r.value): r.customer_id for r in rows})
    return out


async def resolve(
    engine: AsyncEngine,
    conn: AsyncConnection,
    wanted: Mapping[str, tuple[str, list[tuple[str, str]]]],
    now: float,
) -> dict[str, Match]:
    """Resolve many contacts at once.

    ``wanted`` maps contact_id → (given_customer_id, identity keys). Creates
    provisional customers as needed, within the caller's transaction.
    """
    all_keys = [k for _given, keys in wanted.values() for k in keys]
    owners = await lookup_points(conn, all_keys)
    given_ids = [g for g, _keys in wanted.values() if g]
    live = await live_ids(conn, [*given_ids, *owners.values()])

    matches: dict[str, Match] = {}
    to_create: dict[str, list[tuple[str, str]]] = {}
    for contact_id, (given, keys) in wanted.items():
        if given and given in live:
            matches[contact_id] = Match(live[given], "given", given)
            continue
        hit = next((k for k in keys if k in owners and owners[k] in live), None)
        if hit is not None:
            matches[contact_id] = Match(live[owners[hit]], hit[0], hit[1])
        elif keys:
            pid = provisional_id(*keys[0])
            to_create.setdefault(pid, [])
            for k in keys:
                if k not in to_create[pid]:
                    to_create[pid].append(k)
            matches[contact_id] = Match(pid, "provisional", f"{keys[0][0]}:{keys[0][1]}")
        else:
            matches[contact_id] = Match(None, "none", "")

    if to_create:
        await conn.execute(
            upsert(engine, customers).on_conflict_do_nothing(index_elements=["id"]),
            [
                {
                    "id": pid,
                    "name": "",
                    "tier": "standard",
                    "language": "",
                    "attributes": {},
                    "provisional": True,
                    "merged_into": None,
                    "created_at": now,
                    "updated_at": now,
                }
                for pid in sorted(to_create)
            ],
        )
        # The provisional may exist already and have been merged since.
        chased = await live_ids(conn, to_create)
        points = {}
        for pid, keys in to_create.items():
            for k in keys:
                if k not in owners:
                    points.setdefault(k, chased.get(pid, pid))
        if points:
            await conn.execute(
                upsert(engine, contact_points).on_conflict_do_nothing(index_elements=["kind", "value"]),
                [
                    {"kind": k, "value": v, "customer_id": cid, "how": "provisional", "created_at": now}
                    for (k, v), cid in sorted(points.items())
                ],
            )
        # Another writer may have claimed a point first: the table decides.
        final = await lookup_points(conn, points)
        final_live = await live_ids(conn, final.values())
        for m in matches.values():
            if m.method == "provisional" and m.customer_id:
                kind, _, value = m.detail.partition(":")
                owner = final.get((kind, value))
                if owner is not None and final_live.get(owner, owner) != m.customer_id:
                    m.customer_id = final_live.get(owner, owner)
                    m.method = kind
                    m.detail = value
                else:
                    m.customer_id = chased.get(m.customer_id, m.customer_id)

    audit = [
        {
            "customer_id": m.customer_id,
            "contact_id": cid,
            "method": m.method,
            "detail": m.detail,
            "source_customer_id": None,
            "actor": "system",
            "at": now,
        }
        for cid, m in matches.items()
        if m.customer_id
    ]
    if audit:
        await conn.execute(identity_matches.insert(), audit)
    return matches


def customer_row_to_dict(row: Any, points: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    data = dict(row._mapping)
    data["contact_points"] = points or []
    return data
