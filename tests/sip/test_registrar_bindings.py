"""RFC 3261 §10.3 binding rules (pure) and the binding stores (in memory, real Redis)."""

from __future__ import annotations

import asyncio
import time
import uuid

from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis

from callcenter.sip.bindings import (
    Binding,
    ContactSpec,
    InMemoryBindingStore,
    RedisBindingStore,
    RegisterPolicy,
    RegisterRequest,
    apply_register,
    by_preference,
    normalize_uri,
)

POLICY = RegisterPolicy(default_expires=3600, min_expires=60, max_expires=7200, max_contacts=3)
NOW = 1_800_000_000.0


def req(
    *contacts: ContactSpec,
    expires: int | None = None,
    call_id: str = "c1",
    cseq: int = 1,
    wildcard: bool = False,
    source: tuple[str, int] = ("192.0.2.1", 5062),
) -> RegisterRequest:
    return RegisterRequest(
        aor="1001",
        contacts=tuple(contacts),
        wildcard=wildcard,
        header_expires=expires,
        call_id=call_id,
        cseq=cseq,
        source=source,
        transport="udp",
    )


A = ContactSpec("sip:1001@10.0.0.5:5062")
B = ContactSpec("sip:1001@10.0.0.6:5062", q=0.5)


def test_add_two_contacts_with_default_and_param_expiry() -> None:
    out = apply_register([], req(A, ContactSpec(B.uri, expires=120, q=0.5)), NOW, POLICY)
    assert out.status == 200 and out.changed
    assert [(b.uri, b.expires_in(NOW)) for b in out.bindings] == [(A.uri, 3600), (B.uri, 120)]
    assert out.bindings[0].source == ("192.0.2.1", 5062)
    assert out.bindings[0].transport == "udp"


def test_expires_header_applies_and_max_is_clamped() -> None:
    out = apply_register([], req(A, expires=999_999), NOW, POLICY)
    assert out.bindings[0].expires_in(NOW) == 7200


def test_too_brief_interval_is_423_and_changes_nothing() -> None:
    current = apply_register([], req(A), NOW, POLICY).bindings
    out = apply_register(current, req(B, expires=30, cseq=2), NOW, POLICY)
    assert out.status == 423
    assert not out.changed
    assert out.bindings == current


def test_refresh_replaces_binding_and_keeps_first_registration_time() -> None:
    first = apply_register([], req(A), NOW, POLICY).bindings
    later = apply_register(first, req(A, expires=600, cseq=2), NOW + 100, POLICY)
    assert len(later.bindings) == 1
    assert later.bindings[0].expires_at == NOW + 700
    assert later.bindings[0].registered_at == NOW
    assert later.bindings[0].cseq == 2


def test_out_of_order_cseq_same_call_id_is_rejected() -> None:
    first = apply_register([], req(A, cseq=5), NOW, POLICY).bindings
    assert apply_register(first, req(A, cseq=5), NOW, POLICY).status == 400
    assert apply_register(first, req(A, cseq=4), NOW, POLICY).status == 400
    # a new Call-ID (phone rebooted) may use any CSeq
    assert apply_register(first, req(A, cseq=1, call_id="c2"), NOW, POLICY).status == 200


def test_same_contact_twice_in_one_request_is_not_an_ordering_error() -> None:
    out = apply_register([], req(A, ContactSpec(A.uri, expires=300)), NOW, POLICY)
    assert out.status == 200
    assert [b.expires_in(NOW) for b in out.bindings] == [300]


def test_expires_zero_removes_only_that_contact() -> None:
    both = apply_register([], req(A, B), NOW, POLICY).bindings
    out = apply_register(both, req(ContactSpec(A.uri, expires=0), cseq=2), NOW, POLICY)
    assert [b.uri for b in out.bindings] == [B.uri]


def test_wildcard_removes_all_and_needs_expires_zero() -> None:
    both = apply_register([], req(A, B), NOW, POLICY).bindings
    assert apply_register(both, req(wildcard=True, expires=60, cseq=2), NOW, POLICY).status == 400
    assert apply_register(both, req(wildcard=True, expires=0, cseq=1), NOW, POLICY).status == 400
    out = apply_register(both, req(wildcard=True, expires=0, cseq=2), NOW, POLICY)
    assert out.status == 200 and out.bindings == [] and out.changed


def test_query_lists_without_change_and_drops_expired() -> None:
    cur = apply_register([], req(A, ContactSpec(B.uri, expires=60)), NOW, POLICY).bindings
    out = apply_register(cur, req(cseq=2), NOW + 61, POLICY)
    assert out.status == 200
    assert [b.uri for b in out.bindings] == [A.uri]


def test_max_contacts_is_403() -> None:
    contacts = [ContactSpec(f"sip:1001@10.0.0.{i}") for i in range(4)]
    assert apply_register([], req(*contacts), NOW, POLICY).status == 403


def test_uri_comparison_and_instance_matching() -> None:
    assert normalize_uri("sip:1001@EXAMPLE.com;Transport=UDP") == normalize_uri(
        "SIP:1001@example.com;transport=udp"
    )
    assert normalize_uri("sip:User@h") != normalize_uri("sip:user@h")
    assert normalize_uri("sip:u@h") != normalize_uri("sip:u@h:5060")
    inst = "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"
    first = apply_register(
        [], req(ContactSpec("sip:1001@10.0.0.5", instance=inst, reg_id=1)), NOW, POLICY
    ).bindings
    # same device re-registers from a new address: replaces, does not add
    moved = apply_register(
        first, req(ContactSpec("sip:1001@10.9.9.9", instance=inst, reg_id=1), cseq=2), NOW, POLICY
    ).bindings
    assert [b.uri for b in moved] == ["sip:1001@10.9.9.9"]


