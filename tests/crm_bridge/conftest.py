"""Fixtures for crm_bridge tests: a scratch PostgreSQL database per test (cloned
from a migrated template), an SQLite file, and a started CrmStore on either.

PostgreSQL is the real server on 127.0.0.1:5432. Without it the PostgreSQL
variants skip locally and FAIL when CI=true.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from crm_pg import PG_ADMIN_DB, PG_HOST, PG_PORT, PG_USER, pg_admin, pg_url

from crm_bridge.migrate import upgrade
from crm_bridge.store import CrmStore
from tests.support import require_postgres


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated database that per-test databases are cloned from (fast)."""
    require_postgres(PG_HOST, PG_PORT, PG_USER, PG_ADMIN_DB)
    name = f"crm_test_tmpl_{uuid.uuid4().hex[:10]}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        asyncio.run(upgrade(pg_url(name)))
        yield name
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_db(pg_template: str) -> Iterator[str]:
    """URL of a fresh, migrated scratch database, dropped after the test."""
    name = f"crm_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    try:
        yield pg_url(name)
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    return request.getfixturevalue("pg_db")


@pytest.fixture
async def store(db_url: str, tmp_path: Path) -> AsyncIterator[CrmStore]:
    s = CrmStore(db_url, tmp_path / "files", default_region="GB")
    await s.start()
    try:
        yield s
    finally:
        await s.close()
