"""Alembic environment for crm_bridge.

Run programmatically only (see :mod:`crm_bridge.migrate`): the caller hands a
live synchronous connection in ``config.attributes["connection"]`` (the
asyncio "connection sharing" recipe), so no alembic.ini is needed anywhere.
"""

from __future__ import annotations

from alembic import context

from crm_bridge.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - guarded by crm_bridge.migrate
    raise RuntimeError("crm_bridge migrations run through crm_bridge.migrate.upgrade(url)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
