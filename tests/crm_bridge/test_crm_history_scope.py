"""A customer's recent interactions limited to those one agent handled (a privacy policy's
``history: own``) are selected in the query, so ``n`` counts that agent's own."""

from __future__ import annotations

from crm_events import answered_call

from crm_bridge.store import CrmStore


async def test_recent_interactions_handled_by_one_agent(store: CrmStore) -> None:
    # answered_call ends with agent a2 connected after a transfer: the record's agent is a2.
    await store.apply_events(answered_call("u1", ani="+447700900111", t0=100))
    await store.apply_events(answered_call("u2", ani="+447700900111", t0=200))
    customer = await store.customer_by_address("phone", "+447700900111")
    assert customer is not None
    everyone = await store.recent_interactions(customer["id"], 5)
    assert [r["id"] for r in everyone] == ["u2", "u1"]
    assert [r["id"] for r in await store.recent_interactions(customer["id"], 1, handled_by="a2")] == ["u2"]
    assert await store.recent_interactions(customer["id"], 5, handled_by="a1") == []
