"""Registrar behaviour on parsed SIP messages (no sockets; the SIPp test covers the wire)."""

from __future__ import annotations

import logging
import time
import uuid

import pytest
from redis.asyncio import Redis
from sip_helpers import challenge_shape

from callcenter.sip.bindings import RedisBindingStore, RegisterPolicy
from callcenter.sip.digest import Credentials, answer_challenge, parse_challenges
from callcenter.sip.message import SipMessage
from callcenter.sip.registrar import Registrar, credentials_from_mapping
from callcenter.throttle import LockoutPolicy
from tests.support import require_redis

REALM = "callcenter.test"
SRC = ("127.0.0.1", 40000)


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_registrar(clock: Clock | None = None, **kw) -> Registrar:
    creds = {u: Credentials.from_password(u, REALM, f"demo-{u}") for u in ("1001", "1002")}
    clock = clock or Clock()
    return Registrar(
        REALM,
        creds,
        secret=b"s" * 32,
        policy=kw.pop("policy", RegisterPolicy(min_expires=60, max_expires=3600)),
        lockout=kw.pop("lockout", LockoutPolicy(max_failures=3, window=60, lockout=300)),
        clock=clock,
        monotonic=clock,
        **kw,
    )


def register(
    user: str = "1001",
    *,
    cseq: int = 1,
    call_id: str = "reg-1",
    contact: str | None = "<sip:{u}@127.0.0.1:5099>",
    expires: int | None = 300,
    auth: str | None = None,
    to_user: str | None = None,
    extra: list[tuple[str, str]] = (),
) -> SipMessage:
    headers = [
        ("Via", f"SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-{call_id}-{cseq};rport"),
        ("Max-Forwards", "70"),
        ("From", f"<sip:{user}@{REALM}>;tag=ft{call_id}"),
        ("To", f"<sip:{to_user or user}@{REALM}>"),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} REGISTER"),
    ]
    if contact is not None:
        headers.append(("Contact", contact.format(u=user)))
    if expires is not None:
        headers.append(("Expires", str(expires)))
    if auth is not None:
        headers.append(("Authorization", auth))
    headers.extend(extra)
    msg = SipMessage.request("REGISTER", f"sip:{REALM}", headers)
    return SipMessage.parse(msg.to_bytes())  # through the real parser


async def authed(reg: Registrar, user: str = "1001", password: str | None = None, **kw) -> SipMessage:
    """Challenge → answer, as a phone does."""
    cseq = kw.pop("cseq", 1)
    first = await reg.handle_register(register(user, cseq=cseq, **kw), SRC, "udp")
    assert first.status == 401
    auth = answer_challenge(
        first.headers.get_all("WWW-Authenticate"),
        "REGISTER",
        f"sip:{REALM}",
        user,
        password or f"demo-{user}",
    )
    return await reg.handle_register(register(user, cseq=cseq + 1, auth=auth, **kw), SRC, "udp")


async def test_challenge_offers_sha256_then_md5() -> None:
    reg = make_registrar()
    resp = await reg.handle_register(register(), SRC, "udp")
    assert resp.status == 401
    chs = [parse_challenges(v)[0] for v in resp.headers.get_all("WWW-Authenticate")]
    assert [c.algorithm for c in chs] == ["SHA-256", "MD5"]
    assert all(c.realm == REALM and c.qop == ("auth",) for c in chs)
    assert resp.to.tag  # final response carries a To tag
    assert resp.headers.get("Call-ID") == "reg-1"


async def test_register_lists_bindings_and_fires_on_change() -> None:
    reg = make_registrar()
    changes: list[tuple[str, bool]] = []
    reg.on_change(lambda u, r: changes.append((u, r)))
    ok = await authed(reg, contact="<sip:{u}@127.0.0.1:5099>;q=0.7")
    assert ok.status == 200
    assert ok.headers.get_all("Contact") == ["<sip:1001@127.0.0.1:5099>;expires=300;q=0.7"]
    assert ok.headers.get("Date")
    assert changes == [("1001", True)]
    contacts = await reg.contacts("1001")
    assert [(b.uri, b.source, b.transport) for b in contacts] == [("sip:1001@127.0.0.1:5099", SRC, "udp")]
    # a second phone for the same agent: both listed; no second on_change
    ok2 = await authed(reg, call_id="reg-2", contact="<sip:{u}@127.0.0.1:6000>")
    assert len(ok2.headers.get_all("Contact")) == 2
    assert changes == [("1001", True)]
    assert await reg.is_registered("1001")
    assert not await reg.is_registered("1002")


