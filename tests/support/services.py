"""What a test needs from the machine, and the project's one rule for when it is missing.

A developer's machine may lack PostgreSQL, Redis, SIPp, baresip, espeak-ng or chromium:
there the test is skipped, with the reason. Under CI (``CI=true``, set by ``.ci/run``)
every one of them is installed by the bootstrap, so a missing one is a broken setup and
the test FAILS: a green CI run must never be a run that skipped the real-component tests.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = (
    os.environ.get("TEST_REDIS_URL") or os.environ.get("ROUTING_TEST_REDIS") or "redis://127.0.0.1:6379/0"
)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def unavailable(what: str, reason: str = "") -> NoReturn:
    """``what`` is missing: fail under CI, skip elsewhere (also usable at module level)."""
    message = f"{what} not available" + (f": {reason}" if reason else "")
    if in_ci():
        pytest.fail(f"{message} (required when CI=true)", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def require_tool(name: str, package: str | None = None) -> str:
    """The path of executable ``name``; ``package`` names the Debian package that has it."""
    path = shutil.which(name)
    if path is None:
        unavailable(name, f"not on PATH (apt-get install {package or name})")
    return path


async def require_redis(url: str = REDIS_URL) -> Redis:
    """A connected ``redis.asyncio.Redis`` for ``url`` (the caller closes it with ``aclose()``)."""
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(url)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        unavailable("Redis", f"{url}: {exc}")
    return client


def require_postgres(host: str, port: int, user: str, database: str) -> None:
    """PostgreSQL at ``host:port`` accepts ``user`` on ``database``. Synchronous, for the
    session-scoped fixtures that create the template databases outside any event loop."""
    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(host=host, port=port, user=user, database=database, timeout=5)
        await conn.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError) as exc:  # OSError: refused, unreachable, timed out
        unavailable("PostgreSQL", f"{user}@{host}:{port}/{database}: {type(exc).__name__}: {exc}")
