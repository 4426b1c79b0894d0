"""Fixtures for crm_bridge tests: a scratch PostgreSQL database per test (cloned
from a migrated template), an SQLite file, and a started CrmStore on either.

PostgreSQL is the real server on 127.0.0.1:5432. Without it the PostgreSQL
variants skip locally and FAIL when CI=true.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from crm_pg import pg_admin, pg_url  # noqa: E402

from crm_bridge.migrate import upgrade  # noqa: E402
from crm_bridge.store import CrmStore  # noqa: E402


def _pg_unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL required in CI: {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}")


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated database that per-test databases are cloned from (fast)."""
    name = f"crm_test_tmpl_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # connection refused, auth, …
        _pg_unavailable(f"{type(exc).__name__}: {exc}")
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
