"""email channel

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

The email channel's tables (callcenter/email/, docs/email.md): every message in or out
with its raw bytes (committed before SMTP's 250), the outbound mail queue (retry,
backoff, dead letter), and the IMAP pollers' UIDVALIDITY/UID positions.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# JSONB on PostgreSQL, JSON (text) on SQLite (as 0001).
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_messages",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("mailbox", sa.String(length=320), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("source_key", sa.String(length=200), nullable=True),
        sa.Column("envelope_from", sa.Text(), nullable=False),
        sa.Column("envelope_to", Json, nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=512), nullable=False),
        sa.Column("contact_id", sa.String(length=64), nullable=True),
        sa.Column("thread_id", sa.String(length=64), nullable=True),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("summary", Json, nullable=False),
        sa.Column("processed_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_messages")),
        sa.UniqueConstraint("source_key", name=op.f("uq_email_messages_source_key")),
    )
    op.create_index("ix_email_messages_state", "email_messages", ["state", "received_at"])
    op.create_index("ix_email_messages_message_id", "email_messages", ["message_id"])
    op.create_index("ix_email_messages_thread", "email_messages", ["thread_id", "received_at"])
    op.create_table(
        "email_outbound",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.String(length=64), nullable=False),
        sa.Column("thread_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=512), nullable=False),
        sa.Column("mail_from", sa.String(length=320), nullable=False),
        sa.Column("rcpt_to", Json, nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_outbound")),
    )
    op.create_index("ix_email_outbound_due", "email_outbound", ["state", "next_attempt_at"])
    op.create_index("ix_email_outbound_thread", "email_outbound", ["thread_id", "kind", "created_at"])
    op.create_table(
        "email_imap_state",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_email_imap_state")),
    )


def downgrade() -> None:
    op.drop_table("email_imap_state")
    op.drop_index("ix_email_outbound_thread", table_name="email_outbound")
    op.drop_index("ix_email_outbound_due", table_name="email_outbound")
    op.drop_table("email_outbound")
    op.drop_index("ix_email_messages_thread", table_name="email_messages")
    op.drop_index("ix_email_messages_message_id", table_name="email_messages")
    op.drop_index("ix_email_messages_state", table_name="email_messages")
    op.drop_table("email_messages")
