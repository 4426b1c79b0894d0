"""interaction messages

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

The record's ``messages``: the ContactMessage events of a contact in order (an email
thread, a chat transcript, form submissions, fax documents). Records written before this
have none; a rebuild from the timeline fills them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    with op.batch_alter_table("interactions") as batch:
        batch.add_column(sa.Column("messages", json, nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("interactions") as batch:
        batch.drop_column("messages")