def test_preference_order_by_q_then_recency() -> None:
    b1 = Binding("1001", "sip:a", NOW + 10, "c", 1, ("1.1.1.1", 1), "udp", q=0.5, registered_at=NOW)
    b2 = Binding("1001", "sip:b", NOW + 10, "c", 1, ("1.1.1.1", 1), "udp", registered_at=NOW - 5)
    b3 = Binding("1001", "sip:c", NOW + 10, "c", 1, ("1.1.1.1", 1), "udp", registered_at=NOW)
    assert [b.uri for b in by_preference([b1, b2, b3])] == ["sip:c", "sip:b", "sip:a"]


# --------------------------------------------------------------------------- stores


async def _exercise_store(store, now: float = NOW) -> None:
    def write(new):
        return lambda cur: (new, len(cur))

    binding = apply_register([], req(A, ContactSpec(B.uri, expires=60)), now, POLICY).bindings
    assert await store.update("1001", now, write(binding)) == 0
    assert await store.update("1001", now, lambda cur: (None, len(cur))) == 2
    got = await store.get("1001", now)
    assert got == binding  # round trip keeps every field (source tuple, q, times)
    assert await store.aors(now) == ["1001"]
    assert await store.purge_expired(now + 61) == []  # A still alive
    assert [b.uri for b in await store.get("1001", now + 61)] == [A.uri]
    assert await store.purge_expired(now + 3601) == ["1001"]
    assert await store.get("1001", now + 3601) == []
    assert await store.purge_expired(now + 3602) == []  # reported once only
    await store.update("1002", now, write(binding))
    await store.update("1002", now, write([]))
    assert await store.get("1002", now) == []
    assert await store.aors(now) == []


async def test_in_memory_store() -> None:
    await _exercise_store(InMemoryBindingStore())


async def test_redis_store_against_real_redis(redis_client) -> None:
    prefix = f"test:sipc:{uuid.uuid4().hex}:"
    store = RedisBindingStore(redis_client, prefix=prefix)
    try:
        await _exercise_store(store, time.time())
        # the AOR key carries a TTL so Redis forgets abandoned bindings by itself
        now = time.time()
        binding = apply_register([], req(A, expires=120), now, POLICY).bindings
        await store.update("1003", now, lambda cur: (binding, None))
        ttl = await redis_client.pttl(prefix + "aor:1003")
        assert 0 < ttl <= 122_000
    finally:
        keys = [k async for k in redis_client.scan_iter(match=prefix + "*")]
        if keys:
            await redis_client.delete(*keys)


async def test_redis_store_concurrent_updates_do_not_lose_writes(redis_client) -> None:
    prefix = f"test:sipc:{uuid.uuid4().hex}:"
    # two clients = two processes' views; each adds its own contact concurrently
    other = Redis(host="127.0.0.1", port=6379, db=0)
    stores = [RedisBindingStore(redis_client, prefix), RedisBindingStore(other, prefix)]
    try:

        async def add(i: int) -> None:
            spec = ContactSpec(f"sip:1001@10.1.0.{i}")
            await stores[i % 2].update(
                "1001",
                NOW,
                lambda cur: (
                    apply_register(
                        cur, req(spec, call_id=f"c{i}"), NOW, RegisterPolicy(max_contacts=50)
                    ).bindings,
                    None,
                ),
            )

        await asyncio.gather(*(add(i) for i in range(20)))
        got = await stores[0].get("1001", NOW)
        assert sorted(b.uri for b in got) == sorted(f"sip:1001@10.1.0.{i}" for i in range(20))
    finally:
        keys = [k async for k in redis_client.scan_iter(match=prefix + "*")]
        if keys:
            await redis_client.delete(*keys)
        await other.aclose()


_URIS = ["sip:1001@10.0.0.1", "sip:1001@10.0.0.2", "SIP:1001@10.0.0.1", "sip:1001@10.0.0.3:5070"]
_step = st.tuples(
    st.lists(
        st.tuples(st.sampled_from(_URIS), st.sampled_from([None, 0, 30, 60, 300, 99_999])),
        max_size=4,
    ),
    st.sampled_from([None, 0, 30, 120, 5000]),  # Expires header
    st.sampled_from(["c1", "c2"]),
    st.integers(min_value=1, max_value=6),  # CSeq
    st.booleans(),  # wildcard
    st.integers(min_value=0, max_value=400),  # seconds since the previous step
)


@given(st.lists(_step, max_size=12))
def test_binding_rules_hold_for_any_request_sequence(steps) -> None:
    current: list[Binding] = []
    now = NOW
    for contacts, header_exp, call_id, cseq, wildcard, dt in steps:
        now += dt
        specs = tuple(ContactSpec(u, expires=e) for u, e in contacts)
        r = req(*specs, expires=header_exp, call_id=call_id, cseq=cseq, wildcard=wildcard)
        out = apply_register(current, r, now, POLICY)
        live = [b for b in current if b.expires_at > now]
        assert out.status in (200, 400, 403, 423)
        if out.status != 200:
            assert out.bindings == live  # refused requests change nothing
            current = live
            continue
        keys = [normalize_uri(b.uri) for b in out.bindings]
        assert len(keys) == len(set(keys))  # one binding per contact
        assert len(out.bindings) <= POLICY.max_contacts
        assert all(now < b.expires_at <= now + POLICY.max_expires for b in out.bindings)
        if wildcard:
            assert out.bindings == []
        for spec in specs:
            exp = spec.expires if spec.expires is not None else header_exp
            last = [s for s in specs if normalize_uri(s.uri) == normalize_uri(spec.uri)][-1]
            if last is spec and exp == 0:
                assert normalize_uri(spec.uri) not in keys  # Expires 0 removes
        current = out.bindings
