"""Customer search and the desk's contact-point editor, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from crm_events import answered_call

from crm_bridge.customers import InvalidContactPoints
from crm_bridge.store import ContactPointConflict, CrmStore, NotFound


async def _dora_and_alan(store: CrmStore) -> tuple[str, str]:
    dora = await store.upsert_customer(
        "Dora Ödön", tier="gold", attributes={"account": "100777"},
        contact_points=[("phone", "+447700900111"), ("email", "dora@example.com")],
    )  # fmt: skip
    alan = await store.upsert_customer("Alan 100% Smith", contact_points=[("phone", "+441632960002")])
    return dora, alan


async def test_search_by_name_phone_email_and_account(store: CrmStore) -> None:
    dora, alan = await _dora_and_alan(store)
    # An unknown caller's provisional customer is not a search result.
    await store.apply_events(answered_call("u1", ani="+447700900999", t0=100))

    async def ids(q: str) -> list[str]:
        return [c["id"] for c in await store.search_customers(q)]

    assert await ids("dora") == [dora]  # part of the name, any case
    assert await ids("Ödön") == [dora]  # (SQLite folds the case of ASCII letters only)
    assert await ids("07700 900111") == [dora]  # national format, normalized
    assert await ids("900111") == [dora]  # a run of the number's digits
    assert await ids("DORA@example") == [dora]  # part of the email
    assert await ids("100777") == [dora]  # the account number
    assert await ids("100%") == [alan]  # LIKE wildcards are literal
    assert await ids("_") == []
    assert await ids("900999") == []  # provisional: not offered
    assert await ids("   ") == []
    found = (await store.search_customers("alan"))[0]
    assert found["contact_points"] == [{"kind": "phone", "value": "+441632960002", "how": "admin"}]


async def test_contact_points_replaced_validated_and_conflicts_refused(store: CrmStore) -> None:
    dora, alan = await _dora_and_alan(store)

    held = await store.set_contact_points(
        dora, [("phone", "07700 900111"), ("phone", "+44 20 7946 0958"), ("email", "Dora.New@Example.org")],
        actor="1002",
    )  # fmt: skip
    assert held == [("phone", "+447700900111"), ("phone", "+442079460958"), ("email", "dora.new@example.org")]
    customer = await store.get_customer(dora)
    assert customer is not None
    assert {(p["kind"], p["value"]) for p in customer["contact_points"]} == set(held)  # old email removed
    assert (await store.customer_by_address("email", "dora@example.com")) is None

    # Invalid values: every one named, nothing written.
    with pytest.raises(InvalidContactPoints) as bad:
        await store.set_contact_points(dora, [("phone", "12"), ("email", "not-an-address"), ("fax", "+4420")])
    assert [p["value"] for p in bad.value.problems] == ["12", "not-an-address", "+4420"]
    assert "not a valid phone number" in str(bad.value)

    # Alan's number on Dora: refused, naming the number; Dora's points are as they were.
    with pytest.raises(ContactPointConflict, match=r"\+441632960002 already belongs to another customer"):
        await store.set_contact_points(dora, [("phone", "+441632960002")])
    again = await store.get_customer(dora)
    assert again is not None and {(p["kind"], p["value"]) for p in again["contact_points"]} == set(held)
    owner = await store.customer_by_address("phone", "+441632960002")
    assert owner is not None and owner["id"] == alan

    with pytest.raises(NotFound):
        await store.set_contact_points("c-nobody", [])


async def test_a_provisional_callers_number_added_merges_their_history(store: CrmStore) -> None:
    dora, _ = await _dora_and_alan(store)
    await store.apply_events(answered_call("u1", ani="+447700900555", t0=100))
    record = await store.interaction("u1")
    assert record is not None and record["match_method"] == "provisional"

    await store.set_contact_points(dora, [("phone", "+447700900111"), ("phone", "+447700900555")])
    assert [r["id"] for r in await store.recent_interactions(dora, 5)] == ["u1"]
    moved = await store.interaction("u1")
    assert moved is not None and moved["customer_id"] == dora