async def test_md5_only_client_is_accepted() -> None:
    reg = make_registrar()
    first = await reg.handle_register(register(), SRC, "udp")
    md5 = [v for v in first.headers.get_all("WWW-Authenticate") if "MD5" in v]
    auth = answer_challenge(md5, "REGISTER", f"sip:{REALM}", "1001", "demo-1001")
    assert "algorithm=MD5" in auth
    ok = await reg.handle_register(register(cseq=2, auth=auth), SRC, "udp")
    assert ok.status == 200


async def test_unknown_user_is_indistinguishable_from_wrong_password() -> None:
    reg = make_registrar(lockout=LockoutPolicy(max_failures=100))
    wrong = await authed(reg, "1001", password="guess")
    unknown = await authed(reg, "7777", password="guess")
    assert wrong.status == unknown.status == 401
    assert challenge_shape(wrong) == challenge_shape(unknown)
    no_creds = await reg.handle_register(register(), SRC, "udp")
    assert challenge_shape(no_creds) == challenge_shape(wrong)  # same as a first challenge, not stale


async def test_repeated_bad_passwords_lock_the_source_out(caplog) -> None:
    caplog.set_level(logging.WARNING)
    reg = make_registrar()
    for _ in range(3):
        assert (await authed(reg, "1001", password="guess")).status == 401
    locked = await reg.handle_register(register(), SRC, "udp")
    assert locked.status == 403
    assert "WWW-Authenticate" not in locked.headers
    # even the right password is not looked at while locked
    first = await reg.handle_register(register(), ("127.0.0.2", 5000), "udp")
    auth = answer_challenge(
        first.headers.get_all("WWW-Authenticate"), "REGISTER", f"sip:{REALM}", "1001", "demo-1001"
    )
    assert (await reg.handle_register(register(cseq=9, auth=auth), SRC, "udp")).status == 403
    # other sources are unaffected
    assert (await reg.handle_register(register(cseq=9, auth=auth), ("127.0.0.2", 5000), "udp")).status == 200
    assert any(getattr(r, "event", "") == "sip.auth.lockout" for r in caplog.records)


async def test_stale_nonce_gets_stale_true() -> None:
    clock = Clock()
    reg = make_registrar(clock)
    first = await reg.handle_register(register(), SRC, "udp")
    auth = answer_challenge(
        first.headers.get_all("WWW-Authenticate"), "REGISTER", f"sip:{REALM}", "1001", "demo-1001"
    )
    clock.now += 301
    resp = await reg.handle_register(register(cseq=2, auth=auth), SRC, "udp")
    assert resp.status == 401
    assert all(parse_challenges(v)[0].stale for v in resp.headers.get_all("WWW-Authenticate"))


async def test_expires_zero_and_wildcard_unregister_fire_on_change() -> None:
    reg = make_registrar()
    changes: list[tuple[str, bool]] = []

    async def listener(user: str, registered: bool) -> None:
        changes.append((user, registered))

    reg.on_change(listener)
    assert (await authed(reg)).status == 200
    gone = await authed(reg, cseq=3, expires=0)
    assert gone.status == 200 and gone.headers.get_all("Contact") == []
    assert await reg.contacts("1001") == []
    assert (await authed(reg, cseq=5)).status == 200
    wc = await authed(reg, cseq=7, contact="*", expires=0)
    assert wc.status == 200
    assert changes == [("1001", True), ("1001", False), ("1001", True), ("1001", False)]


async def test_short_expiry_is_423_with_min_expires() -> None:
    reg = make_registrar()
    resp = await authed(reg, expires=10)
    assert resp.status == 423
    assert resp.headers.get("Min-Expires") == "60"
    assert await reg.contacts("1001") == []


