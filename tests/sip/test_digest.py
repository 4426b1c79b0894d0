"""Digest authentication (RFC 7616) — pure unit tests, with the RFC's own example vectors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.sip.digest import (
    AuthParseError,
    Credentials,
    DigestVerifier,
    NonceCounter,
    Verdict,
    answer_challenge,
    ha1,
    parse_authorization,
    parse_challenges,
)

# RFC 7616 §3.9.1
RFC_REALM = "http-auth@example.org"
RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC_MD5 = "8ca523f5e9506fed4657c9700eebdbec"
RFC_SHA256 = "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"


def _rfc_challenge(alg: str) -> str:
    return (
        f'Digest realm="{RFC_REALM}", qop="auth, auth-int", algorithm={alg}, '
        f'nonce="{RFC_NONCE}", opaque="{RFC_OPAQUE}"'
    )


@pytest.mark.parametrize(("alg", "expected"), [("MD5", RFC_MD5), ("SHA-256", RFC_SHA256)])
def test_rfc7616_example_vectors(alg: str, expected: str) -> None:
    value = answer_challenge(
        _rfc_challenge(alg),
        "GET",
        "/dir/index.html",
        "Mufasa",
        "Circle of Life",
        cnonce=RFC_CNONCE,
    )
    parsed = parse_authorization(value)
    assert parsed.response == expected
    assert parsed.qop == "auth"
    assert parsed.nc == 1
    assert parsed.opaque == RFC_OPAQUE
    assert parsed.algorithm == alg


def test_rfc_vectors_with_stored_ha1_instead_of_password() -> None:
    creds = Credentials.from_password("Mufasa", RFC_REALM, "Circle of Life")
    both = [_rfc_challenge("MD5"), _rfc_challenge("SHA-256")]
    value = answer_challenge(both, "GET", "/dir/index.html", "Mufasa", creds, cnonce=RFC_CNONCE)
    assert parse_authorization(value).response == RFC_SHA256  # strongest offered wins


def test_ha1_matches_definition() -> None:
    import hashlib

    assert ha1("1001", "cc", "demo-1001", "MD5") == hashlib.md5(b"1001:cc:demo-1001").hexdigest()
    assert ha1("1001", "cc", "demo-1001", "sha-256") == hashlib.sha256(b"1001:cc:demo-1001").hexdigest()
    with pytest.raises(ValueError):
        ha1("a", "b", "c", "SHA-1")


def test_parse_quoted_commas_and_escapes() -> None:
    value = (
        'Digest username="we\\"ird, user", realm="r, with comma",nonce="n", '
        'uri="sip:a@b;x=1,2", response="ABCDEF0123", algorithm=sha-256, qop=auth, '
        'nc=0000000a, cnonce="c"'
    )
    p = parse_authorization(value)
    assert p.username == 'we"ird, user'
    assert p.realm == "r, with comma"
    assert p.uri == "sip:a@b;x=1,2"
    assert p.response == "abcdef0123"
    assert p.algorithm == "SHA-256"
    assert p.nc == 10


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Digest",
        'Digest username="a", realm="r"',  # missing fields
        'Digest username="a, realm="r", nonce="n", uri="u", response="00"',  # unterminated
        'Digest username="a", username="b", realm="r", nonce="n", uri="u", response="00"',
        "Basic dXNlcjpwYXNz",
        'Digest username="a", realm="r", nonce="n", uri="u", response="zz"',
        'Digest username="a", realm="r", nonce="n", uri="u", response="00", qop=auth',
        'Digest username="a", realm="r", nonce="n", uri="u", response="00", qop=auth, '
        'nc=1, cnonce="c"',  # nc must be 8 hex digits
        'Digest username="a" realm="r"',
        'Digest username=, realm="r"',
        "Digest =x",
    ],
)
def test_malformed_authorization_raises_parse_error(value: str) -> None:
    with pytest.raises(AuthParseError) as err:
        parse_authorization(value)
    assert err.value.status == 400


@given(st.text(max_size=200))
def test_parser_never_crashes_on_garbage(value: str) -> None:
    try:
        parse_authorization(value)
    except AuthParseError as exc:
        assert exc.reason


def test_several_challenges_on_one_line() -> None:
    line = (
        'Digest realm="a", nonce="1", algorithm=SHA-256, qop="auth", '
        'Digest realm="a", nonce="1", algorithm=MD5, qop="auth", stale=true'
    )
    chs = parse_challenges(line)
    assert [c.algorithm for c in chs] == ["SHA-256", "MD5"]
    assert chs[1].stale and not chs[0].stale
    assert chs[0].qop == ("auth",)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


USERS = {"1001": Credentials.from_password("1001", "cc", "demo-1001")}


def _respond(
    v: DigestVerifier,
    password: str,
    user: str = "1001",
    alg: str = "SHA-256",
    nc: int = 1,
    challenge: str | None = None,
):
    if challenge is None:
        challenge = next(c for c in v.challenges() if f"algorithm={alg}" in c)
    value = answer_challenge(challenge, "REGISTER", "sip:cc", user, password, nc=nc)
    return parse_authorization(value)


def test_challenges_offer_sha256_first_then_md5_with_qop_auth() -> None:
    v = DigestVerifier("cc", b"k" * 32)
    chs = [parse_challenges(c)[0] for c in v.challenges()]
    assert [c.algorithm for c in chs] == ["SHA-256", "MD5"]
    assert all(c.qop == ("auth",) and c.realm == "cc" and not c.stale for c in chs)
    assert chs[0].nonce == chs[1].nonce
    assert all(parse_challenges(c)[0].stale for c in v.challenges(stale=True))


@pytest.mark.parametrize("alg", ["SHA-256", "MD5"])
def test_verify_right_and_wrong_password(alg: str) -> None:
    v = DigestVerifier("cc", b"k" * 32)
    assert v.verify(_respond(v, "demo-1001", alg=alg), "REGISTER", USERS).verdict is Verdict.OK
    bad = v.verify(_respond(v, "nope", alg=alg), "REGISTER", USERS)
    assert bad.verdict is Verdict.FAILED
    unknown = v.verify(_respond(v, "demo-1001", user="9999", alg=alg), "REGISTER", USERS)
    assert unknown.verdict is Verdict.FAILED
    assert unknown.reason == bad.reason  # no enumeration through the verdict either


def test_method_is_part_of_the_response() -> None:
    v = DigestVerifier("cc", b"k" * 32)
    assert v.verify(_respond(v, "demo-1001"), "INVITE", USERS).verdict is Verdict.FAILED


def test_expired_nonce_with_right_password_is_stale_with_wrong_password_failed() -> None:
    clock = Clock()
    v = DigestVerifier("cc", b"k" * 32, nonce_ttl=30, clock=clock)
    good = _respond(v, "demo-1001")
    bad = _respond(v, "wrong")
    clock.now += 31
    assert v.verify(good, "REGISTER", USERS).verdict is Verdict.STALE
    assert v.verify(bad, "REGISTER", USERS).verdict is Verdict.FAILED


def test_nonce_from_another_secret_is_stale_and_shared_secret_verifies() -> None:
    a = DigestVerifier("cc", b"a" * 32)
    b = DigestVerifier("cc", b"b" * 32)
    a2 = DigestVerifier("cc", b"a" * 32)  # another process with the same secret
    resp = _respond(a, "demo-1001")
    assert b.verify(resp, "REGISTER", USERS).verdict is Verdict.STALE
    assert a2.verify(resp, "REGISTER", USERS).verdict is Verdict.OK


def test_nonce_count_replay_is_refused_and_increasing_nc_accepted() -> None:
    v = DigestVerifier("cc", b"k" * 32)
    ch = v.challenges()[0]
    first = _respond(v, "demo-1001", challenge=ch, nc=1)
    assert v.verify(first, "REGISTER", USERS).verdict is Verdict.OK
    assert v.verify(first, "REGISTER", USERS).verdict is Verdict.STALE  # replay
    second = _respond(v, "demo-1001", challenge=ch, nc=2)
    assert v.verify(second, "REGISTER", USERS).verdict is Verdict.OK


def test_unoffered_algorithm_or_realm_is_unusable() -> None:
    v = DigestVerifier("cc", b"k" * 32, algorithms=("SHA-256",))
    nonce = parse_challenges(v.challenges()[0])[0].nonce
    md5 = answer_challenge(
        f'Digest realm="cc", nonce="{nonce}", algorithm=MD5, qop="auth"',
        "REGISTER",
        "sip:cc",
        "1001",
        "demo-1001",
    )
    assert v.verify(parse_authorization(md5), "REGISTER", USERS).verdict is Verdict.UNUSABLE
    other = answer_challenge(
        f'Digest realm="other", nonce="{nonce}", algorithm=SHA-256, qop="auth"',
        "REGISTER",
        "sip:cc",
        "1001",
        "demo-1001",
    )
    assert v.verify(parse_authorization(other), "REGISTER", USERS).verdict is Verdict.UNUSABLE


def test_nonce_counter_memory_is_bounded_and_forgetting_refuses_replays() -> None:
    c = NonceCounter(max_entries=3)
    for i in range(3):
        assert c.accept(f"n{i}", 1, issued=float(i), expired_before=-1.0)
    assert c.accept("n3", 1, issued=3.0, expired_before=-1.0)  # evicts n0, floor = 0.0
    assert len(c) == 3
    assert not c.accept("n0", 1, issued=0.0, expired_before=-1.0)  # forgotten → refused
    assert not c.accept("n1", 1, issued=1.0, expired_before=-1.0)  # tracked replay → refused
    assert c.accept("n1", 2, issued=1.0, expired_before=-1.0)
    # expired entries are pruned first, so fresh nonces do not raise the floor
    c2 = NonceCounter(max_entries=2)
    assert c2.accept("old", 1, issued=1.0, expired_before=0.0)
    assert c2.accept("mid", 1, issued=5.0, expired_before=0.0)
    assert c2.accept("new", 1, issued=9.0, expired_before=2.0)  # prunes "old" (expired)
    assert c2.accept("mid", 2, issued=5.0, expired_before=2.0)  # still tracked


def test_client_answers_userhash_sess_and_no_qop() -> None:
    import hashlib

    ch = 'Digest realm="r", nonce="n", algorithm=MD5-sess, qop="auth", userhash=true'
    p = parse_authorization(answer_challenge(ch, "INVITE", "sip:x", "u", "pw", cnonce="c"))
    h1 = hashlib.md5(b"u:r:pw").hexdigest()
    h1 = hashlib.md5(f"{h1}:n:c".encode()).hexdigest()
    h2 = hashlib.md5(b"INVITE:sip:x").hexdigest()
    assert p.response == hashlib.md5(f"{h1}:n:00000001:c:auth:{h2}".encode()).hexdigest()
    assert p.username == hashlib.md5(b"u:r").hexdigest()
    legacy = parse_authorization(answer_challenge('Digest realm="r", nonce="n"', "BYE", "sip:x", "u", "pw"))
    expected = hashlib.md5(
        f"{hashlib.md5(b'u:r:pw').hexdigest()}:n:{hashlib.md5(b'BYE:sip:x').hexdigest()}".encode()
    ).hexdigest()
    assert legacy.response == expected and legacy.qop is None


def test_client_refuses_unanswerable_challenges() -> None:
    with pytest.raises(AuthParseError):
        answer_challenge('Digest realm="r", nonce="n", algorithm=SHA-1', "A", "u", "u", "p")
    with pytest.raises(AuthParseError):
        answer_challenge('Basic realm="r"', "A", "u", "u", "p")
