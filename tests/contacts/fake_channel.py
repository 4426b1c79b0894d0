"""A channel adapter that records what the contact core asks of it (no SIP, no media)."""

from __future__ import annotations

from callcenter.contacts.contact import Contact, Offer


class FakeChannel:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []  # (what, contact_id)
        self.offers: list[Offer] = []
        self.gone: set[str] = set()  # contacts whose customer left
        self.hold_takes = True

    def reachable(self, contact: Contact) -> bool:
        return contact.contact_id not in self.gone

    def present(self, contact: Contact, offer: Offer) -> None:
        self.calls.append(("present", contact.contact_id))
        self.offers.append(offer)

    def withdraw(self, contact: Contact) -> None:
        self.calls.append(("withdraw", contact.contact_id))

    def no_agent(self, contact: Contact, why: str) -> None:
        self.calls.append(("no_agent", contact.contact_id))

    def waiting(self, contact: Contact) -> None:
        self.calls.append(("waiting", contact.contact_id))

    def release_agent(self, contact: Contact) -> None:
        self.calls.append(("release_agent", contact.contact_id))

    def address(self, target: str) -> str:
        return f"sip:{target.partition(':')[2]}@example.test"

    async def transfer_out(self, contact: Contact, address: str) -> None:
        self.calls.append(("transfer_out", address))

    async def hold(self, contact: Contact, on_hold: bool) -> bool:
        self.calls.append(("hold" if on_hold else "resume", contact.contact_id))
        return self.hold_takes

    def hangup(self, contact: Contact) -> None:
        self.calls.append(("hangup", contact.contact_id))

    def send_digits(self, contact: Contact, digits: str) -> None:
        self.calls.append(("digits", contact.contact_id))

    def forget(self, contact: Contact) -> None:
        self.calls.append(("forget", contact.contact_id))
