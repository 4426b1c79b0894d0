"""The interaction record's typed shape where it crosses a module boundary.

A record is built by :func:`crm_bridge.records.build_record`, written to the
``interactions`` table, put in the outbox for webhooks, and returned by the
store's queries to callcenter. These TypedDicts name its keys and value types at
those boundaries.

Why TypedDict rather than a dataclass: a TypedDict is a plain dict at run time,
so the builder stays as fast as it is (no object to build, no ``asdict`` copy
before every write), the JSON the outbox stores and the webhooks send stays byte
for byte the same (the same dict, dumped with sorted keys), and callcenter, which
reads query results as mappings (``r.get("id")``), keeps working unchanged.
tests/crm_bridge/test_crm_record_types.py checks the key sets against the
table's columns and the builder's output.
"""

from __future__ import annotations

from typing import Any, TypedDict


class RecordFields(TypedDict):
    """What the events of one contact say about it (the builder's columns)."""

    id: str  # the contact id
    channel: str  # voice | web | email | fax
    direction: str
    ani: str  # E.164 when it could be normalized
    dnis: str
    service: str
    from_addr: str
    to_addr: str
    web_id: str
    language: str
    flow: str
    queue: str
    agent_id: str
    arrived_at: float | None
    ivr_ended_at: float | None
    queued_at: float | None
    offered_at: float | None
    connected_at: float | None
    ended_at: float | None
    wrapup_ended_at: float | None
    ivr_s: float | None
    wait_s: float | None
    talk_s: float | None
    hold_s: float | None
    wrapup_s: float | None
    ivr_path: list[str]
    ivr_inputs: dict[str, dict[str, Any]]
    segments: list[dict[str, Any]]
    outcome: str
    end_reason: str
    disposition: str
    notes: str
    transcript: str
    subject: str
    body: str
    callback_number: str
    attachments: list[dict[str, Any]]
    messages: list[dict[str, Any]]  # ContactMessage events in order: the thread or transcript
    attributes: dict[str, Any]
    flags: list[str]
    status: str  # open | ended
    sort_ts: float
    event_count: int
    content_hash: str


class BuiltRecord(RecordFields):
    """:func:`crm_bridge.records.build_record`'s result, before identity resolution."""

    given_customer_id: str  # the customer the producer named, if any


class PublishedRecord(RecordFields):
    """The record as webhooks receive it (the outbox payload's ``record``)."""

    customer_id: str | None
    original_customer_id: str | None
    match_method: str
    match_detail: str
    version: int
    updated_at: float


class InteractionRecord(PublishedRecord):
    """One row of the ``interactions`` table: what the store writes and
    :meth:`crm_bridge.store.CrmStore.interaction` returns."""

    pushed_hash: str  # content hash of the last version put in the outbox


class RecordPayload(TypedDict):
    """The outbox payload of topic ``interaction.record``."""

    topic: str
    key: str
    record: PublishedRecord
    customer: dict[str, Any] | None


class InteractionSummary(TypedDict):
    """One entry of a customer's recent interactions (``recent_interactions``, and
    the screen-pop's ``recent``)."""

    id: str
    channel: str
    direction: str
    arrived_at: float | None
    ended_at: float | None
    outcome: str
    disposition: str
    queue: str
    agent_id: str
    service: str
    subject: str
    notes: str
    status: str
