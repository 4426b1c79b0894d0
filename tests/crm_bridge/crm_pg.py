"""Where the test PostgreSQL is, and a one-shot admin statement (CREATE/DROP DATABASE…)."""

from __future__ import annotations

import os

PG_HOST = os.environ.get("CRM_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CRM_TEST_PG_PORT", "5432"))
PG_ADMIN_DB = os.environ.get("CRM_TEST_PG_DB", "test")
PG_USER = os.environ.get("CRM_TEST_PG_USER", "postgres")


def pg_url(db: str) -> str:
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{db}"


async def pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=PG_ADMIN_DB, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()
