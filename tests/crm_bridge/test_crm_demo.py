"""The demo seeder the demo IVR relies on."""

from __future__ import annotations

from crm_bridge.demo import seed_demo
from crm_bridge.store import CrmStore


async def test_seed_demo_is_idempotent_and_answers_the_ivr(store: CrmStore) -> None:
    ids = await seed_demo(store)
    assert await seed_demo(store) == ids
    grace = await store.customer_by_address("ani", "+441632960001")
    alan = await store.customer_by_address("ani", "+441632960002")
    ada = await store.customer_by_address("email", "Ada@Example.com")
    assert grace is not None and (grace["name"], grace["tier"]) == ("Grace Hopper", "vip")
    assert alan is not None and (alan["name"], alan["tier"]) == ("Alan Turing", "standard")
    assert ada is not None and ada["name"] == "Ada Lovelace"
    order = await store.order_status("ORD-1001")
    assert order is not None and order["status"] == "shipped" and order["customer_id"] == grace["id"]


async def test_customer_by_account(store: CrmStore) -> None:
    await seed_demo(store)
    grace = await store.customer_by_account(" 100001 ")
    assert grace is not None and grace["name"] == "Grace Hopper"
    assert await store.customer_by_account("NOPE-1") is None
    assert await store.customer_by_account("") is None
