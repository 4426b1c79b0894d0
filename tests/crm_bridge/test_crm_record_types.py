"""The typed record shapes (crm_bridge.record_types) name exactly the keys the records
have at each boundary: the builder's output, the interactions table's row (what the
store writes and interaction() returns), the outbox payload's record, and a
recent-interactions entry."""

from __future__ import annotations

from crm_events import answered_call
from sqlalchemy import select

from crm_bridge.record_types import (
    BuiltRecord,
    InteractionRecord,
    InteractionSummary,
    PublishedRecord,
    RecordPayload,
)
from crm_bridge.records import build_record
from crm_bridge.schema import interactions, outbox
from crm_bridge.store import CrmStore
from crm_bridge.store_core import SUMMARY_COLUMNS


def test_built_record_names_every_key_the_builder_returns() -> None:
    assert set(build_record("c", answered_call("c"))) == BuiltRecord.__required_keys__


def test_interaction_record_is_the_tables_row() -> None:
    columns = {c.name for c in interactions.columns}
    assert InteractionRecord.__required_keys__ == columns
    assert PublishedRecord.__required_keys__ == columns - {"pushed_hash"}


def test_summary_and_payload_shapes() -> None:
    assert InteractionSummary.__required_keys__ == set(SUMMARY_COLUMNS)
    assert set(SUMMARY_COLUMNS) <= InteractionRecord.__required_keys__
    assert RecordPayload.__required_keys__ == {"topic", "key", "record", "customer"}


async def test_the_store_hands_out_records_of_these_shapes(store: CrmStore) -> None:
    await store.apply_events(answered_call("c1"))
    row = await store.interaction("c1")
    assert row is not None and set(row) == InteractionRecord.__required_keys__
    async with store.engine.connect() as conn:
        (payload,) = (await conn.execute(select(outbox.c.payload))).scalars().all()
    assert set(payload) == RecordPayload.__required_keys__
    assert set(payload["record"]) == PublishedRecord.__required_keys__
    assert payload["record"]["id"] == "c1" and payload["record"]["outcome"] == "answered"
    (recent,) = await store.recent_interactions(row["customer_id"] or "")
    assert set(recent) == InteractionSummary.__required_keys__ and recent["id"] == "c1"
