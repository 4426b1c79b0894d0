"""The registrar for agents' softphones (RFC 3261 §10.3 with RFC 7616 digest auth).

The UA core hands every REGISTER to :meth:`Registrar.handle_register` and sends back the
response it returns (the non-INVITE server transaction absorbs retransmissions). Order of
checks, and why:

1. Locked-out source → 403 at once: no credential is looked at, so a guessing attacker
   learns nothing and costs us no hashing (see :mod:`callcenter.throttle`).
2. No credentials for our realm → 401 with one challenge per algorithm (SHA-256 first).
3. Malformed Authorization → 400. A username whose account is delayed after repeated
   failures (from any source) → 503 with Retry-After, again before any hashing.
4. Wrong password *or unknown user* → the same 401 as step 2 (same headers, same form, same
   hashing work, constant-time compare), counted towards the source's lockout and the
   account's delay; a right password resets the account's delay. Right
   password with an expired/replayed nonce → 401 with ``stale=true``.
5. The authenticated user may only register its own AOR (To user) → otherwise 403.
6. Bindings updated per §10.3 (:func:`.bindings.apply_register`): 423 + Min-Expires for too
   brief an interval, 400 for out-of-order CSeq, 200 listing all current bindings.

Routing learns whether an agent has a softphone through ``on_change(user, registered)``
listeners, fired when an AOR gains its first binding or loses its last (un-REGISTER or
expiry, found by a background sweep).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import inspect
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping

from callcenter.throttle import AccountPolicy, AuthThrottle, LockoutPolicy

from .bindings import (
    Binding,
    BindingStore,
    ContactSpec,
    InMemoryBindingStore,
    Outcome,
    RegisterPolicy,
    RegisterRequest,
    apply_register,
    by_preference,
)
from .digest import (
    ALGORITHMS,
    AuthParseError,
    Credentials,
    DigestResponse,
    DigestVerifier,
    Verdict,
    parse_authorization,
)
from .message import SipMessage, make_response, new_tag
from .uri import NameAddr, UriError

__all__ = ["LEGACY_MD5_USER_AGENTS", "ChangeListener", "Registrar", "credentials_from_mapping"]

log = logging.getLogger("callcenter.sip.registrar")

ChangeListener = Callable[[str, bool], "Awaitable[None] | None"]

# Clients seen failing on a SHA-256 challenge (measured here, see docs/registrar.md):
# SIPp 3.6.1 aborts when the first challenge is not MD5 ("authentication must use MD5 or
# AKAv1-MD5"); baresip 1.0.0 (libre) gives up with ENOSYS when ANY challenge is not MD5.
# They get an MD5-only challenge. Offering MD5 to a client that claims to be one of them
# weakens nothing: MD5 is offered to everybody anyway, and the choice never depends on
# the user name.
LEGACY_MD5_USER_AGENTS: tuple[str, ...] = ("baresip", "sipp")

_HEX = re.compile(r"[0-9a-fA-F]+")
_MAX_EXPIRES_VALUE = 2**32 - 1  # RFC 3261 §20.19: delta-seconds larger than this are clamped


def credentials_from_mapping(
    mapping: Mapping[str, Mapping[str, str]], *, source: str = "config"
) -> dict[str, Credentials]:
    """Build the credential table from config (``user -> {ha1_md5, ha1_sha256}``).

    Raises ValueError naming the source, the key and the reason on bad input.
    """
    out: dict[str, Credentials] = {}
    for user, entry in mapping.items():
        for key, length in (("ha1_md5", 32), ("ha1_sha256", 64)):
            value = entry.get(key) if isinstance(entry, Mapping) else None
            if not isinstance(value, str) or len(value) != length or not _HEX.fullmatch(value):
                raise ValueError(
                    f"{source}: {user}.{key}: must be {length} hex digits "
                    f"(H(username:realm:password)); got {value!r}"
                )
        out[str(user)] = Credentials(entry["ha1_md5"].lower(), entry["ha1_sha256"].lower())
    return out


class _BadRequest(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _int_param(value: str | None, what: str) -> int | None:
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit():
        raise _BadRequest(f"Bad {what}")
    return min(int(value), _MAX_EXPIRES_VALUE)


def _contact_spec(value: str) -> ContactSpec:
    try:
        na = NameAddr.parse(value)
    except UriError as exc:
        raise _BadRequest("Bad Contact") from exc
    expires = _int_param(na.params.get("expires"), "Contact expires")
    q: float | None = None
    if "q" in na.params:
        try:
            q = float(na.params["q"] or "")
        except ValueError as exc:
            raise _BadRequest("Bad Contact q") from exc
        if not 0.0 <= q <= 1.0:
            raise _BadRequest("Bad Contact q")
    instance = na.params.get("+sip.instance")
    if instance is not None:
        instance = instance.strip('"')
    reg_id = _int_param(na.params.get("reg-id"), "reg-id")
    return ContactSpec(str(na.uri), expires=expires, q=q, instance=instance, reg_id=reg_id)


def _contact_header(b: Binding, now: float) -> str:
    out = f"<{b.uri}>;expires={b.expires_in(now)}"
    if b.q is not None:
        out += f";q={b.q:g}"
    if b.instance is not None:
        out += f';+sip.instance="{b.instance}"'
    if b.reg_id is not None:
        out += f";reg-id={b.reg_id}"
    return out


class Registrar:
    """REGISTER handling for one realm; bindings in a :class:`BindingStore`."""

    def __init__(
        self,
        realm: str,
        credentials: Mapping[str, Credentials],
        *,
        secret: bytes | None = None,
        store: BindingStore | None = None,
        policy: RegisterPolicy | None = None,
        lockout: LockoutPolicy | None = None,
        account_delay: AccountPolicy | None = None,
        algorithms: tuple[str, ...] = ALGORITHMS,
        nonce_ttl: float = 300.0,
        sweep_interval: float = 1.0,
        md5_only_user_agents: tuple[str, ...] = LEGACY_MD5_USER_AGENTS,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.realm = realm
        self._credentials = credentials
        self.verifier = DigestVerifier(
            realm, secret, algorithms=algorithms, nonce_ttl=nonce_ttl, clock=clock
        )
        self.store: BindingStore = store if store is not None else InMemoryBindingStore()
        self.policy = policy or RegisterPolicy()
        self.throttle = AuthThrottle("sip", lockout, account_delay, clock=monotonic)
        self.lockout = self.throttle.sources
        self._clock = clock
        self._sweep_interval = sweep_interval
        self._md5_only = tuple(ua.lower() for ua in md5_only_user_agents)
        self._listeners: list[ChangeListener] = []
        self._sweeper: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ public API
    def on_change(self, listener: ChangeListener) -> ChangeListener:
        """Register ``listener(user, registered)``; sync or async. Usable as a decorator."""
        self._listeners.append(listener)
        return listener

    def set_credentials(self, credentials: Mapping[str, Credentials]) -> None:
        """Swap the credential table (config reload); bindings are kept."""
        self._credentials = credentials

    async def contacts(self, aor_user: str) -> list[Binding]:
        """Current bindings of an agent, best first (q, then most recent)."""
        return by_preference(await self.store.get(aor_user, self._clock()))

    async def is_registered(self, aor_user: str) -> bool:
        return bool(await self.store.get(aor_user, self._clock()))

    async def add_binding(self, binding: Binding) -> None:
        """A binding made without a REGISTER (the browser phone's gateway, callcenter/webrtc):
        replaces the AOR's binding with the same Call-ID; listeners hear of a first binding."""
        now = self._clock()

        def update(current: list[Binding]) -> tuple[list[Binding], bool]:
            live = [b for b in current if b.expires_at > now]
            return [b for b in live if b.call_id != binding.call_id] + [binding], bool(live)

        if not await self.store.update(binding.aor, now, update):
            await self._notify(binding.aor, True)

    async def remove_binding(self, aor_user: str, call_id: str) -> None:
        """Drop the binding ``add_binding`` made; listeners hear of the AOR's last one going."""
        now = self._clock()

        def update(current: list[Binding]) -> tuple[list[Binding] | None, tuple[bool, bool]]:
            live = [b for b in current if b.expires_at > now]
            kept = [b for b in live if b.call_id != call_id]
            return (kept if len(kept) != len(live) else None), (bool(live), bool(kept))

        had, has = await self.store.update(aor_user, now, update)
        if had and not has:
            await self._notify(aor_user, False)

    async def start(self) -> None:
        """Start expiring bindings, after announcing the ones a persistent store kept (a restart):
        those phones are reachable at once."""
        if self._sweeper is None:
            for user in await self.store.aors(self._clock()):
                await self._notify(user, True)
            self._sweeper = asyncio.create_task(self._sweep_loop(), name="registrar-sweep")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    async def expire(self) -> list[str]:
        """Drop expired bindings now; fire ``registered=False`` for AORs left without any."""
        gone = await self.store.purge_expired(self._clock())
        for user in gone:
            log.info("registration expired", extra={"event": "sip.register.expired", "aor": user})
            await self._notify(user, False)
        return gone

    async def handle_register(
        self, request: SipMessage, source: tuple[str, int], transport: str
    ) -> SipMessage:
        """Process one REGISTER and return the response to send."""
        ip = source[0]
        if self.throttle.check(ip) is not None:
            return self._respond(request, 403, "Forbidden")

        auth, parse_error = self._our_authorization(request)
        if parse_error is not None:
            return self._respond(request, 400, f"Bad Authorization: {parse_error}"[:100])
        if auth is None:
            return self._challenge(request, stale=False)
        refusal = self.throttle.check(ip, auth.username)
        if refusal is not None:  # the account is delayed: a temporary answer, come back later
            return self._respond(request, 503, "Service Unavailable",
                                 [("Retry-After", str(refusal.retry_after))])

        result = self.verifier.verify(auth, request.method or "REGISTER", self._credentials)
        if result.verdict is Verdict.FAILED:
            user_for_log = auth.username[:64]  # attacker-chosen text: keep log lines bounded
            self.throttle.failed(ip, user_for_log)
            locked = self.lockout.is_locked(ip)
            log.info(
                "register authentication failed",
                extra={
                    "event": "sip.register.auth_failed",
                    "source_ip": ip,
                    "user": user_for_log,
                    "locked": locked,
                },
            )
            return self._challenge(request, stale=False)
        if result.verdict is Verdict.STALE:
            return self._challenge(request, stale=True)
        if result.verdict is Verdict.UNUSABLE:
            return self._challenge(request, stale=False)
        self.throttle.succeeded(auth.username)

        try:
            reg = self._register_request(request, source, transport)
        except _BadRequest as exc:
            return self._respond(request, 400, exc.reason)
        if reg.aor != auth.username:
            log.warning(
                "authenticated user tried to register another AOR",
                extra={"event": "sip.register.aor_mismatch", "user": auth.username,
                       "aor": reg.aor, "source_ip": ip},
            )
            return self._respond(request, 403, "Forbidden")

        now = self._clock()

        def update(current: list[Binding]) -> tuple[list[Binding] | None, tuple[Outcome, bool]]:
            outcome = apply_register(current, reg, now, self.policy)
            new = outcome.bindings if outcome.status == 200 and outcome.changed else None
            return new, (outcome, bool(current))

        try:
            outcome, was_registered = await self.store.update(reg.aor, now, update)
        except Exception:  # e.g. Redis unreachable: tell the phone to retry, do not go silent
            log.exception("registrar store update failed", extra={"aor": reg.aor})
            return self._respond(request, 500, "Server Internal Error", [("Retry-After", "5")])
        if outcome.status == 423:
            return self._respond(
                request, 423, "Interval Too Brief",
                [("Min-Expires", str(self.policy.min_expires))],
            )
        if outcome.status != 200:
            return self._respond(request, outcome.status, outcome.reason)
        now_registered = bool(outcome.bindings)
        if now_registered != was_registered:
            log.info(
                "agent softphone %s", "registered" if now_registered else "unregistered",
                extra={"event": "sip.register.change", "aor": reg.aor,
                       "registered": now_registered, "source_ip": ip},
            )
            await self._notify(reg.aor, now_registered)
        headers = [("Contact", _contact_header(b, now)) for b in by_preference(outcome.bindings)]
        headers.append(("Date", email.utils.formatdate(now, usegmt=True)))
        return self._respond(request, 200, "OK", headers)

    # ------------------------------------------------------------------ internals
    def _our_authorization(
        self, request: SipMessage
    ) -> tuple[DigestResponse | None, str | None]:
        """The Authorization for our realm, or (None, reason) if one is malformed."""
        for value in request.headers.get_all("Authorization"):
            try:
                auth = parse_authorization(value)
            except AuthParseError as exc:
                return None, exc.reason
            if auth.realm == self.realm:
                return auth, None
        return None, None

    def _register_request(
        self, request: SipMessage, source: tuple[str, int], transport: str
    ) -> RegisterRequest:
        try:
            to = request.to  # parsed (and cached) by the message parser already
        except (UriError, ValueError) as exc:
            raise _BadRequest("Bad To") from exc
        if not to.uri.is_sip or not to.uri.user:
            raise _BadRequest("To must be a SIP URI with a user part")
        call_id = request.headers.get("Call-ID") or ""
        cseq_text = (request.headers.get("CSeq") or "").split()
        if not call_id or len(cseq_text) != 2 or not cseq_text[0].isdigit():
            raise _BadRequest("Bad Call-ID/CSeq")
        values = request.headers.get_all("Contact")
        wildcard = any(v.strip() == "*" for v in values)
        if wildcard and len(values) != 1:
            raise _BadRequest("Contact * must stand alone")
        contacts = () if wildcard else tuple(_contact_spec(v) for v in values)
        return RegisterRequest(
            aor=to.uri.user,
            contacts=contacts,
            wildcard=wildcard,
            header_expires=_int_param(request.headers.get("Expires"), "Expires"),
            call_id=call_id,
            cseq=int(cseq_text[0]),
            source=(source[0], int(source[1])),
            transport=transport.lower(),
            user_agent=(request.headers.get("User-Agent") or "")[:200],
        )

    def _challenge(self, request: SipMessage, *, stale: bool) -> SipMessage:
        # The offer depends only on the User-Agent, never on the user: no enumeration.
        agent = (request.headers.get("User-Agent") or "").lower()
        only_md5 = "MD5" in self.verifier.algorithms and any(m in agent for m in self._md5_only)
        offer = ("MD5",) if only_md5 else ()
        challenges = self.verifier.challenges(stale=stale, algorithms=offer)
        headers = [("WWW-Authenticate", c) for c in challenges]
        return self._respond(request, 401, "Unauthorized", headers)

    def _respond(
        self,
        request: SipMessage,
        status: int,
        reason: str,
        headers: list[tuple[str, str]] | None = None,
    ) -> SipMessage:
        # make_response adds the tag only when the To has none (RFC 3261 §8.2.6.2).
        return make_response(request, status, reason, to_tag=new_tag(), headers=headers or [])

    async def _notify(self, user: str, registered: bool) -> None:
        for listener in list(self._listeners):
            try:
                result = listener(user, registered)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # a broken listener must not break registration
                log.exception("registrar on_change listener failed", extra={"aor": user})

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)  # periodic maintenance, not a test sync
            try:
                await self.expire()
            except Exception:  # e.g. Redis briefly away: keep sweeping
                log.exception("registrar expiry sweep failed")
