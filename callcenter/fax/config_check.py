"""The fax settings checked against the rest of the configuration (``check-config`` and
``serve`` run it through ``callcenter.configcheck``): problems as (file, key, reason)."""

from __future__ import annotations

from typing import Any

from callcenter.fax import spandsp


def fax_problems(cfg: Any) -> list[tuple[str, str, str]]:
    """``cfg`` is the loaded ``AppConfig``."""
    fax = cfg.server.fax
    services = cfg.services.services
    where = str(cfg.directory / "server.yaml")
    problems = []
    unknown = [name for name in fax.detect_on if name not in services]
    if unknown:
        problems.append((where, "fax.detect_on", f"unknown service(s): {', '.join(unknown)}"))
    target = services.get(fax.detect_service)
    if fax.detect_on and (target is None or target.flow != "fax"):
        why = f"{fax.detect_service!r} is not a service with flow fax"
        problems.append((where, "fax.detect_service", why))
    wanted = bool(fax.detect_on) or any(s.flow == "fax" for s in services.values())
    if wanted and not spandsp.available():
        problems.append((where, "fax", "SpanDSP is not installed (Debian package libspandsp2)"))
    return problems
