"""The pure record builder: fields, durations, outcomes, and order independence."""

from __future__ import annotations

import random

from crm_events import abandoned_call, answered_call, email_contact, ev
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_bridge.records import build_record, identity_keys


def test_answered_call_fields_and_durations() -> None:
    rec = build_record("c1", answered_call("c1", ani="01632 960001"))
    assert rec["ani"] == "+441632960001"  # national format normalized with region GB
    assert rec["channel"] == "voice" and rec["service"] == "support"
    assert rec["arrived_at"] == 1000.0 and rec["ivr_ended_at"] == 1005.0
    assert rec["queued_at"] == 1005.0 and rec["offered_at"] == 1009.0
    assert rec["connected_at"] == 1018.0 and rec["ended_at"] == 1100.0
    assert rec["wrapup_ended_at"] == 1120.0
    assert rec["ivr_s"] == 4.5  # flow entered at +0.5, completed at +5
    assert rec["wait_s"] == 13.0  # queued +5 → answered +18
    assert rec["hold_s"] == 10.0
    assert rec["talk_s"] == (60 - 18 - 10) + (100 - 62)
    assert rec["wrapup_s"] == 20.0
    assert rec["ivr_path"] == ["welcome", "menu"]
    assert rec["ivr_inputs"]["choice"]["value"] == "2"
    assert rec["ivr_inputs"]["choice"]["how"] == "dtmf"
    assert rec["outcome"] == "answered" and rec["status"] == "ended"
    assert rec["disposition"] == "resolved" and rec["notes"] == "reset password"
    assert rec["agent_id"] == "a2" and rec["queue"] == "support"
    kinds = [(s["kind"], s.get("agent_id", ""), s.get("result", "")) for s in rec["segments"]]
    assert kinds == [
        ("ivr", "", ""),
        ("queue", "", "answered"),
        ("offer", "a9", "rona"),
        ("offer", "a1", "accepted"),
        ("agent", "a1", "transferred"),
        ("transfer", "", ""),
        ("agent", "a2", "ended"),
    ]
    assert rec["flags"] == []


def test_outcomes() -> None:
    assert build_record("c", abandoned_call("c"))["outcome"] == "abandoned"
    assert build_record("c", abandoned_call("c"))["wait_s"] == 30.0
    vm = [
        ev("ContactArrived", "v", 1, channel="voice", ani="+441632960009"),
        ev("VoicemailRecorded", "v", 20, path="/x/vm.wav", size=1600, sha256="ab" * 32, duration_s=3.0),
        ev("ContactEnded", "v", 25, reason="hangup"),
    ]
    rec = build_record("v", vm)
    assert rec["outcome"] == "voicemail"
    assert rec["attachments"][0]["kind"] == "recording" and rec["attachments"][0]["size"] == 1600
    cb = [
        ev("ContactArrived", "b", 1, channel="voice", ani="+441632960009"),
        ev("CallbackRequested", "b", 5, number="01632 960009"),
        ev("ContactEnded", "b", 6, reason="hangup"),
    ]
    rec = build_record("b", cb)
    assert rec["outcome"] == "callback_requested" and rec["callback_number"] == "+441632960009"
    ss = [
        ev("ContactArrived", "s", 1, channel="voice", ani="+441632960009"),
        ev("IvrCompleted", "s", 9, outcome="self_served", path=["order_status"], data={}),
        ev("ContactEnded", "s", 10, reason="hangup", ended_by="caller"),
    ]
    assert build_record("s", ss)["outcome"] == "self_served"
    fax = [
        ev("ContactArrived", "f", 1, channel="fax", ani="+441632960005"),
        ev("ContactEnded", "f", 60, reason="completed"),
    ]
    assert build_record("f", fax)["outcome"] == "fax_received"
    bad_fax = [*fax[:1], ev("ContactEnded", "f", 60, reason="failed")]
    assert build_record("f", bad_fax)["outcome"] == "fax_failed"
    assert build_record("o", fax[:1])["outcome"] == ""  # still in progress
    assert build_record("o", fax[:1])["status"] == "open"


def test_email_contact_keeps_subject_body_and_lowercases_identity() -> None:
    rec = build_record("m", email_contact("m"))
    assert rec["channel"] == "email"
    assert rec["subject"] == "Where is my order?" and rec["body"] == "Order ORD-1001 please"
    assert "subject" not in rec["attributes"] and rec["attributes"]["message_id"] == "<m1@example.com>"
    assert identity_keys(rec) == [("email", "ada@example.com")]
    assert rec["outcome"] == "answered"


