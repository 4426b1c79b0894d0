"""pending callbacks

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06

Callback requests waiting for an agent (crm_bridge/recovery.py): a restart puts them
back in their queue with their original creation time.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_callbacks",
        sa.Column("contact_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("contact_id", name=op.f("pk_pending_callbacks")),
    )


def downgrade() -> None:
    op.drop_table("pending_callbacks")
