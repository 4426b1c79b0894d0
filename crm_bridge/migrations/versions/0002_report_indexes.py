"""reports: indexes and rollup

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06

For crm_bridge/reports.py: interactions by arrival time (on PostgreSQL covering the
columns a report aggregates, for index-only scans) and by updated_at (the rollup's
incremental refresh), the event timeline by type and time (transfers), and the
rollup tables report_intervals and report_rollup_state.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
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


def upgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_interactions_report", ["sort_ts"], unique=False, postgresql_include=REPORT_COLUMNS
        )
        batch_op.create_index("ix_interactions_updated_at", ["updated_at"], unique=False)
    with op.batch_alter_table("interaction_events", schema=None) as batch_op:
        batch_op.create_index("ix_interaction_events_type_ts", ["type", "ts"], unique=False)

    op.create_table(
        "report_intervals",
        sa.Column("threshold_s", sa.Float(), nullable=False),
        sa.Column("short_abandon_s", sa.Float(), nullable=False),
        sa.Column("bucket_start", sa.Float(), nullable=False),
        sa.Column("queue", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in ROLLUP_COUNTS),
        *(sa.Column(name, sa.Float(), nullable=False) for name in ROLLUP_SUMS),
        sa.Column("longest_wait_s", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint(
            "threshold_s",
            "short_abandon_s",
            "bucket_start",
            "queue",
            "channel",
            name=op.f("pk_report_intervals"),
        ),
    )
    op.create_table(
        "report_rollup_state",
        sa.Column("threshold_s", sa.Float(), nullable=False),
        sa.Column("short_abandon_s", sa.Float(), nullable=False),
        sa.Column("watermark", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("threshold_s", "short_abandon_s", name=op.f("pk_report_rollup_state")),
    )


def downgrade() -> None:
    op.drop_table("report_rollup_state")
    op.drop_table("report_intervals")
    with op.batch_alter_table("interaction_events", schema=None) as batch_op:
        batch_op.drop_index("ix_interaction_events_type_ts")
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index("ix_interactions_updated_at")
        batch_op.drop_index("ix_interactions_report")