def test_bad_input_is_kept_and_flagged() -> None:
    rec = build_record(
        "x",
        [
            ev("ContactArrived", "x", 10, channel="voice", ani="anonymous"),
            ev("ContactConnected", "x", 5, agent_id=None),  # clock skew: before arrival
            ev("ContactEnded", "x", 3, reason=None),
            ev("SomethingNew", "x", 4, whatever=[1, 2]),
        ],
    )
    assert rec["ani"] == "anonymous" and "bad_ani" in rec["flags"]
    assert identity_keys(rec) == []
    assert rec["event_count"] == 4
    email = build_record("y", [ev("ContactArrived", "y", 1, channel="email", from_addr="not an address")])
    assert "bad_email" in email["flags"] and email["from_addr"] == "not an address"


def test_region_is_configurable() -> None:
    rec = build_record(
        "u", [ev("ContactArrived", "u", 1, channel="voice", ani="(415) 555-0123")], default_region="US"
    )
    assert rec["ani"] == "+14155550123"


SCENARIOS = [answered_call, abandoned_call, email_contact]


@settings(max_examples=300, deadline=None)
@given(
    which=st.sampled_from(SCENARIOS),
    seed=st.integers(0, 2**32 - 1),
    dup_fraction=st.floats(0, 1),
)
def test_order_and_duplicates_do_not_change_the_record(which, seed, dup_fraction) -> None:  # type: ignore[no-untyped-def]
    events = which("c")
    expected = build_record("c", events)
    rng = random.Random(seed)
    shuffled = events + [e for e in events if rng.random() < dup_fraction]
    rng.shuffle(shuffled)
    assert build_record("c", shuffled) == expected


@settings(max_examples=100, deadline=None)
@given(st.permutations(list(range(17))))
def test_every_prefix_in_any_order_matches_the_same_prefix_in_order(perm: list[int]) -> None:
    """Any subset of events, whatever order it arrived in, gives the record of that subset."""
    events = answered_call("c")
    for k in range(1, len(events) + 1, 4):
        subset = [events[i] for i in perm[:k]]
        in_order = sorted(subset, key=lambda e: e["event_id"])
        assert build_record("c", subset) == build_record("c", in_order)


def test_unknown_event_types_are_ignored() -> None:
    """Producers add event types before this builder knows them (RoutingDecided,
    WrapUpStarted...): they are counted, and change nothing else in the record."""
    events = answered_call("c")
    unknown = [
        ev("RoutingDecided", "c", 1_009.0, agent_id="a1", queue="support", explanation="longest idle"),
        ev("WrapUpStarted", "c", 1_100.5, agent_id="a2", ended_at=1_101.0, outcome="odd"),
        ev("", "c", 1_050.0),
        {"type": None, "event_id": "e-none", "contact_id": "c", "ts": 1_060.0},
        ev("result", "c", 1_070.0),  # names a builder method without the handler prefix
    ]
    expected = build_record("c", events)
    rec = build_record("c", [*unknown[:2], *events, *unknown[2:]])
    assert rec["event_count"] == expected["event_count"] + len(unknown)
    changed = {k for k in rec if rec[k] != expected[k]}
    assert changed == {"event_count", "content_hash"}
    alone = build_record("c", unknown)
    assert alone["outcome"] == "" and alone["status"] == "open" and alone["segments"] == []
    assert alone["flags"] == ["no_arrival_event"]


def test_ivr_loop_guard_is_a_failure_not_an_abandon() -> None:
    """The IVR's step/nesting guard ends the call as the system: the record says failed."""

    def events(data: dict[str, str]) -> list[dict[str, object]]:
        return [
            ev("ContactArrived", "g", 1, channel="voice", ani="+441632960009"),
            ev("IvrCompleted", "g", 2, outcome="hangup", path=["a"], data=data),
            ev("ContactEnded", "g", 3, reason="ivr_hangup", ended_by="system"),
        ]

    guarded = {"ended_by": "system", "error": "step limit reached (loop in flow?)"}
    assert build_record("g", events(guarded))["outcome"] == "failed"
    assert build_record("g", events({}))["outcome"] != "failed"  # other IVR hang-ups: not a failure
