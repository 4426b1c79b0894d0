"""YAML loading that remembers where every node started.

Validation errors from pydantic carry a location path (``steps.menu.options.0.key``);
an admin needs a file and line. ``load_with_lines`` parses with a SafeLoader
subclass that records the start line of each mapping value and sequence item,
and ``line_for`` maps a location path back to the nearest recorded line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from callcenter.yamlkeys import UniqueKeyLoader, not_utf8

Loc = tuple[str | int, ...]


class SafeLoader12(UniqueKeyLoader):
    """SafeLoader with YAML 1.2 booleans (only true/false) that refuses duplicate keys.

    YAML 1.1 reads ``yes``, ``no``, ``on``, ``off`` as booleans, which turns a
    menu phrase list ``[yes, no]`` into ``[True, False]``. Flow files are full
    of spoken words, so only ``true``/``false`` are booleans here.
    """


SafeLoader12.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
SafeLoader12.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


class LinedDoc:
    """Parsed YAML data plus a map from location path to 1-based line."""

    def __init__(self, data: Any, lines: dict[Loc, int]) -> None:
        self.data = data
        self.lines = lines

    def line_for(self, loc: Sequence[str | int]) -> int:
        """Line of the deepest node on ``loc`` that exists in the document.

        Path elements the YAML does not contain (pydantic adds union tags and
        model names) are skipped, so the answer is the closest real node.
        """
        best = self.lines.get((), 1)
        path: tuple[str | int, ...] = ()
        for part in loc:
            for candidate in (part, str(part)) if not isinstance(part, str) else (part,):
                if (*path, candidate) in self.lines:
                    path = (*path, candidate)
                    best = self.lines[path]
                    break
        return best


class YamlSyntaxError(ValueError):
    def __init__(self, file: str, line: int, reason: str) -> None:
        self.file, self.line, self.reason = file, line, reason
        super().__init__(f"{file}:{line}: {reason}")


def _walk(node: yaml.Node, path: Loc, lines: dict[Loc, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key: str | int = key_node.value
            _walk(value_node, (*path, key), lines)
            # a key's own line is more useful than its value's for "missing" errors
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines)


def load_with_lines(path: Path | str) -> LinedDoc:
    """Parse one YAML file (safe constructors only) and record node lines."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlSyntaxError(file, 0, f"cannot read file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise YamlSyntaxError(file, 0, not_utf8(exc)) from None
    return loads_with_lines(text, file)


def loads_with_lines(text: str, file: str = "<string>") -> LinedDoc:
    try:
        node = yaml.compose(text, Loader=SafeLoader12)
        data = yaml.load(text, Loader=SafeLoader12)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlSyntaxError(file, line, f"invalid YAML: {problem}") from None
    lines: dict[Loc, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return LinedDoc(data if data is not None else {}, lines)
