"""A spoken answer that matches no menu option is recorded as a no-match (issue 19, item 13):
the record must not read as if the caller had chosen the recogniser's nearest phrase."""

from __future__ import annotations

from pathlib import Path

from callcenter.events import Event, IvrInputCollected
from callcenter.ivr.ports import UserInput
from crm_bridge.records import build_record

from .scripted import HangUp, ScriptedPort
from .test_ivr_demo_flows import OPEN, engine, flows, of, services  # noqa: F401 (fixtures)

NO_MATCH = UserInput(how="speech", value="", confidence=0.0, text="one")  # heard "one": no option


async def test_a_no_match_is_recorded_as_no_match(flows, services, tmp_path: Path) -> None:  # noqa: F811
    events: list[Event] = []
    port = ScriptedPort(ani="+447700900002", dnis="5000", script=[NO_MATCH, HangUp()])
    await engine(flows, services, events, OPEN, tmp_path).run(port, contact_id="nm1")
    got = of(events, IvrInputCollected)[0]
    assert (got.step, got.value, got.matched, got.heard) == ("departments", "", False, "one")

    record = build_record("nm1", [e.as_dict() for e in events])
    department = record["ivr_inputs"]["department"]
    assert (department["value"], department["matched"], department["heard"]) == ("", False, "one")
