"""Registrar bindings: AOR → contacts, the RFC 3261 §10.3 update rules, and their stores.

:func:`apply_register` is the pure core (no I/O, clock passed in): given an AOR's current
bindings and one REGISTER, it returns the new bindings or the error status. Stores only
persist lists of :class:`Binding` atomically per AOR, so an in-memory store (default, one
process) and a Redis store (several processes/nodes) are interchangeable.

Times are wall-clock seconds (``time.time``): bindings are shared between processes.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "Binding",
    "BindingStore",
    "ContactSpec",
    "InMemoryBindingStore",
    "Outcome",
    "RedisBindingStore",
    "RegisterPolicy",
    "RegisterRequest",
    "apply_register",
    "by_preference",
    "normalize_uri",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Binding:
    """One registered contact of an AOR (agent user name)."""

    aor: str
    uri: str  # Contact URI as the phone sent it
    expires_at: float  # wall clock
    call_id: str
    cseq: int
    source: tuple[str, int]  # where the REGISTER came from (reach phones behind NAT here)
    transport: str  # "udp" / "tcp" the REGISTER arrived on
    q: float | None = None
    instance: str | None = None  # +sip.instance (RFC 5626): same device even if its IP changed
    reg_id: int | None = None
    user_agent: str = ""
    registered_at: float = 0.0

    def expires_in(self, now: float) -> int:
        return max(0, math.ceil(self.expires_at - now))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["source"] = list(self.source)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Binding:
        d = dict(d)
        d["source"] = (str(d["source"][0]), int(d["source"][1]))
        return cls(**d)


@dataclass(frozen=True, slots=True)
class ContactSpec:
    """One Contact of a REGISTER, as the registrar needs it."""

    uri: str
    expires: int | None = None  # the contact's ;expires= param
    q: float | None = None
    instance: str | None = None
    reg_id: int | None = None


@dataclass(frozen=True, slots=True)
class RegisterRequest:
    aor: str
    contacts: tuple[ContactSpec, ...]  # empty = query only
    wildcard: bool  # Contact: *
    header_expires: int | None  # Expires header
    call_id: str
    cseq: int
    source: tuple[str, int]
    transport: str
    user_agent: str = ""


@dataclass(frozen=True, slots=True)
class RegisterPolicy:
    default_expires: int = 3600
    min_expires: int = 60
    max_expires: int = 7200
    max_contacts: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.min_expires <= self.default_expires <= self.max_expires:
            raise ValueError("need 0 < min_expires <= default_expires <= max_expires")
        if self.max_contacts < 1:
            raise ValueError("max_contacts must be >= 1")


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int  # 200, 400, 403, 423
    reason: str
    bindings: list[Binding] = field(default_factory=list)  # the AOR's bindings after the request
    changed: bool = False  # whether the store must be written


@functools.lru_cache(maxsize=8192)  # the same few contact URIs come back on every refresh
def normalize_uri(uri: str) -> str:
    """A comparison key for Contact URIs (RFC 3261 §19.1.4, simplified).

    Scheme and host compare case-insensitively, user and password case-sensitively; URI
    parameters compare as a set with case-insensitive names; URI headers are ignored.
    An absent port is not equal to an explicit 5060 (as the RFC says).
    """
    uri = uri.strip().strip("<>")
    scheme, sep, rest = uri.partition(":")
    if not sep:
        return uri
    rest = rest.split("?", 1)[0]
    head, *params = rest.split(";")
    user, at, hostport = head.rpartition("@")
    norm_params = sorted(
        p.split("=", 1)[0].lower() + ("=" + p.split("=", 1)[1].lower() if "=" in p else "")
        for p in params
        if p
    )
    return f"{scheme.lower()}:{user}{at}{hostport.lower()}" + "".join(";" + p for p in norm_params)


def _same_contact(b: Binding, c: ContactSpec, key: str) -> bool:
    if c.instance is not None and b.instance is not None:
        # RFC 5626: one device = one instance(+reg-id), whatever address it registers from.
        return b.instance == c.instance and b.reg_id == c.reg_id
    return normalize_uri(b.uri) == key


def apply_register(
    current: list[Binding], req: RegisterRequest, now: float, policy: RegisterPolicy
) -> Outcome:
    """RFC 3261 §10.3 steps 6–8 for one AOR. Pure: returns the new bindings or an error."""
    live = [b for b in current if b.expires_at > now]
    pruned = len(live) != len(current)

    if req.wildcard:
        if req.contacts or req.header_expires != 0:
            return Outcome(400, "Contact * needs Expires: 0 and no other Contact", live)
        for b in live:
            if b.call_id == req.call_id and req.cseq <= b.cseq:
                return Outcome(400, "Out-of-order CSeq", live)
        return Outcome(200, "OK", [], changed=bool(live) or pruned)

    if not req.contacts:  # a query: list the bindings, change nothing
        return Outcome(200, "OK", live, changed=pruned)

    wanted: list[tuple[ContactSpec, int]] = []
    for c in req.contacts:
        exp = c.expires if c.expires is not None else req.header_expires
        exp = policy.default_expires if exp is None else exp
        if exp < 0:
            return Outcome(400, "Bad expires", live)
        if 0 < exp < policy.min_expires:
            return Outcome(423, "Interval Too Brief", live)
        wanted.append((c, min(exp, policy.max_expires)))

    result = list(live)
    added: set[int] = set()  # id()s of bindings this request created (no CSeq check on those)
    for c, exp in wanted:
        key = normalize_uri(c.uri)
        idx = next((i for i, b in enumerate(result) if _same_contact(b, c, key)), None)
        registered_at = now
        if idx is not None:
            old = result[idx]
            if id(old) not in added and old.call_id == req.call_id and req.cseq <= old.cseq:
                return Outcome(400, "Out-of-order CSeq", live)
            registered_at = old.registered_at
            del result[idx]
        if exp > 0:
            new = Binding(
                aor=req.aor,
                uri=c.uri,
                expires_at=now + exp,
                call_id=req.call_id,
                cseq=req.cseq,
                source=req.source,
                transport=req.transport,
                q=c.q,
                instance=c.instance,
                reg_id=c.reg_id,
                user_agent=req.user_agent,
                registered_at=registered_at,
            )
            added.add(id(new))
            result.append(new)
    if len(result) > policy.max_contacts:
        return Outcome(403, "Too Many Contacts", live)
    return Outcome(200, "OK", result, changed=True)


def by_preference(bindings: list[Binding]) -> list[Binding]:
    """Highest q first (absent q counts as 1.0), then most recently registered."""
    return sorted(bindings, key=lambda b: (-(1.0 if b.q is None else b.q), -b.registered_at))


# --------------------------------------------------------------------------- stores


class BindingStore(Protocol):
    """Persists bindings per AOR. ``update`` must be atomic per AOR."""

    async def get(self, aor: str, now: float) -> list[Binding]: ...

    async def update(
        self, aor: str, now: float, fn: Callable[[list[Binding]], tuple[list[Binding] | None, T]]
    ) -> T:
        """Run ``fn`` on the AOR's live bindings; write its list unless it returns None."""
        ...

    async def purge_expired(self, now: float) -> list[str]:
        """Drop expired bindings; return AORs that had bindings and now have none."""
        ...

    async def aors(self, now: float) -> list[str]: ...

    async def close(self) -> None: ...


