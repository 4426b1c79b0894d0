"""The deployment every test of several nodes starts from (tests/cluster/rig.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cluster.rig import Deployment


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    dep = Deployment(tmp_path)
    await dep.setup()
    try:
        yield dep
    finally:
        await dep.teardown()
