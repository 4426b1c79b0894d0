"""Registrar bindings that survive a restart: the in-memory store, written through to a file.

Why a file: the registrar belongs to the SIP layer, which knows nothing of the CRM (its
database is for interaction records), and a single node needs no Redis; the bindings of a
few hundred phones are a few hundred KB of JSON at most, rewritten atomically (temporary
file, then rename) when a REGISTER changes them or a binding expires. At start-up the
bindings still live are loaded with their remaining expiry, so phones need not wait up to
their re-register interval to take calls again.

Only UDP bindings are restored: a phone registered over TCP or TLS is reached through the
connection it opened, which died with the old process; it registers again when it notices.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from callcenter.sip.bindings import Binding, InMemoryBindingStore

log = logging.getLogger(__name__)

T = TypeVar("T")
FORMAT_VERSION = 1
RESTORABLE_TRANSPORTS = frozenset({"udp"})


class FileBindingStore(InMemoryBindingStore):
    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.path = path
        self._load(clock())

    def _load(self, now: float) -> None:
        try:
            items = list(json.loads(self.path.read_text(encoding="utf-8"))["bindings"])
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:  # unreadable: start empty, say so
            log.warning("ignoring unreadable SIP bindings file %s: %s", self.path, exc)
            return
        restored = 0
        for item in items:
            try:
                binding = Binding.from_json(item)
            except (TypeError, KeyError, ValueError, IndexError):
                continue  # one bad entry does not cost the others
            if binding.expires_at > now and binding.transport in RESTORABLE_TRANSPORTS:
                self._data.setdefault(binding.aor, []).append(binding)
                restored += 1
        log.info("restored %d SIP bindings of %d phones from %s", restored, len(self._data), self.path)

    def _save(self) -> None:
        bindings = [b.to_json() for bl in self._data.values() for b in bl]
        data = {"version": FORMAT_VERSION, "bindings": bindings}
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:  # a full disk must not stop registrations; they live in memory meanwhile
            log.exception("could not write SIP bindings to %s", self.path)

    async def update(
        self, aor: str, now: float, fn: Callable[[list[Binding]], tuple[list[Binding] | None, T]]
    ) -> T:
        written = False

        def tracked(current: list[Binding]) -> tuple[list[Binding] | None, T]:
            nonlocal written
            new, result = fn(current)
            written = new is not None
            return new, result

        result = await super().update(aor, now, tracked)
        if written:
            self._save()
        return result

    async def purge_expired(self, now: float) -> list[str]:
        before = sum(len(bl) for bl in self._data.values())
        emptied = await super().purge_expired(now)
        if sum(len(bl) for bl in self._data.values()) != before:
            self._save()
        return emptied
