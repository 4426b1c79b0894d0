"""The email channel's tables (callcenter/email/, docs/email.md; migration 0006).

Kept apart from ``schema.py`` (which imports this module, so ``metadata`` has them)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, LargeBinary, String, Table, Text

from crm_bridge.schema import Id, Json, metadata

email_messages = Table(
    "email_messages",
    metadata,
    # Every message that came in (SMTP 250 / IMAP fetch) or went out, raw bytes first:
    # an inbound row is committed before the SMTP client hears 250, and processed
    # (parsed, threaded, routed) afterwards, so a crash in between loses nothing.
    Column("id", Id, primary_key=True),
    Column("direction", String(8), nullable=False),  # in | out
    Column("mailbox", String(320), nullable=False, default=""),  # our address it came to / from
    Column("source", String(128), nullable=False, default=""),  # smtp | imap:<name> | desk | ack
    # imap:<name>:<uidvalidity>:<uid>: the same IMAP message fetched twice is kept once
    Column("source_key", String(200), nullable=True, unique=True),
    Column("envelope_from", Text, nullable=False, default=""),
    Column("envelope_to", Json, nullable=False, default=list),
    Column("raw", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("state", String(16), nullable=False),  # new | done (inbound); out rows: done
    Column("message_id", String(512), nullable=False, default=""),  # without <>, as sent
    Column("contact_id", Id, nullable=True),  # the interaction it belongs to
    Column("thread_id", Id, nullable=True),  # the first interaction of its thread
    Column("sender", String(320), nullable=False, default=""),  # normalized From address
    Column("outcome", String(32), nullable=False, default=""),  # routed | joined | not_routed
    Column("summary", Json, nullable=False, default=dict),  # parsed headers, text, attachments, flags
    Column("processed_at", Float, nullable=True),
    Index("ix_email_messages_state", "state", "received_at"),
    Index("ix_email_messages_message_id", "message_id"),
    Index("ix_email_messages_thread", "thread_id", "received_at"),
)

email_outbound = Table(
    "email_outbound",
    metadata,
    # Mail to send through the relay, with the webhook outbox's discipline: leased while
    # sent, retried with backoff, dead-lettered after max_attempts, replayable by the CLI.
    Column("id", Id, primary_key=True),
    Column("contact_id", Id, nullable=False, default=""),
    Column("thread_id", Id, nullable=False, default=""),
    Column("kind", String(16), nullable=False),  # reply | ack | transcript
    Column("message_id", String(512), nullable=False),
    Column("mail_from", String(320), nullable=False),
    Column("rcpt_to", Json, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("state", String(16), nullable=False),  # pending | sent | dead | no_relay
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_until", Float, nullable=True),
    Column("last_error", Text, nullable=False, default=""),
    Column("sent_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_email_outbound_due", "state", "next_attempt_at"),
    Index("ix_email_outbound_thread", "thread_id", "kind", "created_at"),
)

email_imap_state = Table(
    "email_imap_state",
    metadata,
    # Where each IMAP mailbox poller is: a UIDVALIDITY change means the server renumbered
    # the folder, so every message is looked at again (source_key dedups what was kept).
    Column("name", String(128), primary_key=True),
    Column("uidvalidity", BigInteger, nullable=False),
    Column("last_uid", BigInteger, nullable=False),
    Column("updated_at", Float, nullable=False),
)
