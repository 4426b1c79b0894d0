"""server.yaml ``board.thresholds``: the supervisor wallboard's colours; an alarm level
that is milder than its warning level is refused at load, with the key named."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from callcenter.config import BoardCfg


def test_defaults() -> None:
    expected = {"service_level_warn": 80, "service_level_alarm": 70,
                "longest_wait_warn_s": 60, "longest_wait_alarm_s": 120}  # fmt: skip
    assert BoardCfg().thresholds.model_dump() == expected


@pytest.mark.parametrize(
    ("given", "named"),
    [({"service_level_warn": 70, "service_level_alarm": 80}, "service_level_alarm"),
     ({"longest_wait_warn_s": 120, "longest_wait_alarm_s": 60}, "longest_wait_alarm_s"),
     ({"service_level_warn": 101}, "service_level_warn"),
     ({"longest_wait_warn": 5}, "longest_wait_warn")],
)  # fmt: skip
def test_inconsistent_or_unknown_thresholds_are_refused(given: dict[str, float], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        BoardCfg.model_validate({"thresholds": given})
