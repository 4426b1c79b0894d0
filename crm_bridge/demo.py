"""Demo data so the demo IVR can greet callers by name and look up orders.

Idempotent: fixed customer ids and order numbers, upserted.
"""

from __future__ import annotations

from crm_bridge.store import CrmStore

GRACE = "c-demo-grace-hopper"
ALAN = "c-demo-alan-turing"
ADA = "c-demo-ada-lovelace"


async def seed_demo(store: CrmStore) -> list[str]:
    """Add the demo customers and orders; returns their customer ids."""
    await store.upsert_customer(
        "Grace Hopper",
        customer_id=GRACE,
        tier="vip",
        language="en",
        attributes={"account": "100001"},
        contact_points=[("phone", "+441632960001"), ("email", "grace@example.com")],
    )
    await store.upsert_case(GRACE, "ORD-1001", "shipped", subject="Compiler manuals, 3 volumes")
    await store.upsert_customer(
        "Alan Turing",
        customer_id=ALAN,
        tier="standard",
        language="en",
        attributes={"account": "100002"},
        contact_points=[("phone", "+441632960002")],
    )
    await store.upsert_case(ALAN, "ORD-1002", "processing", subject="Bombe spare rotors")
    await store.upsert_customer(
        "Ada Lovelace",
        customer_id=ADA,
        tier="gold",
        language="en",
        contact_points=[("email", "ada@example.com"), ("web", "web-ada")],
    )
    await store.upsert_case(ADA, "CASE-2001", "open", kind="case", subject="Engine notes missing")
    return [GRACE, ALAN, ADA]
