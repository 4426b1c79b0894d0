"""The two small interfaces the IVR engine runs against.

``CallPort`` is one call's media as the IVR needs it (prompts with barge-in,
digits, speech, recording, transfer, hang-up); ``Lookups`` is the CRM and
routing data it asks for. The engine never sees SIP, RTP or a database, so
flows are tested with a scripted port, and :mod:`media_port` adapts the real
media session and speech engines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

How = Literal["dtmf", "speech", "none"]


class CallEnded(Exception):
    """Raised by a CallPort when the caller has hung up (BYE/CANCEL/media timeout)."""


@dataclass(frozen=True, slots=True)
class DigitRules:
    """How to collect a digit string (all times in seconds)."""

    min: int = 1
    max: int = 1
    terminator: str | None = "#"
    first_timeout: float = 5.0
    inter_digit_timeout: float = 3.0
    overall_timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class InputSpec:
    """What a prompt may be interrupted by, or what to collect after it.

    ``digits`` None = keypad not accepted; ``phrases`` None = no speech.
    ``timeout`` is how long to wait for the first key or word.
    """

    digits: DigitRules | None = None
    phrases: tuple[str, ...] | None = None
    timeout: float = 5.0
    language: str = "en"


@dataclass(frozen=True, slots=True)
class UserInput:
    """One answer from the caller. ``how == 'none'`` means nothing came (timeout).

    For speech, ``value`` is the matched phrase ('' = heard speech that
    matched nothing) and ``text`` the raw hypothesis.
    """

    how: How
    value: str = ""
    confidence: float = 1.0
    text: str = ""
    terminated: bool = False  # digit collection ended by the terminator key

    @staticmethod
    def nothing() -> UserInput:
        return UserInput(how="none", confidence=0.0)


@dataclass(frozen=True, slots=True)
class Recording:
    path: str
    size: int
    sha256: str
    seconds: float


@runtime_checkable
class CallPort(Protocol):
    ani: str
    dnis: str

    async def prompt(
        self, *, text: str | None, audio: str | None, language: str, barge_in: InputSpec | None
    ) -> UserInput | None:
        """Play TTS ``text`` or the ``audio`` file. With ``barge_in``, a key or a
        recognised phrase stops the prompt and is returned; None = played to the end."""
        ...

    async def collect(self, spec: InputSpec, *, initial: UserInput | None = None) -> UserInput:
        """Wait for digits (per ``spec.digits``, continuing from ``initial`` digits)
        or speech against ``spec.phrases``, whichever comes first."""
        ...

    async def record(self, path: str, *, max_seconds: float, beep: bool) -> Recording | None:
        """Record the caller until '#', silence or ``max_seconds``; None if nothing usable."""
        ...

    async def transfer(self, uri: str) -> bool: ...

    async def hangup(self) -> None: ...


@dataclass(frozen=True, slots=True)
class CustomerInfo:
    id: str
    name: str = ""
    tier: str = ""  # e.g. standard | gold | vip
    language: str | None = None
    account: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_vars(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "tier": self.tier, "language": self.language,
                "account": self.account, **self.extra}  # fmt: skip


@dataclass(frozen=True, slots=True)
class OrderInfo:
    order_id: str
    status: str
    detail: str = ""
    customer_id: str | None = None

    def as_vars(self) -> dict[str, Any]:
        return {"id": self.order_id, "status": self.status, "detail": self.detail,
                "customer_id": self.customer_id}  # fmt: skip


@runtime_checkable
class Lookups(Protocol):
    async def customer_by_ani(self, ani: str) -> CustomerInfo | None: ...

    async def customer_by_account(self, account: str) -> CustomerInfo | None: ...

    async def order_status(self, order_id: str, customer_id: str | None) -> OrderInfo | None: ...

    async def queue_estimated_wait(self, queue: str) -> float | None: ...


class NoLookups:
    """Lookups that find nothing: an IVR without a CRM still runs every flow."""

    async def customer_by_ani(self, ani: str) -> CustomerInfo | None:
        return None

    async def customer_by_account(self, account: str) -> CustomerInfo | None:
        return None

    async def order_status(self, order_id: str, customer_id: str | None) -> OrderInfo | None:
        return None

    async def queue_estimated_wait(self, queue: str) -> float | None:
        return None


class StaticLookups:
    """Lookups over in-memory tables: for demos without a CRM and for flow tests."""

    def __init__(
        self,
        customers: Sequence[tuple[str | None, CustomerInfo]] = (),
        orders: Sequence[OrderInfo] = (),
        waits: dict[str, float] | None = None,
    ) -> None:
        self._by_ani = {ani: c for ani, c in customers if ani}
        self._by_account = {c.account: c for _, c in customers if c.account}
        self._orders = {o.order_id: o for o in orders}
        self._waits = dict(waits or {})

    async def customer_by_ani(self, ani: str) -> CustomerInfo | None:
        return self._by_ani.get(ani)

    async def customer_by_account(self, account: str) -> CustomerInfo | None:
        return self._by_account.get(account)

    async def order_status(self, order_id: str, customer_id: str | None) -> OrderInfo | None:
        return self._orders.get(order_id)

    async def queue_estimated_wait(self, queue: str) -> float | None:
        return self._waits.get(queue)
