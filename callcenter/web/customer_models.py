"""Response models of the customer lookup (``GET /api/customers/lookup``).

Display names, subjects and notes are stored as they were entered — by a caller (the SIP
display name), an agent (wrap-up notes) or an import — and the API returns them raw.
The schema says so: such fields are ``contentMediaType: text/plain`` with a description
telling clients to escape them before putting them into HTML (the desk and the board do).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

UNTRUSTED = "Stored text, returned as entered (may contain markup): escape it before rendering as HTML."


def text(what: str) -> Any:
    """A plain-text field whose content is untrusted."""
    return Field(description=f"{what}. {UNTRUSTED}", json_schema_extra={"contentMediaType": "text/plain"})


class ContactPointOut(BaseModel):
    kind: str
    value: str
    how: str


class CustomerOut(BaseModel):
    id: str
    name: str = text("The customer's display name")
    tier: str
    language: str
    attributes: dict[str, Any] = Field(description=f"Free-form customer attributes. {UNTRUSTED}")
    provisional: bool
    merged_into: str | None
    created_at: float
    updated_at: float
    contact_points: list[ContactPointOut]


class InteractionOut(BaseModel):
    id: str
    channel: str
    direction: str
    arrived_at: float | None
    ended_at: float | None
    outcome: str
    disposition: str
    queue: str
    agent_id: str = Field(description="The agent who handled it (empty if none)")
    service: str
    subject: str = text("Subject line (email, web form)")
    notes: str = text("The handling agent's wrap-up notes; empty when the privacy policy redacts them")
    notes_redacted: bool = Field(False, description="True when the reader may not see these notes")
    status: str


class CustomerLookupOut(BaseModel):
    customer: CustomerOut
    recent: list[InteractionOut] = Field(description="Recent interactions, newest first, as the "
                                         "reader's role may see them (server.yaml `privacy`)")  # fmt: skip
