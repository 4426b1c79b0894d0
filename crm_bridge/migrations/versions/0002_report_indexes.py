"""report indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06

Indexes for crm_bridge/reports.py: interactions by arrival time (on PostgreSQL
covering the columns a report aggregates, for index-only scans) and the event
timeline by type and time (transfers).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Kept here, not imported from crm_bridge.schema: a migration must stay as it was
# written even when the models move on.
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


def upgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_interactions_report", ["sort_ts"], unique=False, postgresql_include=REPORT_COLUMNS
        )
    with op.batch_alter_table("interaction_events", schema=None) as batch_op:
        batch_op.create_index("ix_interaction_events_type_ts", ["type", "ts"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("interaction_events", schema=None) as batch_op:
        batch_op.drop_index("ix_interaction_events_type_ts")
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index("ix_interactions_report")
