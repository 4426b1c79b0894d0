"""Identity resolution: provisional customers, links, merges, and the audit trail."""

from __future__ import annotations

import pytest
from crm_events import abandoned_call, answered_call, email_contact, ev

from crm_bridge.store import ContactPointConflict, CrmStore, NotFound


async def test_unknown_caller_gets_a_provisional_that_merges_keeping_both_histories(
    store: CrmStore,
) -> None:
    # An unknown number calls twice: one provisional customer, found by phone the 2nd time.
    await store.apply_events(answered_call("u1", ani="+447700900111", t0=100))
    await store.apply_events(abandoned_call("u2", ani="07700 900111", t0=200))
    r1, r2 = await store.interaction("u1"), await store.interaction("u2")
    assert r1 is not None and r2 is not None
    prov = r1["customer_id"]
    assert r1["match_method"] == "provisional" and r2["match_method"] == "phone"
    assert r2["customer_id"] == prov
    prov_row = await store.get_customer(prov)
    assert prov_row is not None and prov_row["provisional"]

    # A known customer with her own history, contacted by email.
    dora = await store.upsert_customer("Dora", tier="gold", contact_points=[("email", "dora@example.com")])
    await store.apply_events(email_contact("d1", sender="dora@example.com", t0=300))
    await store.add_note(dora, "prefers email", author="a1")
    await store.add_note(prov, "called about invoice", author="a2", contact_id="u1")

    # On the third call the agent recognises her and links the contact.
    await store.apply_events(answered_call("u3", ani="+447700900111", t0=400)[:11])
    survivor = await store.link_contact("u3", dora, how="agent", actor="a1")
    assert survivor == dora

    history = await store.recent_interactions(dora, 10)
    assert [h["id"] for h in history] == ["u3", "d1", "u2", "u1"]  # both histories, one customer
    assert await store.recent_interactions(prov, 10) == history  # the old id follows the merge
    merged = await store.customer_by_address("phone", "+447700900111")
    assert merged is not None and merged["id"] == dora and not merged["provisional"]
    assert {(p["kind"], p["value"]) for p in merged["contact_points"]} == {
        ("email", "dora@example.com"),
        ("phone", "+447700900111"),
    }
    tomb = await store.get_customer(prov)
    assert tomb is not None and tomb["id"] == dora
    # each interaction remembers who it was first matched to
    r1 = await store.interaction("u1")
    assert r1 is not None and r1["original_customer_id"] == prov and r1["customer_id"] == dora
    r3 = await store.interaction("u3")
    assert r3 is not None and r3["match_method"] == "link:agent"
    pop = await store.screen_pop("u3")
    assert pop is not None and {n["text"] for n in pop["notes"]} == {"prefers email", "called about invoice"}

    # How each match was made is on record.
    methods = [(h["method"], h["contact_id"]) for h in await store.identity_history(dora)]
    assert ("email", "d1") in methods
    assert ("merge:link:agent", None) in methods
    assert ("link:agent", "u3") in methods
    prov_methods = [h["method"] for h in await store.identity_history(prov)]
    assert prov_methods[:2] == ["provisional", "phone"]

    # Later events of a linked contact keep the link (identity is sticky).
    await store.apply_events(answered_call("u3", ani="+447700900111", t0=400)[11:])
    r3 = await store.interaction("u3")
    assert r3 is not None and r3["customer_id"] == dora and r3["status"] == "ended"


async def test_contact_points_are_unique_across_customers(store: CrmStore) -> None:
    a = await store.upsert_customer("A", contact_points=[("phone", "+441632960101")])
    b = await store.upsert_customer("B")
    with pytest.raises(ContactPointConflict):
        await store.add_contact_point(b, "phone", "01632 960101")
    with pytest.raises(ValueError):
        await store.add_contact_point(b, "email", "not-an-email")
    assert await store.add_contact_point(b, "email", "B@Example.COM") == "b@example.com"
    owner = await store.customer_by_address("phone", "+441632960101")
    assert owner is not None and owner["id"] == a
    with pytest.raises(NotFound):
        await store.add_contact_point("nobody", "phone", "+441632960102")


async def test_claiming_a_provisional_point_merges_it(store: CrmStore) -> None:
    await store.apply_events(email_contact("e1", sender="new@example.net"))
    rec = await store.interaction("e1")
    assert rec is not None and rec["match_method"] == "provisional"
    cid = await store.upsert_customer("Newton", contact_points=[("email", "NEW@example.net")])
    assert [r["id"] for r in await store.recent_interactions(cid, 5)] == ["e1"]


async def test_given_customer_id_and_merge_chains(store: CrmStore) -> None:
    a = await store.upsert_customer("A")
    b = await store.upsert_customer("B")
    c = await store.upsert_customer("C")
    await store.merge_customers(a, b)
    await store.merge_customers(b, c)
    # callcenter already knew the customer (e.g. an authenticated web session)
    await store.apply_events(
        [
            ev(
                "ContactArrived",
                "w1",
                1,
                channel="web",
                from_addr="sess-1",
                customer_id=a,
                attributes={"web_id": "user-42"},
            )
        ]
    )
    rec = await store.interaction("w1")
    assert rec is not None
    assert rec["customer_id"] == c and rec["match_method"] == "given"  # followed a → b → c
    assert rec["web_id"] == "user-42"
    # an unknown given id falls back to the address
    await store.apply_events(
        [
            ev(
                "ContactArrived",
                "w2",
                2,
                channel="web",
                from_addr="sess-2",
                customer_id="c-does-not-exist",
                attributes={"web_id": "user-43"},
            )
        ]
    )
    rec = await store.interaction("w2")
    assert rec is not None and rec["match_method"] == "provisional"
    assert (await store.customer_by_address("web", "user-43"))["id"] == rec["customer_id"]  # type: ignore[index]


async def test_anonymous_caller_has_no_customer(store: CrmStore) -> None:
    await store.apply_events([ev("ContactArrived", "anon", 1, channel="voice", ani="anonymous")])
    rec = await store.interaction("anon")
    assert rec is not None and rec["customer_id"] is None and rec["match_method"] == "none"
    assert "bad_ani" in rec["flags"]
