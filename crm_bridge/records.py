"""Building an InteractionRecord from its events: a pure function.

The record is always rebuilt from the full, de-duplicated set of events of one
contact, folded in a canonical order — by timestamp, then by the lifecycle rank
of the event type, then by event id. Hence duplicates and out-of-order arrival
give the same record by construction, which the property tests check.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, cast

from crm_bridge.addresses import normalize_email, normalize_phone, normalize_web
from crm_bridge.intake import canonical_json
from crm_bridge.record_types import BuiltRecord

# Breaks timestamp ties the way a contact's life goes; unknown types fold last.
TYPE_RANK: dict[str, int] = {
    name: rank
    for rank, name in enumerate(
        [
            "ContactArrived",
            "FlowEntered",
            "PromptPlayed",
            "IvrInputCollected",
            "BranchTaken",
            "IvrCompleted",
            "ContactQueued",
            "AgentOffered",
            "OfferRejected",
            "ContactConnected",
            "ContactHeld",
            "ContactTransferred",
            "VoicemailRecorded",
            "CallbackRequested",
            "CallbackAttempted",
            "ContactMessage",
            "AttachmentAdded",
            "RecordingPaused",
            "MonitorSession",
            "Consultation",
            "ContactAbandoned",
            "ContactEnded",
            "WrapUpCompleted",
        ]
    )
}
KNOWN_TYPES = frozenset(TYPE_RANK)
PHONE_CHANNELS = frozenset({"voice", "fax"})
WEB_CHANNELS = frozenset({"web", "chat", "webform"})  # a browser session: web id, form email/phone
FAILURE_REASONS = frozenset(
    {"failed", "failure", "error", "busy", "no_answer", "rejected", "unreachable", "timeout"}
)
# Fields that identify rather than describe; kept out of the content hash so a
# merge (which re-points customer_id) is not mistaken for a content change.
IDENTITY_FIELDS = ("customer_id", "original_customer_id", "match_method", "match_detail")


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out and abs(out) != float("inf") else None


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def event_sort_key(ev: Mapping[str, Any]) -> tuple[float, int, str]:
    return (_float(ev.get("ts")) or 0.0, TYPE_RANK.get(_str(ev.get("type")), 99), _str(ev.get("event_id")))


def _dur(end: float | None, start: float | None, flags: set[str]) -> float | None:
    if end is None or start is None:
        return None
    value = end - start
    if value < 0:
        # Clocks of different nodes disagree; keep the record, say so.
        flags.add("negative_duration")
        value = 0.0
    return round(value, 3)


class _Fold:
    """Mutable state while folding one contact's events in canonical order."""

    def __init__(self, contact_id: str, default_region: str) -> None:
        self.region = default_region
        self.rec: dict[str, Any] = {
            "id": contact_id,
            "channel": "",
            "direction": "",
            "ani": "",
            "dnis": "",
            "service": "",
            "from_addr": "",
            "to_addr": "",
            "web_id": "",
            "language": "",
            "flow": "",
            "queue": "",
            "agent_id": "",
            "arrived_at": None,
            "ivr_ended_at": None,
            "queued_at": None,
            "offered_at": None,
            "connected_at": None,
            "ended_at": None,
            "wrapup_ended_at": None,
            "outcome": "",
            "end_reason": "",
            "disposition": "",
            "notes": "",
            "transcript": "",
            "subject": "",
            "body": "",
            "callback_number": "",
        }
        self.flags: set[str] = set()
        self.segments: list[dict[str, Any]] = []
        self.steps: list[str] = []
        self.ivr_path: list[str] | None = None
        self.inputs: dict[str, Any] = {}
        self.ivr_data: dict[str, Any] = {}
        self.ivr_outcome = ""
        self.attributes: dict[str, Any] = {}
        self.extra_attrs: dict[str, list[dict[str, Any]]] = {}  # recording pauses, monitor sessions
        self.attachments: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.message_ids: set[str] = set()
        self.notes: list[str] = []
        self.given_customer_id = ""
        self.arrived = False
        self.abandoned: dict[str, Any] | None = None
        self.voicemail = False
        self.callback = False
        self.callback_attempts: list[dict[str, Any]] = []
        self.ended_by = ""
        self.wrap_up_timed_out = False
        self.abandoned_at: float | None = None
        self.last_connected_at: float | None = None
        self.first_ts: float | None = None

    # -- segment helpers -------------------------------------------------------

    def _open(self, kind: str) -> dict[str, Any] | None:
        for seg in reversed(self.segments):
            if seg["kind"] == kind and seg.get("end") is None:
                return seg
        return None

    def _close(self, seg: dict[str, Any] | None, ts: float, result: str) -> None:
        if seg is None or seg.get("end") is not None:
            return
        seg["end"] = ts
        if "result" in seg and seg["result"] in ("", "pending"):
            seg["result"] = result
        if seg["kind"] == "agent" and seg.get("_hold_from") is not None:
            seg["hold_s"] = round(seg["hold_s"] + max(0.0, ts - seg.pop("_hold_from")), 3)

    def _step(self, step: str) -> None:
        if step and (not self.steps or self.steps[-1] != step):
            self.steps.append(step)

    # -- event handlers --------------------------------------------------------

    def apply(self, ev: Mapping[str, Any]) -> None:
        ts = _float(ev.get("ts")) or 0.0
        if self.first_ts is None:
            self.first_ts = ts
        handler = getattr(self, "on_" + _str(ev.get("type")), None)
        if handler is not None and _str(ev.get("type")) in KNOWN_TYPES:
            handler(ev, ts)

    def on_ContactArrived(self, ev: Mapping[str, Any], ts: float) -> None:
        if self.arrived:  # a second "arrival" of the same contact: first one wins
            self.flags.add("duplicate_arrival")
            return
        self.arrived = True
        r = self.rec
        r["arrived_at"] = ts
        r["channel"] = _str(ev.get("channel")) or "voice"
        r["direction"] = _str(ev.get("direction")) or "inbound"
        r["dnis"] = _str(ev.get("dnis"))
        r["service"] = _str(ev.get("service"))
        r["from_addr"] = _str(ev.get("from_addr"))
        r["to_addr"] = _str(ev.get("to_addr"))
        self.given_customer_id = _str(ev.get("customer_id"))
        attrs = _dict(ev.get("attributes"))
        for key in ("subject", "body", "transcript"):
            if key in attrs:
                r[key] = _str(attrs.pop(key))
        self.attributes = attrs
        raw_ani = _str(ev.get("ani"))
        if "@" in raw_ani and r["channel"] not in PHONE_CHANNELS:
            # Non-voice channels give the customer's address as the ANI: an email address is
            # the sender, not a phone number to normalize.
            r["from_addr"] = r["from_addr"] or raw_ani
            raw_ani = ""
        if raw_ani:
            ani = normalize_phone(raw_ani, self.region)
            if ani is None:
                self.flags.add("bad_ani")
            r["ani"] = ani or raw_ani
        if r["channel"] in WEB_CHANNELS:
            r["web_id"] = normalize_web(_str(attrs.get("web_id")) or r["from_addr"]) or ""
        elif attrs.get("web_id"):
            r["web_id"] = normalize_web(_str(attrs["web_id"])) or ""
        if r["channel"] == "email" and r["from_addr"] and normalize_email(r["from_addr"]) is None:
            self.flags.add("bad_email")

    def on_FlowEntered(self, ev: Mapping[str, Any], ts: float) -> None:
        self.rec["flow"] = _str(ev.get("flow"))
        if ev.get("language"):
            self.rec["language"] = _str(ev.get("language"))
        if self._open("ivr") is None:
            self.segments.append({"kind": "ivr", "flow": self.rec["flow"], "start": ts, "end": None})

    def on_PromptPlayed(self, ev: Mapping[str, Any], ts: float) -> None:
        self._step(_str(ev.get("step")))

    def on_IvrInputCollected(self, ev: Mapping[str, Any], ts: float) -> None:
        step = _str(ev.get("step"))
        self._step(step)
        name = _str(ev.get("name")) or step
        self.inputs[name] = {
            "value": _str(ev.get("value")),
            "how": _str(ev.get("how")),
            "confidence": _float(ev.get("confidence")),
            "matched": ev.get("matched") is not False,  # events from before the field: matched
            "heard": _str(ev.get("heard")),
            "step": step,
            "ts": ts,
        }

    def on_BranchTaken(self, ev: Mapping[str, Any], ts: float) -> None:
        self._step(_str(ev.get("step")))

    def on_IvrCompleted(self, ev: Mapping[str, Any], ts: float) -> None:
        if self.rec["ivr_ended_at"] is None:
            self.rec["ivr_ended_at"] = ts
        self.ivr_outcome = _str(ev.get("outcome"))
        path = ev.get("path")
        if isinstance(path, list) and path:
            self.ivr_path = [_str(p) for p in path]
        self.ivr_data.update(_dict(ev.get("data")))
        self._close(self._open("ivr"), ts, self.ivr_outcome)

    def on_ContactQueued(self, ev: Mapping[str, Any], ts: float) -> None:
        self._close(self._open("ivr"), ts, "queued")
        self._close(self._open("queue"), ts, "requeued")
        queue = _str(ev.get("queue"))
        self.rec["queue"] = queue
        if self.rec["queued_at"] is None:
            self.rec["queued_at"] = ts
        priority = ev.get("priority")
        # The skills this contact needed (the queue's own plus the IVR's, e.g. a language):
        # what a what-if replay must ask the simulated agents for.
        skills = {str(k): v for k, v in _dict(ev.get("skills")).items() if isinstance(v, int)}
        self.segments.append(
            {
                "kind": "queue",
                "queue": queue,
                "priority": priority if isinstance(priority, int) else 0,
                "skills": skills,
                "start": ts,
                "end": None,
                "result": "",
            }
        )

    def on_AgentOffered(self, ev: Mapping[str, Any], ts: float) -> None:
        if self.rec["offered_at"] is None:
            self.rec["offered_at"] = ts
        self.segments.append(
            {
                "kind": "offer",
                "agent_id": _str(ev.get("agent_id")),
                "queue": _str(ev.get("queue")) or self.rec["queue"],
                "reservation_id": _str(ev.get("reservation_id")),
                "start": ts,
                "end": None,
                "result": "pending",
            }
        )

    def on_OfferRejected(self, ev: Mapping[str, Any], ts: float) -> None:
        rid = _str(ev.get("reservation_id"))
        for seg in reversed(self.segments):
            if seg["kind"] == "offer" and seg["reservation_id"] == rid:
                self._close(seg, ts, _str(ev.get("reason")) or "rejected")
                return

    def on_ContactConnected(self, ev: Mapping[str, Any], ts: float) -> None:
        agent = _str(ev.get("agent_id"))
        self._close(self._open("ivr"), ts, "connected")
        self._close(self._open("queue"), ts, "answered")
        for seg in reversed(self.segments):
            if seg["kind"] == "offer" and seg["agent_id"] == agent and seg["end"] is None:
                self._close(seg, ts, "accepted")
                break
        self._close(self._open("agent"), ts, "replaced")
        if self.rec["connected_at"] is None:
            self.rec["connected_at"] = ts
        self.last_connected_at = ts
        self.rec["agent_id"] = agent
        self.segments.append(
            {"kind": "agent", "agent_id": agent, "start": ts, "end": None, "hold_s": 0.0, "result": ""}
        )

    def on_ContactHeld(self, ev: Mapping[str, Any], ts: float) -> None:
        seg = self._open("agent")
        if seg is None:
            return
        if ev.get("on_hold"):
            seg.setdefault("_hold_from", ts)
        elif seg.get("_hold_from") is not None:
            seg["hold_s"] = round(seg["hold_s"] + max(0.0, ts - seg.pop("_hold_from")), 3)

    def on_ContactTransferred(self, ev: Mapping[str, Any], ts: float) -> None:
        self._close(self._open("agent"), ts, "transferred")
        self.segments.append(
            {
                "kind": "transfer",
                "from_agent": _str(ev.get("from_agent")),
                "target": _str(ev.get("target")),
                "start": ts,
                "end": ts,
            }
        )

    def on_VoicemailRecorded(self, ev: Mapping[str, Any], ts: float) -> None:
        self.voicemail = True
        self.attachments.append(
            {
                "kind": "recording",
                "path": _str(ev.get("path")),
                "size": ev.get("size") if isinstance(ev.get("size"), int) else None,
                "sha256": _str(ev.get("sha256")),
                "duration_s": _float(ev.get("duration_s")),
                "event_id": _str(ev.get("event_id")),
            }
        )

    def on_CallbackRequested(self, ev: Mapping[str, Any], ts: float) -> None:
        self.callback = True
        raw = _str(ev.get("number"))
        self.rec["callback_number"] = normalize_phone(raw, self.region) or raw

    def on_CallbackAttempted(self, ev: Mapping[str, Any], ts: float) -> None:
        attempt = {"ts": ts, "agent_id": _str(ev.get("agent_id")), "attempt": ev.get("attempt")}
        self.callback_attempts.append(attempt | {"result": _str(ev.get("result"))})

    def on_AttachmentAdded(self, ev: Mapping[str, Any], ts: float) -> None:
        att = _dict(ev.get("attachment"))
        att["event_id"] = _str(ev.get("event_id"))
        self.attachments.append(att)

    def on_RecordingPaused(self, ev: Mapping[str, Any], ts: float) -> None:
        """PCI pause/resume of the call recording (the intervals are also in the recording's
        attachment, in seconds of the file)."""
        self.extra_attrs.setdefault("recording_pauses", []).append(
            {"ts": ts, "paused": bool(ev.get("paused")), "by": _str(ev.get("by"))})

    def on_MonitorSession(self, ev: Mapping[str, Any], ts: float) -> None:
        """A supervisor's listen/whisper/barge session on the call."""
        self.extra_attrs.setdefault("monitoring", []).append({
            "supervisor": _str(ev.get("supervisor")), "agent_id": _str(ev.get("agent_id")),
            "from": _float(ev.get("started")), "to": _float(ev.get("ended")),
            "modes": [_dict(m) for m in ev.get("modes") or [] if isinstance(m, Mapping)],
            "result": _str(ev.get("result")), "event_id": _str(ev.get("event_id"))})

    def on_Consultation(self, ev: Mapping[str, Any], ts: float) -> None:
        """A consultation (warm transfer) of the call, and its three-way conference if any."""
        self.extra_attrs.setdefault("consultations", []).append({
            "agent_id": _str(ev.get("agent_id")), "target": _str(ev.get("target")),
            "from": _float(ev.get("started")), "answered": _float(ev.get("answered")),
            "conference_from": _float(ev.get("conference_from")), "to": _float(ev.get("ended")),
            "participants": [_str(p) for p in ev.get("participants") or []],
            "result": _str(ev.get("result")), "event_id": _str(ev.get("event_id"))})

    def on_ContactMessage(self, ev: Mapping[str, Any], ts: float) -> None:
        """One email, chat line, form submission or fax document. A message the channel
        delivered twice (same message id, another event) is kept once, flagged."""
        event_id = _str(ev.get("event_id"))
        message_id = _str(ev.get("message_id")) or event_id
        if message_id in self.message_ids:
            self.flags.add("duplicate_message")
            return
        self.message_ids.add(message_id)
        files = [_dict(a) for a in ev.get("attachments") or [] if isinstance(a, Mapping)]
        raw = ev.get("attachments")
        if raw and (not isinstance(raw, list) or len(files) != len(raw)):
            self.flags.add("bad_attachment")  # kept what could be read; the timeline has the rest
        self.messages.append(
            {
                "ts": ts,
                "direction": _str(ev.get("direction")) or "in",
                "channel": _str(ev.get("channel")) or self.rec["channel"],
                "message_id": message_id,
                "author": _str(ev.get("author")),
                "text": _str(ev.get("text")),
                "attachments": files,
                "meta": _dict(ev.get("meta")),
                "event_id": event_id,
            }
        )
        for att in files:
            self.attachments.append(
                {"kind": "message", **att, "message_id": message_id, "event_id": event_id}
            )

    def on_ContactAbandoned(self, ev: Mapping[str, Any], ts: float) -> None:
        self.abandoned = {"where": _str(ev.get("where")), "waited_s": _float(ev.get("waited_s"))}
        self.abandoned_at = ts
        self._close(self._open("queue"), ts, "abandoned")
        self._close(self._open("ivr"), ts, "abandoned")
        for seg in self.segments:
            if seg["kind"] == "offer":
                self._close(seg, ts, "cancelled")

    def on_ContactEnded(self, ev: Mapping[str, Any], ts: float) -> None:
        if self.rec["ended_at"] is not None:
            return
        self.rec["ended_at"] = ts
        self.rec["end_reason"] = _str(ev.get("reason"))
        self.ended_by = _str(ev.get("ended_by"))
        for seg in self.segments:
            self._close(seg, ts, "ended")

    def on_WrapUpCompleted(self, ev: Mapping[str, Any], ts: float) -> None:
        agent = _str(ev.get("agent_id"))
        parts = [s for s in self.segments if s["kind"] == "agent" and s["agent_id"] == agent]
        part = parts[-1] if parts else None
        if part is not None:  # each agent's part keeps its own disposition and notes
            part["disposition"] = _str(ev.get("disposition"))
            part["notes"] = _str(ev.get("notes"))
            part["wrap_up_timed_out"] = bool(ev.get("timed_out"))
        if agent and self.rec["agent_id"] and agent != self.rec["agent_id"]:
            # An earlier agent's part (they transferred the contact): notes join the record's,
            # the disposition and wrap-up time stay the last agent's.
            if ev.get("notes"):
                self.notes.append(_str(ev.get("notes")))
            return
        self.rec["wrapup_ended_at"] = ts  # folded in order: the last wrap-up wins
        if ev.get("disposition"):
            self.rec["disposition"] = _str(ev.get("disposition"))
        if ev.get("notes"):
            self.notes.append(_str(ev.get("notes")))
        # Wrap-up time ran out: disposition and notes are the agent's autosaved draft.
        self.wrap_up_timed_out = bool(ev.get("timed_out"))

    # -- result ----------------------------------------------------------------

    def _outcome(self) -> str:
        r = self.rec
        ended = r["ended_at"] is not None or r["wrapup_ended_at"] is not None
        failed = r["end_reason"].lower() in FAILURE_REASONS
        if r["end_reason"] == "server_restart":  # closed by crm_bridge.recovery after a crash
            return "interrupted"
        if r["channel"] == "fax":
            # T.30's own verdict travels in the document's message (meta t30_ok, reason)
            if failed or any(m["meta"].get("t30_ok") is False for m in self.messages):
                return "fax_failed"
            if ended or self.messages or any(a.get("kind") == "fax_image" for a in self.attachments):
                return "fax_received"
        if r["connected_at"] is not None:
            # The outcome follows the last segment: answered, then transferred, then left waiting.
            left = self.abandoned_at
            return "abandoned" if left is not None and left >= (self.last_connected_at or 0) else "answered"
        if self.voicemail:
            return "voicemail"
        if self.callback:
            return "callback_failed" if r["end_reason"] == "callback_failed" else "callback_requested"
        if self.ivr_outcome in ("self_served", "app"):  # a flow or a built-in app (echo) served the caller
            return "self_served"
        if self.abandoned is not None:
            return "abandoned"
        if not ended:
            return ""
        if failed:
            return "failed"
        if self.ivr_data.get("ended_by") == "system":  # a flow's loop guard, not the caller
            return "failed"
        if r["queued_at"] is None and (self.ivr_outcome or self._ivr_entered()):
            return "ended_in_ivr"  # hung up (or was hung up on) before asking for an agent
        if self.ended_by == "caller":
            return "abandoned"
        return "failed"

    def _ivr_entered(self) -> bool:
        return any(seg["kind"] == "ivr" for seg in self.segments)

    def result(self) -> dict[str, Any]:
        r = self.rec
        flags = self.flags
        ivr_start = next((s["start"] for s in self.segments if s["kind"] == "ivr"), None)
        if r["ivr_ended_at"] is not None and ivr_start is None:
            ivr_start = r["arrived_at"]
        wait = hold = talk = None
        queue_segs = [s for s in self.segments if s["kind"] == "queue"]
        if queue_segs and all(s["end"] is not None for s in queue_segs):
            wait = round(sum(_dur(s["end"], s["start"], flags) or 0.0 for s in queue_segs), 3)
        agent_segs = [s for s in self.segments if s["kind"] == "agent"]
        for seg in agent_segs:
            seg.pop("_hold_from", None)  # still on hold when last seen
        if agent_segs and all(s["end"] is not None for s in agent_segs):
            hold = round(sum(s["hold_s"] for s in agent_segs), 3)
            talk = round(
                sum(max(0.0, (_dur(s["end"], s["start"], flags) or 0.0) - s["hold_s"]) for s in agent_segs),
                3,
            )
        wrap_from = r["ended_at"]
        if agent_segs and agent_segs[-1]["end"] is not None:
            wrap_from = agent_segs[-1]["end"]
        attrs = dict(self.attributes)
        attrs.update(self.extra_attrs)
        if self.ivr_outcome:
            attrs["ivr_outcome"] = self.ivr_outcome
        if self.abandoned is not None:
            attrs["abandoned"] = self.abandoned
        if self.ended_by:
            attrs["ended_by"] = self.ended_by
        if self.wrap_up_timed_out:
            attrs["wrap_up_timed_out"] = True
        if self.callback_attempts:
            attrs["callback_attempts"] = self.callback_attempts  # folded in order already
        if self.ivr_data:
            attrs["ivr_data"] = self.ivr_data
        if not self.arrived:
            flags.add("no_arrival_event")  # out of order so far, or lost upstream
        out = dict(r)
        out.update(
            {
                "ivr_s": _dur(r["ivr_ended_at"], ivr_start, flags),
                "wait_s": wait,
                "talk_s": talk,
                "hold_s": hold,
                "wrapup_s": _dur(r["wrapup_ended_at"], wrap_from, flags) if wrap_from else None,
                "ivr_path": self.ivr_path if self.ivr_path is not None else list(self.steps),
                "ivr_inputs": self.inputs,
                "segments": self.segments,
                "outcome": self._outcome(),
                "notes": "\n".join(self.notes),
                "attachments": self.attachments,
                "messages": self.messages,
                "attributes": attrs,
                "flags": sorted(flags),
                "status": "ended" if (r["ended_at"] or r["wrapup_ended_at"]) is not None else "open",
                "sort_ts": r["arrived_at"] if r["arrived_at"] is not None else (self.first_ts or 0.0),
            }
        )
        return out


