"""Table definitions (SQLAlchemy Core). Alembic migrations create them.

Timestamps are epoch seconds (double precision), exactly as events carry them,
so a record rebuilt from its timeline compares equal bit for bit on both
dialects. JSON columns are JSONB on PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Json = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Id = String(64)

customers = Table(
    "customers",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", Text, nullable=False, default=""),
    Column("tier", String(32), nullable=False, default="standard"),
    Column("language", String(16), nullable=False, default=""),
    Column("attributes", Json, nullable=False, default=dict),
    # provisional: created for an unknown caller/sender; merges later.
    Column("provisional", Boolean, nullable=False, default=False),
    Column("merged_into", Id, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

contact_points = Table(
    "contact_points",
    metadata,
    # (kind, value) is the primary key: a contact point belongs to one customer.
    Column("kind", String(16), primary_key=True),  # phone | email | web | fax
    Column("value", String(320), primary_key=True),  # normalized
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False, index=True),
    Column("how", String(32), nullable=False, default=""),
    Column("created_at", Float, nullable=False),
)

customer_notes = Table(
    "customer_notes",
    metadata,
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False, index=True),
    Column("contact_id", Id, nullable=True),
    Column("author", String(128), nullable=False, default=""),
    Column("text", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

customer_cases = Table(
    "customer_cases",
    metadata,
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, ForeignKey("customers.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # order | case
    Column("number", String(64), nullable=False, unique=True),
    Column("status", String(32), nullable=False),
    Column("subject", Text, nullable=False, default=""),
    Column("is_open", Boolean, nullable=False, default=True),
    Column("attributes", Json, nullable=False, default=dict),
    Column("opened_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

identity_matches = Table(
    "identity_matches",
    metadata,
    # Audit of every identity decision: how a contact was matched, every link
    # and merge. Append-only.
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("customer_id", Id, nullable=False, index=True),
    Column("contact_id", Id, nullable=True, index=True),
    Column("method", String(32), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("source_customer_id", Id, nullable=True),
    Column("actor", String(128), nullable=False, default=""),
    Column("at", Float, nullable=False),
)

# What a report reads besides sort_ts (covered by ix_interactions_report on PostgreSQL).
REPORT_COLUMNS = [
    "queue",
    "channel",
    "outcome",
    "agent_id",
    "queued_at",
    "connected_at",
    "ended_at",
    "wait_s",
    "talk_s",
    "hold_s",
    "wrapup_s",
    "callback_number",
    "id",  # joins the transfer counts
]

interactions = Table(
    "interactions",
    metadata,
    Column("id", Id, primary_key=True),  # = contact_id
    Column("channel", String(16), nullable=False, default=""),
    Column("direction", String(16), nullable=False, default=""),
    Column("customer_id", Id, nullable=True),
    Column("original_customer_id", Id, nullable=True),
    Column("match_method", String(32), nullable=False, default=""),
    Column("match_detail", Text, nullable=False, default=""),
    Column("ani", String(64), nullable=False, default=""),
    Column("dnis", String(64), nullable=False, default=""),
    Column("service", String(128), nullable=False, default=""),
    Column("from_addr", Text, nullable=False, default=""),
    Column("to_addr", Text, nullable=False, default=""),
    Column("web_id", String(256), nullable=False, default=""),
    Column("language", String(16), nullable=False, default=""),
    Column("flow", String(128), nullable=False, default=""),
    Column("queue", String(128), nullable=False, default=""),
    Column("agent_id", String(128), nullable=False, default=""),
    Column("arrived_at", Float),
    Column("ivr_ended_at", Float),
    Column("queued_at", Float),
    Column("offered_at", Float),
    Column("connected_at", Float),
    Column("ended_at", Float),
    Column("wrapup_ended_at", Float),
    Column("ivr_s", Float),
    Column("wait_s", Float),
    Column("talk_s", Float),
    Column("hold_s", Float),
    Column("wrapup_s", Float),
    Column("ivr_path", Json, nullable=False, default=list),
    Column("ivr_inputs", Json, nullable=False, default=dict),
    Column("segments", Json, nullable=False, default=list),
    Column("outcome", String(32), nullable=False, default=""),
    Column("end_reason", String(64), nullable=False, default=""),
    Column("disposition", String(128), nullable=False, default=""),
    Column("notes", Text, nullable=False, default=""),
    Column("transcript", Text, nullable=False, default=""),
    Column("subject", Text, nullable=False, default=""),
    Column("body", Text, nullable=False, default=""),
    Column("callback_number", String(64), nullable=False, default=""),
    Column("attachments", Json, nullable=False, default=list),
    # ContactMessage events in order (emails, chat lines, form submissions, fax documents).
    Column("messages", Json, nullable=False, default=list),
    Column("attributes", Json, nullable=False, default=dict),
    Column("flags", Json, nullable=False, default=list),
    Column("status", String(16), nullable=False, default="open"),  # open | ended
    Column("sort_ts", Float, nullable=False),
    Column("event_count", Integer, nullable=False, default=0),
    Column("content_hash", String(64), nullable=False, default=""),
    Column("pushed_hash", String(64), nullable=False, default=""),
    Column("version", Integer, nullable=False, default=1),
    Column("updated_at", Float, nullable=False),
    Index("ix_interactions_customer_recent", "customer_id", "sort_ts"),
    Index("ix_interactions_ani", "ani"),
    # Reports (crm_bridge/reports.py) filter on the arrival time; on PostgreSQL the
    # columns they aggregate ride along (INCLUDE) so a month is an index-only scan of
    # narrow tuples instead of a heap scan of wide rows (JSON, bodies, transcripts).
    Index(
        "ix_interactions_report",
        "sort_ts",
        postgresql_include=REPORT_COLUMNS,
    ),
    # The report rollup re-aggregates the buckets of records written since its last run.
    Index("ix_interactions_updated_at", "updated_at"),
)

interaction_events = Table(
    "interaction_events",
    metadata,
    # The append-only timeline: every event ever received, once (by event_id),
    # known type or not. Records are rebuilt from it.
    Column("event_id", String(128), primary_key=True),
    Column("contact_id", Id, nullable=False),
    Column("type", String(64), nullable=False),
    Column("ts", Float, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("payload", Json, nullable=False),
    Column("flags", Json, nullable=False, default=list),
    Index("ix_interaction_events_contact", "contact_id", "ts"),
    # Reports count transfers from the timeline: a range of one rare type.
    Index("ix_interaction_events_type_ts", "type", "ts"),
)

attachments = Table(
    "attachments",
    metadata,
    Column("id", Id, primary_key=True),
    Column("contact_id", Id, nullable=False, index=True),
    Column("kind", String(32), nullable=False),  # recording | fax_image | email_part | file
    Column("filename", Text, nullable=False, default=""),
    Column("content_type", String(128), nullable=False, default=""),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("flags", Json, nullable=False, default=list),
    Column("created_at", Float, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    # The idempotency key a sink dedups by; unique so a replayed batch of
    # events can never enqueue the same change twice.
    Column("key", String(200), nullable=False, unique=True),
    Column("topic", String(64), nullable=False),
    Column("aggregate_id", Id, nullable=False),
    Column("payload", Json, nullable=False),
    Column("created_at", Float, nullable=False),
    # Set once the dispatcher has created a delivery row per sink. A flag, not a
    # "last seq" cursor: sequence numbers can commit out of order on PostgreSQL,
    # and a cursor would skip a row that became visible late.
    Column("fanned_out", Boolean, nullable=False, default=False),
    Index(
        "ix_outbox_unfanned",
        "seq",
        postgresql_where=text("NOT fanned_out"),
        sqlite_where=text("NOT fanned_out"),
    ),
)

outbox_deliveries = Table(
    "outbox_deliveries",
    metadata,
    Column("id", String(200), primary_key=True),  # "<sink>:<seq>"
    Column("outbox_seq", BigId, ForeignKey("outbox.seq"), nullable=False),
    Column("sink", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # pending | delivered | dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_until", Float, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=False, default=""),
    Column("delivered_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("outbox_seq", "sink"),
    Index("ix_outbox_deliveries_due", "sink", "state", "next_attempt_at"),
)

# Report rollup (crm_bridge/reports.py): the sums of the queue report per 15-minute
# bucket of arrival, queue and channel, for one (service-level threshold, short
# abandon threshold) pair; refreshed incrementally by reports.refresh_rollup.
ROLLUP_COUNTS = (
    "arrived",
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "answered_within",
    "callbacks",
    "self_served",
    "transfers",
    "talk_n",
    "hold_n",
    "wrap_n",
)
ROLLUP_SUMS = ("wait_sum", "talk_sum", "hold_sum", "wrap_sum", "handle_sum")

report_intervals = Table(
    "report_intervals",
    metadata,
    Column("threshold_s", Float, primary_key=True),
    Column("short_abandon_s", Float, primary_key=True),
    Column("bucket_start", Float, primary_key=True),
    Column("queue", String(128), primary_key=True),
    Column("channel", String(16), primary_key=True),
    *(Column(name, Integer, nullable=False, default=0) for name in ROLLUP_COUNTS),
    *(Column(name, Float, nullable=False, default=0.0) for name in ROLLUP_SUMS),
    Column("longest_wait_s", Float, nullable=True),
)

report_rollup_state = Table(
    "report_rollup_state",
    metadata,
    Column("threshold_s", Float, primary_key=True),
    Column("short_abandon_s", Float, primary_key=True),
    # updated_at of the newest record aggregated by the last refresh
    Column("watermark", Float, nullable=False),
)

agent_state_events = Table(
    "agent_state_events",
    metadata,
    # AgentStateChanged events (no contact: the timeline keeps them only as JSON), for
    # agent time per state and reason code and occupancy (crm_bridge/agent_states.py).
    Column("event_id", String(128), primary_key=True),
    Column("agent_id", String(128), nullable=False),
    Column("ts", Float, nullable=False),
    Column("state", String(32), nullable=False),  # the new state
    Column("old", String(32), nullable=False, default=""),
    Column("reason", String(64), nullable=False, default=""),
    Index("ix_agent_state_events_agent_ts", "agent_id", "ts"),
)

pending_callbacks = Table(
    "pending_callbacks",
    metadata,
    # Callback requests waiting for an agent, which otherwise live only in the server's
    # memory: kept here so a restart puts them back in their queue in their place
    # (crm_bridge/recovery.py).
    Column("contact_id", Id, primary_key=True),
    Column("created_at", Float, nullable=False),  # epoch seconds: when it entered its queue
    Column("data", Json, nullable=False),  # what the server needs to rebuild the contact
    Column("updated_at", Float, nullable=False),
)


# The email channel's tables live in their own module; imported here so that `metadata`
# (migrations, compare tests) knows them.
import crm_bridge.email_schema  # noqa: E402, F401  (a plain import: safe whichever module loads first)
