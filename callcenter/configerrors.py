"""One error type for every configuration problem: file, key and reason.

Start-up refuses a bad configuration with a message an admin can act on,
e.g. ``config/server.yaml: sip.listen.0.port: Input should be less than 65536``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError


class ConfigError(Exception):
    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        self.problems = problems  # (file, key, reason)
        super().__init__("\n".join(f"{f}: {k or '(top)'}: {r}" for f, k, r in problems))


def from_validation_error(file: Path | str, exc: ValidationError, prefix: str = "") -> ConfigError:
    problems = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        if prefix:
            key = f"{prefix}.{key}" if key else prefix
        problems.append((str(file), key, err["msg"].removeprefix("Value error, ")))
    return ConfigError(problems)
