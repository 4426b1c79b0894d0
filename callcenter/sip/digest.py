"""HTTP digest authentication for SIP (RFC 7616, RFC 2617, RFC 3261 §22) — pure, no I/O.

Server side: build challenges (SHA-256 first, then MD5: RFC 7616 §3.7 says a server lists
its preferred algorithm first), verify ``Authorization`` headers against *stored HA1 hashes*
(never plain passwords), stateless nonces, ``stale=true`` and nonce-count replay protection.

Client side: :func:`answer_challenge` computes an ``Authorization`` value for a received
``WWW-Authenticate`` / ``Proxy-Authenticate`` challenge (used by the UA for outbound calls).

Why stateless nonces: a nonce is ``issue-time || random || MAC(secret, issue-time || random
|| realm)`` (keyed BLAKE2b), so every process that shares the secret can verify a nonce without a shared
table, and expiry needs no timer. Only the nonce-count (replay) table is per process; it is
bounded, and what it forgets is made safe by refusing (with ``stale=true``) any untracked
nonce issued before the newest forgotten one.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import os
import re
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = [
    "ALGORITHMS",
    "AuthParseError",
    "Challenge",
    "Credentials",
    "DigestResponse",
    "DigestVerifier",
    "NonceCounter",
    "Verdict",
    "VerifyResult",
    "answer_challenge",
    "format_challenge",
    "ha1",
    "parse_authorization",
    "parse_challenges",
]

# Algorithms this module can hash. The server offers SHA-256 and MD5 (stored HA1s exist for
# both); the client also answers SHA-512-256 and the -sess variants if a far end asks.
_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda data: hashlib.md5(data).hexdigest(),
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
}
if "sha512_256" in hashlib.algorithms_available:  # OpenSSL build dependent
    _HASHES["SHA-512-256"] = lambda data: hashlib.new("sha512_256", data).hexdigest()

ALGORITHMS: tuple[str, ...] = ("SHA-256", "MD5")
"""What the server offers, in order of preference."""

_HA1_LEN = {"MD5": 32, "SHA-256": 64, "SHA-512-256": 64}


class AuthParseError(ValueError):
    """A malformed Authorization/WWW-Authenticate header: answer 400, do not crash."""

    status = 400

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _h(algorithm: str, text: str) -> str:
    return _HASHES[algorithm](text.encode("utf-8"))


def ha1(username: str, realm: str, password: str, algorithm: str = "SHA-256") -> str:
    """HA1 = H(username:realm:password), the value stored in config instead of a password."""
    algorithm = algorithm.upper()
    if algorithm not in _HASHES:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    return _h(algorithm, f"{username}:{realm}:{password}")


@dataclass(frozen=True, slots=True)
class Credentials:
    """One user's stored secrets: HA1 per algorithm (hex, lower case)."""

    ha1_md5: str
    ha1_sha256: str

    @classmethod
    def from_password(cls, username: str, realm: str, password: str) -> Credentials:
        return cls(ha1(username, realm, password, "MD5"), ha1(username, realm, password, "SHA-256"))

    def ha1_for(self, algorithm: str) -> str | None:
        if algorithm == "MD5":
            return self.ha1_md5.lower()
        if algorithm == "SHA-256":
            return self.ha1_sha256.lower()
        return None


# --------------------------------------------------------------------------- header grammar
# credentials = auth-scheme 1*SP #auth-param ; auth-param = token BWS "=" BWS (token / quoted)
# (RFC 7235 §2.1). Several challenges may share one header line, separated by commas.

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
# One step of the grammar, anchored at the current position: optional list commas, then
# either ``name = value`` (an auth-param) or a bare token (the next challenge's scheme).
_PARAM_RE = re.compile(
    rf"[ \t\r\n,]*(?:(?P<name>{_TOKEN})[ \t\r\n]*=[ \t\r\n]*"
    rf"(?:(?P<q>{_QUOTED})|(?P<t>{_TOKEN}))|(?P<scheme>{_TOKEN})(?=[ \t\r\n]|$))[ \t\r\n]*",
    re.DOTALL,
)
_UNQUOTE_RE = re.compile(r"\\(.)", re.DOTALL)


