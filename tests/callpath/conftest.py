"""The callpath tests' server: the shared ``rig_factory`` (tests/support/rig.py) in one or two
media modes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support import rig as shared

# The shared server fixture, made one of this folder's (pytest finds fixtures as module attributes).
rig_factory = shared.rig_factory


@pytest.fixture
async def rig(request: pytest.FixtureRequest, rig_factory: Callable[..., Any]) -> shared.Rig:
    """The demo server; ``@pytest.mark.parametrize("rig", [1, 2], indirect=True)`` runs a
    test with media in the server process and with two media worker processes."""
    return await rig_factory(media_workers=getattr(request, "param", 1))