def identity_keys(record: Mapping[str, Any], default_region: str = "GB") -> list[tuple[str, str]]:
    """Normalized contact points to match a customer by, most specific first."""
    channel = record.get("channel", "")
    attrs = record.get("attributes") or {}
    keys: list[tuple[str, str]] = []

    def add(kind: str, value: str | None) -> None:
        if value and (kind, value) not in keys:
            keys.append((kind, value))

    ani = record.get("ani", "")
    phone = normalize_phone(ani, default_region) if ani else None
    if channel == "email":
        add("email", normalize_email(record.get("from_addr", "")))
    elif channel in WEB_CHANNELS:
        add("web", record.get("web_id") or None)
        add("email", normalize_email(_str(attrs.get("email"))))
        add("phone", normalize_phone(_str(attrs.get("phone")), default_region))
    elif channel == "fax":
        add("fax", phone)
        add("phone", phone)
    else:
        add("phone", phone)
    return keys


def build_record(
    contact_id: str, events: Iterable[Mapping[str, Any]], default_region: str = "GB"
) -> BuiltRecord:
    """Fold ``events`` (any order, duplicates allowed) into the record.

    Returns the record's descriptive columns plus ``event_count``,
    ``content_hash`` and ``given_customer_id`` (the customer the producer
    already named, if any). Identity columns are filled by the store. Events
    of a type this builder does not know are counted and kept in the timeline
    by the store, and change nothing else.
    """
    unique: dict[str, Mapping[str, Any]] = {}
    for ev in events:
        unique.setdefault(_str(ev.get("event_id")), ev)
    fold = _Fold(contact_id, default_region)
    for ev in sorted(unique.values(), key=event_sort_key):
        fold.apply(ev)
    record = fold.result()
    record["event_count"] = len(unique)
    record["content_hash"] = content_hash(record)
    record["given_customer_id"] = fold.given_customer_id
    return cast(BuiltRecord, record)


def content_hash(record: Mapping[str, Any]) -> str:
    body = {
        k: v
        for k, v in record.items()
        if k not in IDENTITY_FIELDS
        and k not in ("content_hash", "pushed_hash", "version", "updated_at", "given_customer_id")
    }
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()
