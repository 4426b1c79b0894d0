"""The seam between the contact core and a channel adapter, and the CRM reads the core needs.

A channel (voice today; email, web chat, fax later) registers with
``ContactCore.add_channel(name, adapter)`` and brings its contacts in with
``ContactCore.arrive``. The core calls the adapter through :class:`Channel` for
what only the channel can do; the adapter calls the core back when the
customer or the agent acts: ``present`` before it alerts the agent (the
screen-pop goes first), ``accept`` + ``connect`` when the agent takes the offer
(the softphone answering; an Accept button or API call for chat and email),
``end``/``abandon``/``end_connected`` when the customer or agent leaves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from callcenter.contacts.contact import Contact, Offer


class Channel(Protocol):
    """What the core asks of a channel adapter."""

    def reachable(self, contact: Contact) -> bool:
        """The customer is still there (or waits to be called back): worth an agent."""
        ...

    def present(self, contact: Contact, offer: Offer) -> None:
        """Alert the offered agent by the channel's means; start it, do not wait for it.
        The channel calls :meth:`ContactCore.present` (screen-pop first) before alerting,
        and :meth:`ContactCore.accept` when the agent takes it."""
        ...

    def withdraw(self, contact: Contact) -> None:
        """Stop alerting the agent (RONA, abandon): the offer is over."""
        ...

    def no_agent(self, contact: Contact, why: str) -> None:
        """Routing gave up on the contact (queue full, maximum wait): serve it otherwise."""
        ...

    def waiting(self, contact: Contact) -> None:
        """The contact (re-)entered a queue: what the customer gets while waiting."""
        ...

    def release_agent(self, contact: Contact) -> None:
        """The agent lets go of a connected contact (transfer): drop the agent's side."""
        ...

    def address(self, target: str) -> str:
        """The channel's own form of an outside transfer target (``tel:…`` → a SIP URI)."""
        ...

    async def transfer_out(self, contact: Contact, address: str) -> None:
        """Hand the contact to an address outside the center; the agent has let go."""
        ...

    async def hold(self, contact: Contact, on_hold: bool) -> bool:
        """Hold or resume; False when the contact ended meanwhile (no event then)."""
        ...

    def hangup(self, contact: Contact) -> None:
        """The agent ends the conversation."""
        ...

    def send_digits(self, contact: Contact, digits: str) -> None:
        """Send keypad digits (0-9 * #) to the customer's side: an IVR or a bank's system
        at the far end. Raises InvalidState where the channel has no such thing."""
        ...

    def forget(self, contact: Contact) -> None:
        """The contact left the core (ended or in wrap-up): drop what the channel keeps."""
        ...


class CustomerDirectory(Protocol):
    """The CRM reads the screen-pop needs (crm_bridge.store.CrmStore)."""

    async def customer_with_recent(
        self, kind: str, value: str, n: int
    ) -> tuple[dict[str, Any] | None, Sequence[Mapping[str, Any]]]: ...
