"""The registrar's file-backed binding store: what a restart restores, and bad files."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from callcenter.sip.binding_file import FileBindingStore
from callcenter.sip.bindings import Binding

NOW = 1_000_000.0


def binding(aor: str, expires_at: float, transport: str = "udp") -> Binding:
    return Binding(aor=aor, uri=f"sip:{aor}@192.0.2.1:5060", expires_at=expires_at, call_id=f"c-{aor}",
                   cseq=1, source=("192.0.2.1", 5060), transport=transport)  # fmt: skip


async def test_live_udp_bindings_come_back_with_their_expiry(tmp_path: Path) -> None:
    path = tmp_path / "sip-bindings.json"
    store = FileBindingStore(path, clock=lambda: NOW)
    for b in (binding("1001", NOW + 300), binding("1002", NOW + 30, "tcp"), binding("1003", NOW + 5)):
        await store.update(b.aor, NOW, lambda cur, b=b: ([*cur, b], None))
    assert path.is_file()

    later = NOW + 10  # 1003 has expired meanwhile; 1002 (TCP) cannot be reached after a restart
    again = FileBindingStore(path, clock=lambda: later)
    assert await again.aors(later) == ["1001"]
    assert [b.expires_at for b in await again.get("1001", later)] == [NOW + 300]

    await again.purge_expired(NOW + 400)  # expiry is written through too
    assert json.loads(path.read_text())["bindings"] == []


@pytest.mark.parametrize("content", ["not json", '{"bindings": 3}', '{"bindings": [{"aor": "x"}]}'])
async def test_an_unreadable_file_starts_empty_and_says_so(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "sip-bindings.json"
    path.write_text(content)
    caplog.set_level(logging.INFO, logger="callcenter.sip.binding_file")
    store = FileBindingStore(path, clock=lambda: NOW)
    assert await store.aors(NOW) == []
    assert any(str(path) in r.getMessage() for r in caplog.records)
