"""The condition language: what it computes and what it refuses."""

from __future__ import annotations

import pytest

from callcenter.ivr.expressions import Expression, ExpressionError
from callcenter.ivr.templates import check_template, render

VARS = {
    "customer": {"name": "Ada", "tier": "vip"},
    "open": False,
    "wait": 420.0,
    "language": "es",
    "account": "",
    "priority": 5,
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("customer.tier in ['vip', 'gold']", True),
        ("customer.tier == 'standard'", False),
        ("not open", True),
        ("open or wait > 300", True),
        ("wait >= 100 and wait < 400", False),
        ("language == 'es' and not account", True),
        ("priority + 5", 10),
        ("-priority", -5),
        ("missing.deep.field == null", True),
        ("1 < priority < 10", True),
        ("customer.tier not in ('gold',)", True),
        ("true and not false", True),
    ],
)
def test_evaluate(source: str, expected: object) -> None:
    assert Expression(source).evaluate(VARS) == expected


def test_missing_data_is_false_not_an_error() -> None:
    assert Expression("order.total > 3").truth({}) is False
    assert Expression("customer.tier == 'vip'").truth({"customer": None}) is False


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os')",
        "open()",
        "customer.__class__",
        "customer['name']",
        "[x for x in wait]",
        "lambda: 1",
        "wait ** 99999",
        "a if b else c",
        "x = 1",
    ],
)
def test_refused(source: str) -> None:
    with pytest.raises(ExpressionError):
        Expression(source)


def test_names() -> None:
    assert Expression("customer.tier == 'vip' and not open").names() == {"customer", "open"}


def test_templates() -> None:
    assert render("Hello {customer.name}, {{literal}}", VARS) == "Hello Ada, {literal}"
    assert render("Order {order.id} is {order.status}", VARS) == "Order  is "
    check_template("fine {a.b}")
    for bad in ("{a.__class__}", "{0}", "open {", "{a[0]}"):
        with pytest.raises(ValueError):
            check_template(bad)