def _parse_auth_list(value: str) -> list[tuple[str, dict[str, str]]]:
    """Parse one or more ``scheme param=value, ...`` items into (scheme, params)."""
    items: list[tuple[str, dict[str, str]]] = []
    params: dict[str, str] | None = None
    value = value.rstrip(" \t\r\n,")  # trailing empty list elements are allowed
    pos, end = 0, len(value)
    while pos < end:
        m = _PARAM_RE.match(value, pos)
        if m is None:
            raise AuthParseError(f"syntax error at offset {pos}")
        if m.group("scheme") is not None:
            if params is not None and not params:
                raise AuthParseError(f"auth-scheme without parameters at offset {pos}")
            params = {}
            items.append((m.group("scheme"), params))
        else:
            if params is None:
                raise AuthParseError("auth-param before auth-scheme")
            key = m.group("name").lower()
            if key in params:
                raise AuthParseError(f"duplicate parameter {key!r}")
            quoted = m.group("q")
            if quoted is None:
                params[key] = m.group("t")
            else:
                inner = quoted[1:-1]
                params[key] = _UNQUOTE_RE.sub(r"\1", inner) if "\\" in inner else inner
        # after a param, the next thing must be a comma (or the end)
        pos = m.end()
        if m.group("scheme") is None and pos < end and value[pos - 1] != "," and value[pos] != ",":
            raise AuthParseError(f"expected ',' at offset {pos}")
    if not items or any(not p for _, p in items):
        raise AuthParseError("empty header or auth-scheme without parameters")
    return items


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --------------------------------------------------------------------------- server side


@dataclass(frozen=True, slots=True)
class DigestResponse:
    """A parsed ``Authorization: Digest ...`` (what the client sent)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: int = 0
    cnonce: str | None = None
    opaque: str | None = None


_NC_LEN = 8


def parse_authorization(value: str) -> DigestResponse:
    """Parse an Authorization header value; raises :class:`AuthParseError` (→ 400)."""
    items = _parse_auth_list(value)
    if len(items) != 1:
        raise AuthParseError("more than one credential in one header")
    scheme, p = items[0]
    if scheme.lower() != "digest":
        raise AuthParseError(f"unsupported auth-scheme {scheme!r}")
    missing = [k for k in ("username", "realm", "nonce", "uri", "response") if k not in p]
    if missing:
        raise AuthParseError(f"missing {', '.join(missing)}")
    qop = p.get("qop")
    nc = 0
    if qop is not None:
        if "nc" not in p or "cnonce" not in p:
            raise AuthParseError("qop without nc/cnonce")
        raw_nc = p["nc"]
        if len(raw_nc) != _NC_LEN or any(c not in "0123456789abcdefABCDEF" for c in raw_nc):
            raise AuthParseError("nc must be 8 hex digits")
        nc = int(raw_nc, 16)
    response = p["response"].lower()
    if not response or any(c not in "0123456789abcdef" for c in response):
        raise AuthParseError("response must be hex")
    return DigestResponse(
        username=p["username"],
        realm=p["realm"],
        nonce=p["nonce"],
        uri=p["uri"],
        response=response,
        algorithm=p.get("algorithm", "MD5").upper(),
        qop=qop.lower() if qop is not None else None,
        nc=nc,
        cnonce=p.get("cnonce"),
        opaque=p.get("opaque"),
    )


def format_challenge(
    realm: str, nonce: str, algorithm: str, *, stale: bool = False, opaque: str | None = None
) -> str:
    """A ``WWW-Authenticate`` value offering qop=auth."""
    parts = [f"Digest realm={_quote(realm)}", f"nonce={_quote(nonce)}"]
    if opaque is not None:
        parts.append(f"opaque={_quote(opaque)}")
    parts.append(f"algorithm={algorithm}")
    parts.append('qop="auth"')
    if stale:
        parts.append("stale=true")
    return ", ".join(parts)


class NonceCounter:
    """Highest nonce-count seen per nonce, bounded to ``max_entries``.

    When full, the oldest-tracked nonce is forgotten and its issue time becomes a floor:
    any *untracked* nonce issued at or before the floor is refused as stale, so forgetting
    never lets a replay through — it only costs an honest client one extra round trip.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self._max = max_entries
        self._seen: OrderedDict[str, tuple[int, float]] = OrderedDict()  # nonce -> (nc, issued)
        self._floor = float("-inf")

    def __len__(self) -> int:
        return len(self._seen)

    def accept(self, nonce: str, nc: int, issued: float, expired_before: float) -> bool:
        """Record ``nc`` for ``nonce``; False if it is a replay (not strictly increasing)."""
        entry = self._seen.get(nonce)
        if entry is None:
            if issued <= self._floor:
                return False
            if len(self._seen) >= self._max:
                self._prune(expired_before)
            while len(self._seen) >= self._max:
                _, (_, old_issued) = self._seen.popitem(last=False)
                self._floor = max(self._floor, old_issued)
            self._seen[nonce] = (nc, issued)
            return True
        if nc <= entry[0]:
            return False
        self._seen[nonce] = (nc, entry[1])
        return True

    def _prune(self, expired_before: float) -> None:
        # Expired nonces are refused by their timestamp anyway: dropping them is free.
        for key in [k for k, (_, issued) in self._seen.items() if issued < expired_before]:
            del self._seen[key]


