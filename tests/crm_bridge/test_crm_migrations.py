"""Alembic migrations run programmatically, idempotently, concurrently on PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from crm_bridge import admin
from crm_bridge.db import make_engine
from crm_bridge.migrate import MIGRATIONS_DIR, alembic_config, current_revision
from crm_bridge.schema import metadata
from crm_bridge.store import CrmStore


def test_migrations_ship_inside_the_package() -> None:
    assert MIGRATIONS_DIR.parent.name == "crm_bridge"
    assert (MIGRATIONS_DIR / "env.py").is_file() and (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert (MIGRATIONS_DIR / "__init__.py").is_file() and (
        MIGRATIONS_DIR / "versions" / "__init__.py"
    ).is_file()
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1


async def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_from_empty_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"  # short form accepted
    assert await current_revision(url) is None
    await admin.upgrade(url)
    await admin.upgrade(url)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert await current_revision(url) == head
    assert set(metadata.tables) <= await _tables(url)


async def test_concurrent_startups_on_postgresql(pg_db: str, tmp_path: Path) -> None:
    # pg_db is already migrated (cloned from the template): start several stores at once.
    stores = [CrmStore(pg_db, tmp_path / f"f{i}") for i in range(4)]
    await asyncio.gather(*(s.start() for s in stores))
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert await current_revision(pg_db) == head
    assert set(metadata.tables) <= await _tables(pg_db)
    await asyncio.gather(*(s.close() for s in stores))


async def test_schema_matches_models(db_url: str) -> None:
    """Autogenerate finds nothing to do: the migration and the models agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    await admin.upgrade(db_url)
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), metadata))
    finally:
        await engine.dispose()
    assert diff == []