class InMemoryBindingStore:
    """Single-process store. ``fn`` is synchronous, so read-modify-write needs no lock."""

    def __init__(self) -> None:
        self._data: dict[str, list[Binding]] = {}

    async def get(self, aor: str, now: float) -> list[Binding]:
        return [b for b in self._data.get(aor, ()) if b.expires_at > now]

    async def update(
        self, aor: str, now: float, fn: Callable[[list[Binding]], tuple[list[Binding] | None, T]]
    ) -> T:
        new, result = fn([b for b in self._data.get(aor, ()) if b.expires_at > now])
        if new is not None:
            if new:
                self._data[aor] = list(new)
            else:
                self._data.pop(aor, None)
        return result

    async def purge_expired(self, now: float) -> list[str]:
        emptied = []
        for aor, blist in list(self._data.items()):
            live = [b for b in blist if b.expires_at > now]
            if not live:
                del self._data[aor]
                emptied.append(aor)
            elif len(live) != len(blist):
                self._data[aor] = live
        return emptied

    async def aors(self, now: float) -> list[str]:
        return [a for a, bl in self._data.items() if any(b.expires_at > now for b in bl)]

    async def close(self) -> None:
        self._data.clear()


class RedisBindingStore:
    """Bindings shared through Redis (redis-py asyncio client).

    Layout under ``prefix``: ``{prefix}aor:{user}`` holds the AOR's bindings as JSON and
    expires with its last binding; the sorted set ``{prefix}aors`` scores each AOR by its
    last expiry, so exactly one process (the one whose ZREM succeeds) reports an AOR gone.
    Updates use WATCH/MULTI optimistic transactions, retried on conflict.
    """

    def __init__(self, redis: Redis, prefix: str = "callcenter:sip:reg:") -> None:
        self._r = redis
        self._prefix = prefix
        self._index = prefix + "aors"

    def _key(self, aor: str) -> str:
        return f"{self._prefix}aor:{aor}"

    @staticmethod
    def _decode(raw: bytes | str | None, now: float) -> list[Binding]:
        if not raw:
            return []
        try:
            items = json.loads(raw)
            blist = [Binding.from_json(d) for d in items]
        except (ValueError, TypeError, KeyError):
            return []  # a corrupt entry is treated as no bindings; the next REGISTER rewrites it
        return [b for b in blist if b.expires_at > now]

    async def get(self, aor: str, now: float) -> list[Binding]:
        return self._decode(await self._r.get(self._key(aor)), now)

    async def update(
        self, aor: str, now: float, fn: Callable[[list[Binding]], tuple[list[Binding] | None, T]]
    ) -> T:
        from redis.exceptions import WatchError  # local: redis is only needed for this store

        key = self._key(aor)
        for _ in range(50):
            async with self._r.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    current = self._decode(await pipe.get(key), now)
                    new, result = fn(current)
                    if new is None:
                        await pipe.unwatch()
                        return result
                    pipe.multi()
                    if new:
                        last = max(b.expires_at for b in new)
                        data = json.dumps([b.to_json() for b in new], separators=(",", ":"))
                        pipe.set(key, data, pxat=int(last * 1000) + 1000)
                        pipe.zadd(self._index, {aor: last})
                    else:
                        pipe.delete(key)
                        pipe.zrem(self._index, aor)
                    await pipe.execute()
                    return result
                except WatchError:
                    await asyncio.sleep(0)  # yield to the concurrent writer, then retry
        raise RuntimeError(f"binding update for {aor!r} kept conflicting")

    async def purge_expired(self, now: float) -> list[str]:
        stale = await self._r.zrangebyscore(self._index, "-inf", now)
        emptied = []
        for raw in stale:
            aor = raw.decode() if isinstance(raw, bytes) else raw
            if not await self.get(aor, now) and await self._r.zrem(self._index, aor):
                await self._r.delete(self._key(aor))
                emptied.append(aor)
        return emptied

    async def aors(self, now: float) -> list[str]:
        raw = await self._r.zrangebyscore(self._index, f"({now}", "+inf")
        return [r.decode() if isinstance(r, bytes) else r for r in raw]

    async def close(self) -> None:
        return None  # the caller owns the Redis client