async def test_cannot_register_someone_elses_aor() -> None:
    reg = make_registrar()
    resp = await authed(reg, "1001", to_user="1002")
    assert resp.status == 403
    assert await reg.contacts("1002") == []


@pytest.mark.parametrize(
    "auth",
    [
        'Digest username="1001", realm="callcenter.test", nonce="x',  # unterminated
        "Digest username=1001 realm=x",
        'Digest username="1001", realm="callcenter.test"',
    ],
)
async def test_malformed_authorization_is_400(auth: str) -> None:
    reg = make_registrar()
    resp = await reg.handle_register(register(auth=auth), SRC, "udp")
    assert resp.status == 400


async def test_bad_contact_params_are_400_after_auth() -> None:
    reg = make_registrar()
    assert (await authed(reg, contact="<sip:{u}@127.0.0.1>;expires=soon")).status == 400
    assert (await authed(reg, call_id="r2", contact="<sip:{u}@127.0.0.1>;q=7")).status == 400
    assert (await authed(reg, call_id="r3", expires=None, contact="<sip:{u}@127.0.0.1>")).status == 200


async def test_expiry_sweep_reports_unregistered() -> None:
    clock = Clock()
    reg = make_registrar(clock)
    changes: list[tuple[str, bool]] = []
    reg.on_change(lambda u, r: changes.append((u, r)))
    assert (await authed(reg, expires=60)).status == 200
    clock.now += 30
    assert await reg.expire() == []
    clock.now += 31
    assert await reg.expire() == ["1001"]
    assert changes == [("1001", True), ("1001", False)]


async def test_a_failing_listener_does_not_break_registration() -> None:
    reg = make_registrar()

    def broken(user: str, registered: bool) -> None:
        raise RuntimeError("boom")

    reg.on_change(broken)
    assert (await authed(reg)).status == 200


def test_credentials_from_config_mapping() -> None:
    good = Credentials.from_password("1001", REALM, "demo-1001")
    table = credentials_from_mapping(
        {"1001": {"ha1_md5": good.ha1_md5.upper(), "ha1_sha256": good.ha1_sha256}}
    )
    assert table["1001"] == good
    with pytest.raises(ValueError, match=r"agents.yaml: 1002.ha1_sha256"):
        credentials_from_mapping(
            {"1002": {"ha1_md5": good.ha1_md5, "ha1_sha256": "xyz"}}, source="agents.yaml"
        )


async def test_clients_known_to_fail_on_sha256_get_md5_only() -> None:
    reg = make_registrar()
    legacy = await reg.handle_register(
        register(extra=[("User-Agent", "baresip v1.0.0 (x86_64/linux)")]), SRC, "udp"
    )
    algs = [parse_challenges(v)[0].algorithm for v in legacy.headers.get_all("WWW-Authenticate")]
    assert algs == ["MD5"]
    modern = await reg.handle_register(register(extra=[("User-Agent", "Linphone/5.2")]), SRC, "udp")
    assert len(modern.headers.get_all("WWW-Authenticate")) == 2
    strict = make_registrar(md5_only_user_agents=())
    resp = await strict.handle_register(register(extra=[("User-Agent", "baresip v1.0.0")]), SRC, "udp")
    assert len(resp.headers.get_all("WWW-Authenticate")) == 2


async def test_registrar_over_real_redis_store_and_store_failure_is_500() -> None:
    client = await require_redis()
    prefix = f"test:sipc:{uuid.uuid4().hex}:"
    try:
        reg = make_registrar(clock=Clock(time.time()), store=RedisBindingStore(client, prefix))
        assert (await authed(reg)).status == 200
        # a second registrar (another process) sharing secret and Redis sees the binding
        other = make_registrar(clock=Clock(time.time()), store=RedisBindingStore(client, prefix))
        assert [b.uri for b in await other.contacts("1001")] == ["sip:1001@127.0.0.1:5099"]
    finally:
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    # the store goes away: the phone gets 500 + Retry-After, not silence
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    broken = make_registrar(store=RedisBindingStore(dead, prefix))
    resp = await authed(broken)
    assert resp.status == 500
    assert resp.headers.get("Retry-After") == "5"
    await dead.aclose()
