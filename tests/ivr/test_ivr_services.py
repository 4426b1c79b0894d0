"""Services: DNIS resolution, time-zone aware business hours, config errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from callcenter.configerrors import ConfigError
from callcenter.ivr.services import load_services, normalize_dnis

DEMO = Path(__file__).resolve().parents[2] / "config" / "services.yaml"


@pytest.fixture(scope="module")
def services():
    return load_services(DEMO)


def test_demo_dnis_mapping(services) -> None:
    assert services.resolve("5000").name == "main"
    assert services.resolve("5000").flow == "main_menu"
    assert services.resolve("600").flow == "echo"
    assert services.resolve("5001").name == "spanish"
    assert services.resolve("5001").languages.default == "es"
    assert services.resolve("+44 20 7946 0000").name == "main"  # formatting ignored
    assert services.resolve("sip:5002@127.0.0.1").name == "orders"


@pytest.mark.parametrize("dnis", ["9999", "", None, "not a number", "sip:@"])
def test_unknown_dnis_gets_default_service(services, dnis) -> None:
    svc = services.resolve(dnis)
    assert svc.name == "main"
    assert svc.default_queue == "general"


def test_normalize_dnis() -> None:
    assert normalize_dnis(" 5000 ") == "5000"
    assert normalize_dnis("tel:+44-20-7946-0000") == "+442079460000"


def _utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def test_business_hours_across_spring_dst(services) -> None:
    main = services.resolve("5000")
    # Fri 27 Mar 2026: London is on GMT (UTC+0)
    assert not main.is_open(_utc(2026, 3, 27, 7, 30))  # 07:30 local, before 08:00
    assert main.is_open(_utc(2026, 3, 27, 19, 30))  # 19:30 local
    # clocks go forward Sun 29 Mar 01:00 UTC; Mon 30 Mar London is BST (UTC+1)
    assert main.is_open(_utc(2026, 3, 30, 7, 30))  # 08:30 local: open although 07:30 UTC
    assert not main.is_open(_utc(2026, 3, 30, 19, 30))  # 20:30 local: closed
    assert main.is_open(_utc(2026, 3, 30, 18, 59))


def test_business_hours_across_autumn_dst(services) -> None:
    main = services.resolve("5000")
    # Sat 24 Oct 2026 (BST): 09:00-13:00 local = 08:00-12:00 UTC
    assert main.is_open(_utc(2026, 10, 24, 8, 0))
    assert not main.is_open(_utc(2026, 10, 24, 12, 0))
    # Sat 31 Oct 2026 (GMT after 25 Oct): 09:00-13:00 local = UTC
    assert not main.is_open(_utc(2026, 10, 31, 8, 0))
    assert main.is_open(_utc(2026, 10, 31, 12, 0))
    # Sunday: closed all day
    assert not main.is_open(_utc(2026, 10, 25, 12, 0))


def test_holidays_and_local_date(services) -> None:
    main = services.resolve("5000")
    assert not main.is_open(_utc(2026, 12, 25, 12, 0))  # Friday, but Christmas
    assert main.is_open(_utc(2026, 12, 24, 12, 0))
    spanish = services.resolve("5001")
    # Madrid is UTC+1 in winter: 23:30 UTC on 31 Dec is already 1 Jan locally (holiday)
    assert spanish.is_open(_utc(2027, 1, 4, 8, 30))  # Monday 09:30 local
    assert not spanish.is_open(_utc(2027, 1, 4, 13, 30))  # 14:30 local: lunch break
    assert not spanish.is_open(_utc(2027, 1, 6, 9, 0))  # Epiphany


def test_always_open_service(services) -> None:
    assert services.resolve("600").is_open(_utc(2026, 12, 27, 3, 0))


def test_naive_time_refused(services) -> None:
    with pytest.raises(ValueError, match="aware"):
        services.resolve("5000").is_open(datetime(2026, 3, 30, 9, 0))


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "services.yaml"
    p.write_text(text)
    return p


def test_bad_timezone_names_file_line_and_key(tmp_path: Path) -> None:
    p = _write(tmp_path, "default_service: a\nservices:\n  a:\n    flow: x\n    timezone: Mars/Olympus\n")
    with pytest.raises(ConfigError) as exc:
        load_services(p)
    ((file, key, reason),) = exc.value.problems
    assert file == f"{p}:5"
    assert key == "services.a.timezone"
    assert "unknown time zone" in reason


def test_bad_hours_and_unknown_default(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "default_service: missing\nservices:\n  a:\n    flow: x\n    hours:\n      mon: ['20:00-08:00']\n",
    )
    with pytest.raises(ConfigError) as exc:
        load_services(p)
    text = str(exc.value)
    assert f"{p}:6: services.a.hours" in text
    assert "must end after it starts" in text


def test_duplicate_dnis_refused(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "default_service: a\nservices:\n  a: {flow: x, dnis: ['100']}\n  b: {flow: y, dnis: [100]}\n",
    )
    with pytest.raises(ConfigError, match="used by both"):
        load_services(p)


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    p = _write(tmp_path, "default_service: a\nservices:\n  a: {flow: x\n  b: 1\n")
    with pytest.raises(ConfigError) as exc:
        load_services(p)
    assert exc.value.problems[0][0].startswith(f"{p}:")
    assert "invalid YAML" in exc.value.problems[0][2]


def test_unknown_key_refused(tmp_path: Path) -> None:
    p = _write(tmp_path, "default_service: a\nservices:\n  a:\n    flow: x\n    colour: red\n")
    with pytest.raises(ConfigError) as exc:
        load_services(p)
    assert exc.value.problems[0][:2] == (f"{p}:5", "services.a.colour")
