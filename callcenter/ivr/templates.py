"""``{variable}`` substitution in prompt texts — a tiny, safe formatter.

``str.format`` would allow ``{x.__class__}`` and index tricks; here a
placeholder is only a dotted name, resolved in the call's variables. A
missing value renders as an empty string: a greeting for an unknown caller
should still be spoken. ``{{`` and ``}}`` are literal braces.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from callcenter.ivr.expressions import lookup_path

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*)\}")
_STRAY = re.compile(r"[{}]")


def check_template(text: str) -> None:
    """Raise ValueError when ``text`` has a brace that is not a valid placeholder."""
    leftover = _PLACEHOLDER.sub("", text)
    if _STRAY.search(leftover):
        raise ValueError(f"bad placeholder in {text!r}: use {{name}} or {{name.field}}")


def has_placeholders(text: str) -> bool:
    return any(m.group(1) for m in _PLACEHOLDER.finditer(text))


def render(text: str, variables: Mapping[str, Any]) -> str:
    def sub(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        value = lookup_path(variables, m.group(1))
        return "" if value is None else str(value)

    return _PLACEHOLDER.sub(sub, text)
