"""A small, safe expression language for flow conditions — never ``eval``.

Conditions look like Python: ``customer.tier in ['vip', 'gold'] and open``,
``wait > 300``, ``not account``, ``language == 'es'``, ``priority + 5``.
They are parsed with :mod:`ast` at load time and only a whitelist of node
kinds is accepted (names, dotted attributes, literals, lists, comparisons,
and/or/not, + - * and unary minus); there are no calls, subscripts, lambdas
or dunder access, so a flow file cannot run code. Evaluation walks the tree
against a plain dict of variables; a missing variable is ``None`` (a flow
asking about data the caller never gave must not crash the call).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

_CONSTANT_NAMES = {
    "true": True,
    "false": False,
    "null": None,
    "none": None,
    "True": True,
    "False": False,
    "None": None,
}

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: b is not None and a in b,
    ast.NotIn: lambda a, b: b is None or a not in b,
}
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
}
_ALLOWED = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub,
    ast.Compare, ast.Name, ast.Load, ast.Attribute, ast.Constant, ast.List, ast.Tuple,
    ast.BinOp, *_COMPARE, *_BINARY,
)  # fmt: skip


class ExpressionError(ValueError):
    pass


class Expression:
    """A compiled condition; ``evaluate(variables)`` never raises on missing data."""

    __slots__ = ("_tree", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            tree = ast.parse(source.strip(), mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(f"bad expression {source!r}: {exc.msg}") from None
        for node in ast.walk(tree):
            if not isinstance(node, _ALLOWED):
                raise ExpressionError(
                    f"bad expression {source!r}: {type(node).__name__} is not allowed "
                    "(only names, literals, comparisons, and/or/not, + - *)"
                )
            if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
                raise ExpressionError(f"bad expression {source!r}: private attribute")
            if isinstance(node, ast.Name) and node.id.startswith("_"):
                raise ExpressionError(f"bad expression {source!r}: private name")
        self._tree = tree.body

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"

    def names(self) -> set[str]:
        """Top-level variable names the expression reads (for load-time checks)."""
        return {
            n.id for n in ast.walk(self._tree)
            if isinstance(n, ast.Name) and n.id not in _CONSTANT_NAMES
        }  # fmt: skip

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        return _eval(self._tree, variables)

    def truth(self, variables: Mapping[str, Any]) -> bool:
        try:
            return bool(self.evaluate(variables))
        except TypeError:
            # e.g. None > 3 when a lookup found nothing: the condition is simply not met
            return False


def lookup_path(variables: Mapping[str, Any], dotted: str) -> Any:
    """Resolve ``customer.name`` in nested dicts (or attributes); missing → None."""
    value: Any = variables
    for part in dotted.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif value is not None and not part.startswith("_"):
            value = getattr(value, part, None)
        if value is None:
            return None
    return value


def _eval(node: ast.AST, v: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in _CONSTANT_NAMES:
            return _CONSTANT_NAMES[node.id]
        return v.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _eval(node.value, v)
        if isinstance(base, Mapping):
            return base.get(node.attr)
        return None if base is None else getattr(base, node.attr, None)
    if isinstance(node, ast.List | ast.Tuple):
        return [_eval(e, v) for e in node.elts]
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            result: Any = True
            for e in node.values:
                result = _eval(e, v)
                if not result:
                    return result
            return result
        result = False
        for e in node.values:
            result = _eval(e, v)
            if result:
                return result
        return result
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, v)
        if isinstance(node.op, ast.Not):
            return not operand
        return -operand
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_eval(node.left, v), _eval(node.right, v))
    if isinstance(node, ast.Compare):
        left = _eval(node.left, v)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval(comp, v)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    raise ExpressionError(f"unsupported node {type(node).__name__}")  # unreachable after checks
