"""agent state events

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

AgentStateChanged events in a table of their own (crm_bridge/agent_states.py: time per
state and reason code, occupancy), filled from the ones the timeline already holds.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "agent_state_events",
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("agent_id", sa.String(length=128), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("old", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_agent_state_events")),
    )
    op.create_index("ix_agent_state_events_agent_ts", "agent_state_events", ["agent_id", "ts"])
    # The history so far: agent state events were stored in the timeline all along.
    ev = sa.table("interaction_events", sa.column("event_id"), sa.column("type"), sa.column("ts"),
                  sa.column("payload", sa.JSON))  # fmt: skip
    found = op.get_bind().execute(
        sa.select(ev.c.event_id, ev.c.ts, ev.c.payload).where(ev.c.type == "AgentStateChanged")
    )
    while batch := found.fetchmany(10_000):
        rows = [
            {"event_id": e, "agent_id": str(p["agent_id"])[:128], "ts": ts,
             "state": str(p.get("new") or "")[:32], "old": str(p.get("old") or "")[:32],
             "reason": str(p.get("reason") or "")[:64]}
            for e, ts, p in batch
            if isinstance(p, dict) and p.get("agent_id")
        ]  # fmt: skip
        if rows:
            op.bulk_insert(table, rows)


def downgrade() -> None:
    op.drop_index("ix_agent_state_events_agent_ts", table_name="agent_state_events")
    op.drop_table("agent_state_events")