class Verdict(enum.Enum):
    OK = "ok"
    STALE = "stale"  # right password, but nonce expired / unknown / reused: re-challenge stale=true
    FAILED = "failed"  # wrong password or unknown user (indistinguishable on purpose)
    UNUSABLE = "unusable"  # not for us (other realm, algorithm or qop we did not offer)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    verdict: Verdict
    username: str
    reason: str


_NONCE_STRUCT = struct.Struct(">d8s")
_NONCE_MAC_LEN = 16


class DigestVerifier:
    """Issues challenges and verifies responses for one realm.

    ``secret`` must be shared by every process that should accept the others' nonces; a
    random per-process secret only means clients re-authenticate (``stale=true``) after a
    restart. ``clock`` is wall time (nonces travel between processes).
    """

    def __init__(
        self,
        realm: str,
        secret: bytes | None = None,
        *,
        algorithms: tuple[str, ...] = ALGORITHMS,
        nonce_ttl: float = 300.0,
        max_tracked_nonces: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for alg in algorithms:
            if alg not in ("MD5", "SHA-256"):
                raise ValueError(f"server cannot offer {alg!r}: stored HA1 exists for MD5/SHA-256")
        if not algorithms:
            raise ValueError("at least one algorithm must be offered")
        self.realm = realm
        self.algorithms = algorithms
        self.nonce_ttl = nonce_ttl
        self._secret = secret if secret is not None else os.urandom(32)
        if not 16 <= len(self._secret) <= 64:  # BLAKE2b key size limits
            raise ValueError("digest secret must be 16..64 bytes")
        self._realm_bytes = realm.encode("utf-8")
        self._clock = clock
        self._counter = NonceCounter(max_tracked_nonces)

    # -- nonces
    def _mac(self, body: bytes) -> bytes:
        # Keyed BLAKE2b is a proper MAC (RFC 7693 §2.5) and one C call, unlike hmac.new.
        msg = body + self._realm_bytes
        return hashlib.blake2b(msg, key=self._secret, digest_size=_NONCE_MAC_LEN).digest()

    def new_nonce(self) -> str:
        body = _NONCE_STRUCT.pack(self._clock(), os.urandom(8))
        return base64.urlsafe_b64encode(body + self._mac(body)).rstrip(b"=").decode("ascii")

    def nonce_issued(self, nonce: str) -> float | None:
        """Issue time of a nonce we minted (MAC checked), or None for a foreign/forged one."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (ValueError, TypeError):
            return None
        if len(raw) != _NONCE_STRUCT.size + _NONCE_MAC_LEN:
            return None
        body, mac = raw[: _NONCE_STRUCT.size], raw[_NONCE_STRUCT.size :]
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        issued, _ = _NONCE_STRUCT.unpack(body)
        return float(issued)

    # -- challenges
    def challenges(self, *, stale: bool = False, algorithms: tuple[str, ...] = ()) -> list[str]:
        """``WWW-Authenticate`` values, one per offered algorithm, sharing one nonce.

        ``algorithms`` narrows the offer for one response (e.g. MD5 only for a client known
        to fail on SHA-256); it must be a subset of what this verifier accepts.
        """
        offer = [a for a in self.algorithms if a in algorithms] if algorithms else self.algorithms
        nonce = self.new_nonce()
        return [format_challenge(self.realm, nonce, alg, stale=stale) for alg in offer]

    # -- verification
    def _dummy_ha1(self, username: str, algorithm: str) -> str:
        # Deterministic per username so timing and work do not depend on whether it exists.
        mac = hashlib.blake2b(
            b"no-such-user:" + username.encode("utf-8"), key=self._secret, digest_size=32
        )
        return mac.hexdigest()[: _HA1_LEN[algorithm]]

    def verify(
        self,
        auth: DigestResponse,
        method: str,
        lookup: Callable[[str], Credentials | None] | Mapping[str, Credentials],
    ) -> VerifyResult:
        """Check one response. Unknown users do the same hashing as known ones and fail alike."""
        if auth.realm != self.realm:
            return VerifyResult(Verdict.UNUSABLE, auth.username, "other realm")
        algorithm = auth.algorithm
        if algorithm not in self.algorithms:
            return VerifyResult(Verdict.UNUSABLE, auth.username, f"algorithm {algorithm} not offered")
        if auth.qop != "auth":
            return VerifyResult(Verdict.UNUSABLE, auth.username, "qop=auth required")
        creds = lookup.get(auth.username) if isinstance(lookup, Mapping) else lookup(auth.username)
        dummy = self._dummy_ha1(auth.username, algorithm)  # always computed: equal work
        stored = creds.ha1_for(algorithm) if creds is not None else None
        h1 = stored if stored else dummy
        h2 = _h(algorithm, f"{method}:{auth.uri}")
        expected = _h(algorithm, f"{h1}:{auth.nonce}:{auth.nc:08x}:{auth.cnonce}:{auth.qop}:{h2}")
        match = hmac.compare_digest(expected, auth.response)
        if not match or stored is None:
            return VerifyResult(Verdict.FAILED, auth.username, "bad credentials")
        # The response is right. Is the nonce ours, fresh and not replayed?
        now = self._clock()
        issued = self.nonce_issued(auth.nonce)
        if issued is None:
            return VerifyResult(Verdict.STALE, auth.username, "nonce not issued here")
        expired_before = now - self.nonce_ttl
        if issued < expired_before or issued > now + 5:
            return VerifyResult(Verdict.STALE, auth.username, "nonce expired")
        if not self._counter.accept(auth.nonce, auth.nc, issued, expired_before):
            return VerifyResult(Verdict.STALE, auth.username, "nonce-count replayed")
        return VerifyResult(Verdict.OK, auth.username, "ok")


# --------------------------------------------------------------------------- client side


@dataclass(frozen=True, slots=True)
class Challenge:
    """One parsed ``Digest`` challenge."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    userhash: bool = False


def parse_challenges(value: str) -> list[Challenge]:
    """All Digest challenges in a header value (several may share one line)."""
    out: list[Challenge] = []
    for scheme, p in _parse_auth_list(value):
        if scheme.lower() != "digest":
            continue
        if "realm" not in p or "nonce" not in p:
            raise AuthParseError("challenge without realm/nonce")
        qop = tuple(q.strip().lower() for q in p.get("qop", "").split(",") if q.strip())
        out.append(
            Challenge(
                realm=p["realm"],
                nonce=p["nonce"],
                algorithm=p.get("algorithm", "MD5").upper(),
                qop=qop,
                opaque=p.get("opaque"),
                stale=p.get("stale", "").lower() == "true",
                userhash=p.get("userhash", "").lower() == "true",
            )
        )
    return out


_CLIENT_PREFERENCE = ("SHA-512-256", "SHA-256", "MD5")


def _base_alg(algorithm: str) -> str:
    return algorithm[:-5] if algorithm.endswith("-SESS") else algorithm


def answer_challenge(
    challenge_header: str | list[str],
    method: str,
    uri: str,
    username: str,
    password: str | Credentials,
    *,
    body: bytes = b"",
    nc: int = 1,
    cnonce: str | None = None,
) -> str:
    """Compute an ``Authorization``/``Proxy-Authorization`` value for a challenge.

    ``challenge_header`` is one header value or all of them; the strongest algorithm we can
    compute is chosen. ``password`` may be the plain password or stored :class:`Credentials`
    (then only MD5/SHA-256 challenges can be answered). Raises :class:`AuthParseError` if the
    header is malformed or no challenge is answerable.
    """
    values = [challenge_header] if isinstance(challenge_header, str) else challenge_header
    candidates = [c for v in values for c in parse_challenges(v)]
    usable = []
    for ch in candidates:
        base = _base_alg(ch.algorithm)
        if base not in _HASHES:
            continue
        if isinstance(password, Credentials) and password.ha1_for(base) is None:
            continue
        if ch.qop and not ({"auth", "auth-int"} & set(ch.qop)):
            continue
        usable.append(ch)
    if not usable:
        raise AuthParseError("no answerable digest challenge")
    usable.sort(key=lambda c: _CLIENT_PREFERENCE.index(_base_alg(c.algorithm)))
    ch = usable[0]
    alg = _base_alg(ch.algorithm)
    cnonce = cnonce or os.urandom(8).hex()
    if isinstance(password, Credentials):
        h1 = password.ha1_for(alg) or ""
    else:
        h1 = _h(alg, f"{username}:{ch.realm}:{password}")
    if ch.algorithm.endswith("-SESS"):
        h1 = _h(alg, f"{h1}:{ch.nonce}:{cnonce}")
    qop = "auth" if "auth" in ch.qop else ("auth-int" if ch.qop else None)
    a2 = f"{method}:{uri}"
    if qop == "auth-int":
        a2 += ":" + _HASHES[alg](body)
    h2 = _h(alg, a2)
    if qop:
        response = _h(alg, f"{h1}:{ch.nonce}:{nc:08x}:{cnonce}:{qop}:{h2}")
    else:  # RFC 2069 compatibility: far end offered no qop
        response = _h(alg, f"{h1}:{ch.nonce}:{h2}")
    user_field = _h(alg, f"{username}:{ch.realm}") if ch.userhash else username
    parts = [
        f"Digest username={_quote(user_field)}",
        f"realm={_quote(ch.realm)}",
        f"nonce={_quote(ch.nonce)}",
        f"uri={_quote(uri)}",
        f"response={_quote(response)}",
        f"algorithm={ch.algorithm}",
    ]
    if ch.opaque is not None:
        parts.append(f"opaque={_quote(ch.opaque)}")
    if qop:
        parts += [f"qop={qop}", f"nc={nc:08x}", f"cnonce={_quote(cnonce)}"]
    if ch.userhash:
        parts.append("userhash=true")
    return ", ".join(parts)
