"""The web channel's pure parts: rate limiter, FAQ matching, webchat.yaml checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from callcenter.config import load_config
from callcenter.configerrors import ConfigError
from callcenter.webchat.config import FaqEntry
from callcenter.webchat.ratelimit import RateLimiter
from callcenter.webchat.selfservice import match_faq
from tests.support.peers import make_config_dir


def test_rate_limiter_allows_a_burst_then_the_average() -> None:
    now = [0.0]
    limiter = RateLimiter(3, clock=lambda: now[0])
    assert [limiter.take("ip") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("ip") == 20  # one token comes back every 60/3 s
    assert limiter.take("other") == 0  # keys are separate
    now[0] += 20
    assert limiter.take("ip") == 0
    assert limiter.take("ip") >= 1
    assert limiter.refused == 2


def test_rate_limiter_forgets_the_least_recent_keys_first() -> None:
    limiter = RateLimiter(1, max_keys=2, clock=lambda: 0.0)
    limiter.take("a")
    limiter.take("b")
    limiter.take("c")  # "a" is forgotten: it starts with a full bucket again
    assert limiter.take("a") == 0
    assert limiter.take("c") > 0


FAQ = [
    FaqEntry(id="returns", question="How do I return an item?", answer="30 days.",
             keywords=["return", "refund"]),
    FaqEntry(id="delivery", question="How long does delivery take?", answer="2-4 days.",
             keywords=["delivery", "shipping"]),
]


@pytest.mark.parametrize(("question", "expected"), [
    ("returns", "returns"),
    ("How do I return an item?", "returns"),
    ("can I get a refund please", "returns"),
    ("when does shipping arrive", "delivery"),
    ("what is the meaning of life", None),
    ("", None),
])  # fmt: skip
def test_faq_matching(question: str, expected: str | None) -> None:
    found = match_faq(FAQ, question)
    assert (found.id if found else None) == expected


@pytest.mark.parametrize(("change", "key", "reason"), [
    (lambda d: d["topics"]["support"].update(queue="nowhere"), "topics.support.queue", "unknown queue"),
    (lambda d: d.update(service="nope"), "service", "unknown service"),
    (lambda d: d.update(allowed_origins=["https://a.example/path"]), "allowed_origins", "no path"),
    (lambda d: d["limits"].update(message_chars=0), "limits.message_chars", "greater than or equal"),
    (lambda d: d["forms"]["contact"].update(queue="nowhere"), "forms.contact.queue", "unknown queue"),
])  # fmt: skip
def test_bad_webchat_config_names_file_key_and_reason(tmp_path: Path, change, key: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    d = make_config_dir(tmp_path)
    data = yaml.safe_load((d / "webchat.yaml").read_text())
    change(data)
    (d / "webchat.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_config(d)
    file, found_key, why = err.value.problems[0]
    assert file.endswith("webchat.yaml") and found_key == key and reason in why


def test_the_demo_config_has_the_contact_form(tmp_path: Path) -> None:
    cfg = load_config(make_config_dir(tmp_path)).webchat
    assert set(cfg.forms["contact"].fields) == {"name", "email", "message"}
    assert cfg.forms["contact"].queue == "support"
