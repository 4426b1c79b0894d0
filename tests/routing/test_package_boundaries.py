"""The two libraries stay libraries: no module of ``routing`` or ``crm_bridge``
imports ``callcenter``, and neither imports the other (lazy imports inside functions
count too). One test for both packages, so the rule lives in one place."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"routing": {"callcenter", "crm_bridge"}, "crm_bridge": {"callcenter", "routing"}}


def imported_packages(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_neither_callcenter_nor_the_other_library(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert len(files) > 5
    wrong = {
        str(path.relative_to(ROOT)): sorted(found)
        for path in files
        if (found := imported_packages(path) & FORBIDDEN[package])
    }
    assert wrong == {}
