"""Contact point normalization."""

from __future__ import annotations

import pytest

from crm_bridge.addresses import normalize, normalize_email, normalize_phone


@pytest.mark.parametrize(
    ("raw", "region", "want"),
    [
        ("+441632960001", "GB", "+441632960001"),
        ("01632 960001", "GB", "+441632960001"),
        ("0044 1632 960001", "GB", "+441632960001"),
        ("sip:+441632960001@10.0.0.1;user=phone", "GB", "+441632960001"),
        ("<sip:01632960001@pbx>", "GB", "+441632960001"),
        ("tel:+14155550123", "GB", "+14155550123"),
        ("(415) 555-0123", "US", "+14155550123"),
        ("anonymous", "GB", None),
        ("", "GB", None),
        ("12", "GB", None),
    ],
)
def test_phone(raw: str, region: str, want: str | None) -> None:
    assert normalize_phone(raw, region) == want


def test_email_and_web() -> None:
    assert normalize_email("Ada Lovelace <Ada@Example.COM>") == "ada@example.com"
    assert normalize_email("mailto:BOB@example.org") == "bob@example.org"
    assert normalize_email("no at sign") is None
    assert normalize("web", "  user-42 ") == "user-42"
    assert normalize("fax", "01632 960005") == "+441632960005"
    with pytest.raises(ValueError, match="unknown contact point kind"):
        normalize("pager", "123")
