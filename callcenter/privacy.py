"""Who may read which customer data, and the audit trail of those reads.

The policy is per role (``privacy`` in server.yaml, ``callcenter.config.PrivacyCfg``):

- ``lookup``: ``current`` — an agent reads only the customer of the contact they are
  offered or connected to (anything else is refused, whether or not the customer
  exists, so the lookup is no oracle for "is this number a customer?"); ``any`` — any.
- ``history``: the customer's past interactions shown: ``all``, ``own`` (those the
  reader handled), ``none``.
- ``notes``: whose wrap-up notes stay in those entries: ``all``, ``own``, ``none``; the
  others' are emptied and the entry says ``notes_redacted: true``.

It is applied where the data leaves the domain for a reader — the customer lookup and
the offer's screen-pop — not in the pages, so every API client gets the same answer.

Audit (``log_reads``): every supervisor read, and every agent read that shows other
agents' interactions, gives one ``callcenter.audit`` log line (who, which customer, why,
which interactions) and a ``CustomerRecordRead`` event on the bus. The log line is the
durable trace (it goes wherever the server's logs go); the event lets a live subscriber
(a SIEM forwarder, the tests) see reads as they happen. It is not a CRM row: a read
belongs to no interaction record, and writing one per screen-pop would add a database
write to every offer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from callcenter import events as ev
from callcenter.config import PrivacyCfg, PrivacyRoleCfg
from callcenter.contacts.errors import ContactError

log = logging.getLogger("callcenter.audit")


class AccessDenied(ContactError):
    """The reader's role may not read this (the web layer answers 403)."""


@dataclass(frozen=True, slots=True)
class Reader:
    subject: str  # agent id or supervisor username
    role: Literal["agent", "supervisor"]


class Privacy:
    def __init__(self, cfg: PrivacyCfg, publish: Callable[[ev.Event], object]) -> None:
        self.cfg = cfg
        self._publish = publish

    def rules(self, reader: Reader) -> PrivacyRoleCfg:
        return self.cfg.supervisor if reader.role == "supervisor" else self.cfg.agent

    def check_lookup(self, reader: Reader, customer_id: str | None, serving: Iterable[str]) -> str:
        """Why ``reader`` may read ``customer_id`` (the audit's reason), or AccessDenied.
        ``serving``: ids of the customers of the reader's current contacts."""
        if self.rules(reader).lookup == "any":
            return reader.role
        if customer_id is None or customer_id not in set(serving):
            raise AccessDenied("you may look up only the customer of your current contact")
        return "lookup"

    def history_owner(self, reader: Reader) -> str | None:
        """The agent id a history query is limited to (``history: own``), else None."""
        return reader.subject if self.rules(reader).history == "own" else None

    def history(self, reader: Reader, recent: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``recent`` (interaction summaries) as ``reader`` may see them."""
        rules = self.rules(reader)
        if rules.history == "none":
            return []
        mine = [r for r in recent if rules.history == "all" or r.get("agent_id") == reader.subject]
        if rules.notes == "all":
            return mine
        return [self._redacted(r) if rules.notes == "none" or r.get("agent_id") != reader.subject else r
                for r in mine]  # fmt: skip

    @staticmethod
    def _redacted(entry: dict[str, Any]) -> dict[str, Any]:
        if not entry.get("notes"):
            return entry
        return {**entry, "notes": "", "notes_redacted": True}

    def read(self, reader: Reader, customer_id: str, reason: str, shown: list[dict[str, Any]],
             contact_id: str = "") -> None:  # fmt: skip
        """Audit one read of ``customer_id`` that showed ``shown`` (already filtered)."""
        others = sorted({r["agent_id"] for r in shown if r.get("agent_id") not in ("", None, reader.subject)})
        if not self.cfg.log_reads or (reader.role != "supervisor" and not others):
            return
        ids = [str(r.get("id", "")) for r in shown]
        log.info("customer record read", extra={"reader": reader.subject, "role": reader.role,
                 "customer_id": customer_id, "reason": reason, "contact_id": contact_id,
                 "interactions": ids, "other_agents": others})  # fmt: skip
        self._publish(ev.CustomerRecordRead(contact_id=contact_id, reader=reader.subject, role=reader.role,
                                            customer_id=customer_id, reason=reason, interactions=ids,
                                            other_agents=others))  # fmt: skip

    def screen_pop(self, agent_id: str, pop: dict[str, Any]) -> dict[str, Any]:
        """The offer bundle for ``agent_id``: the customer's history per policy, audited."""
        reader = Reader(agent_id, "agent")
        shown = self.history(reader, list(pop.get("recent") or []))
        customer = pop.get("customer") or {}
        if customer.get("id"):
            self.read(reader, str(customer["id"]), "offer", shown, str(pop.get("interaction_id") or ""))
        return {**pop, "recent": shown}
