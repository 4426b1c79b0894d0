"""Wrap-up drafts: what an agent has typed for a contact in wrap-up, kept server-side.

The desk saves the form as the agent types (debounced). When routing ends the wrap-up
on time, the core completes it with the draft of *that* contact, so notes typed before
a timeout are saved where they belong and never reach the agent's next contact.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(slots=True)
class WrapUpDraft:
    contact_id: str
    deadline: float | None  # epoch seconds when wrap-up time ends; None: no automatic end
    routed: bool = True  # routing holds the agent in wrap-up for it (not after a transfer to a queue)
    queue: str | None = None  # the queue the agent served it from: its dispositions apply
    disposition: str = ""
    notes: str = ""

    def remaining_s(self, now: float | None = None) -> float | None:
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - (time.time() if now is None else now))

    def as_dict(self) -> dict[str, object]:
        return {
            "contact_id": self.contact_id,
            "disposition": self.disposition,
            "notes": self.notes,
            "remaining_s": self.remaining_s(),
        }
