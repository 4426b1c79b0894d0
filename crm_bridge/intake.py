"""Turning whatever arrives as an "event" into a row the timeline can keep.

Input is a plain dict shaped like ``callcenter.events.Event.as_dict()``. Bad
input is never dropped and never raises: a missing id is derived from the
content (so a resent duplicate still dedups), a bad timestamp or a non-dict is
kept with a flag, and unknown types are stored in the timeline untouched.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

MAX_ID = 64


@dataclass(slots=True)
class IncomingEvent:
    event_id: str
    contact_id: str
    type: str
    ts: float
    payload: dict[str, Any]
    flags: list[str] = field(default_factory=list)


def json_safe(value: Any, flags: list[str] | None = None) -> Any:
    """A copy of ``value`` that JSON (and PostgreSQL JSONB) accepts unchanged."""
    if isinstance(value, str):
        if "\x00" in value:  # PostgreSQL text/JSONB cannot hold NUL
            if flags is not None and "nul_in_text" not in flags:
                flags.append("nul_in_text")
            return value.replace("\x00", "\ufffd")
        return value
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        if flags is not None and "non_finite_number" not in flags:
            flags.append("non_finite_number")
        return None
    if isinstance(value, dict):
        return {json_safe(str(k), flags): json_safe(v, flags) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v, flags) for v in value]
    return str(value)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _short_id(value: str, flags: list[str], what: str) -> str:
    if len(value) <= MAX_ID:
        return value
    flags.append(f"long_{what}")
    return "h:" + hashlib.sha256(value.encode()).hexdigest()[:40]


def normalize_event(raw: Any, now: float) -> IncomingEvent:
    """Validate one event dict; never raises."""
    flags: list[str] = []
    if not isinstance(raw, dict):
        payload: dict[str, Any] = {"raw": repr(raw)[:10_000]}
        flags.append("not_a_dict")
        etype = "Invalid"
    else:
        payload = json_safe(raw, flags)
        etype = payload.get("type")
        if not isinstance(etype, str) or not etype:
            flags.append("missing_type")
            etype = ""
    etype = etype[:64]

    contact_id = payload.get("contact_id") or ""
    if not isinstance(contact_id, str):
        flags.append("bad_contact_id")
        contact_id = str(contact_id)
    contact_id = _short_id(contact_id, flags, "contact_id")

    ts_raw = payload.get("ts")
    try:
        ts = float(ts_raw)  # type: ignore[arg-type]
        if not math.isfinite(ts):
            raise ValueError
    except (TypeError, ValueError):
        flags.append("bad_ts")
        ts = now

    event_id = payload.get("event_id")
    if not isinstance(event_id, str) or not event_id:
        # Derived from the content so a producer that resends the same dict
        # without an id still dedups.
        flags.append("missing_event_id")
        event_id = "h:" + hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:40]
    event_id = event_id if len(event_id) <= 128 else _short_id(event_id, flags, "event_id")

    payload.update({"type": etype, "event_id": event_id, "contact_id": contact_id, "ts": ts})
    return IncomingEvent(event_id, contact_id, etype, ts, payload, flags)
