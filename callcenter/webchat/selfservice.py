"""Self-service before an agent is needed: FAQ answers from webchat.yaml and order status.

Order status goes through the same CRM lookups the IVR uses (``callcenter/ivr/crm_lookups.py``),
with one rule the phone line does not need: a web page is open to anyone, so an order's status
is told only to the customer it belongs to (the email or phone given on the pre-chat form is a
contact point of the order's customer). Otherwise the answer is the same "not found" as for an
order that does not exist, so order numbers cannot be probed. A match also verifies the
customer's identity for the chat (they knew one of their order numbers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from callcenter.ivr.crm_lookups import CrmLookups
from callcenter.webchat.config import FaqEntry

_WORD = re.compile(r"[a-z0-9]+")
ORDER_NUMBER = re.compile(r"\b([A-Za-z]{2,5}-?\d{3,10})\b")


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    kind: str  # faq | order | order_not_found | no_match
    ref: str = ""  # the FAQ id or the order number
    customer_id: str | None = None  # set when an order proved who the customer is


def match_faq(faq: list[FaqEntry], question: str) -> FaqEntry | None:
    """The entry whose question or keywords share the most words with ``question``."""
    words = set(_WORD.findall(question.lower()))
    if not words:
        return None
    best: tuple[int, FaqEntry] | None = None
    for entry in faq:
        if question.strip().lower() == entry.question.lower() or question.strip() == entry.id:
            return entry
        score = 0
        for kw in entry.keywords:
            kw_words = _WORD.findall(kw.lower())
            if kw_words and all(w in words for w in kw_words):
                score += 2
        score += len(words & set(_WORD.findall(entry.question.lower()))) // 2
        if score and (best is None or score > best[0]):
            best = (score, entry)
    return best[1] if best else None


class SelfService:
    def __init__(self, faq: list[FaqEntry], lookups: CrmLookups | None) -> None:
        self.faq = faq
        self.lookups = lookups

    async def answer(self, question: str, addresses: list[tuple[str, str]]) -> Answer:
        """An order number in the text asks for its status; anything else is looked up in
        the FAQ. ``addresses`` are the customer's (kind, value) from the pre-chat form."""
        found = ORDER_NUMBER.search(question)
        if found and self.lookups is not None:
            return await self.order_status(found.group(1), addresses)
        entry = match_faq(self.faq, question)
        if entry is not None:
            return Answer(entry.answer, "faq", entry.id)
        return Answer("I could not find an answer to that. You can ask about an order by its number "
                      "(e.g. ORD-1001), pick a question below, or talk to a person.", "no_match")  # fmt: skip

    async def order_status(self, number: str, addresses: list[tuple[str, str]]) -> Answer:
        number = number.strip().upper()
        not_found = Answer(f"I could not find order {number} for the email or phone you gave us. "
                           "A person can help: choose 'Talk to a person'.",
                           "order_not_found", number)  # fmt: skip
        if self.lookups is None:
            return not_found
        order = await self.lookups.order_status(number, None)
        if order is None or not order.customer_id:
            return not_found
        owners: set[str] = set()
        for kind, value in addresses:
            row: dict[str, Any] | None = await self.lookups.store.customer_by_address(kind, value)
            if row is not None:
                owners.add(str(row["id"]))
        if order.customer_id not in owners:
            return not_found
        detail = f" ({order.detail})" if order.detail else ""
        return Answer(f"Order {order.order_id}{detail} is {order.status}.", "order", order.order_id,
                      customer_id=order.customer_id)  # fmt: skip
