"""The life of a call's recording, driven by the bus.

Starts: a service whose policy is ``always`` records from the answer (so the IVR is on
it, and a sensitive field pauses it); a queue whose policy is ``always`` from the queue
entry; ``on_demand`` when the agent (or the API) asks. ``never`` refuses. The recording is
anchored on the customer's leg, whose bridge peer is the right channel, so it follows
transfers and holds by itself; holds are marked as intervals.

Pauses (PCI): ``RecordingPaused`` events — from the desk/API (``pause``) or from the IVR
while a field marked ``sensitive`` is collected — make the mixer write silence in both
channels; the intervals come back with the file.

The agent's desk is told live: every change of a call's recording state (started, paused,
resumed — by the agent, a supervisor through the API, or the IVR) goes to the call's agent
as ``{"type": "recording", "contact_id", "recording", "id", "paused", "policy"}`` on the
desk's stream, the same body ``GET /api/contacts/{id}/recording`` answers.

Ends with the contact: the WAV is transcoded to Ogg Opus off the event loop
(transcode.py), verified, stored as an attachment file (crm_bridge/files.py: size,
SHA-256), the WAV removed, and an ``AttachmentAdded`` event puts it in the record with
its duration, channel map, pause and hold intervals. An index entry per recording
(``<dir>/index/<id>.json``) serves playback and the retention purge.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callcenter import events as ev
from callcenter.media.mixer import MixControl
from callcenter.recording.config import RecordingConfig, policy_for
from callcenter.recording.transcode import TranscodeError, to_opus
from callcenter.tasks import BackgroundTasks
from crm_bridge.files import store_path

if TYPE_CHECKING:
    from callcenter.bus import EventBus
    from callcenter.channels.voice import VoiceChannel
    from callcenter.web.hub import Hub

log = logging.getLogger(__name__)
CHANNELS = {"left": "customer", "right": "agent"}
BEEP_HZ, BEEP_S = 1400.0, 0.2


class RecordingRefused(Exception):
    """The policy or the call's state does not allow it (HTTP 409)."""


@dataclass(eq=False)
class Active:
    rec_id: str
    contact_id: str
    ctl: MixControl
    wav: Path
    started_at: float
    service: str
    queue: str | None = None
    agents: list[str] = field(default_factory=list)
    paused_by: set[str] = field(default_factory=set)  # who holds a pause: "ivr", an agent, "api"
    beeper: asyncio.Task[None] | None = None


class RecordingService:
    def __init__(self, cfg: RecordingConfig, bus: EventBus, *, directory: Path, files_dir: Path,
                 hub: Hub | None = None, link_key: bytes | None = None) -> None:  # fmt: skip
        self.cfg = cfg
        self.bus = bus
        self.hub = hub  # the desks, told of their call's recording state (None: nobody to tell)
        self.dir = directory
        self.index_dir = directory / "index"
        self.files_dir = files_dir
        self.voice: VoiceChannel | None = None
        self.active: dict[str, Active] = {}  # by contact id
        self.services: dict[str, str] = {}  # contact id -> service, while the contact lives
        self.tasks = BackgroundTasks(log)
        # signs playback links (api.py): the server passes the one kept in data_dir (wiring.py)
        self.link_key = link_key if link_key is not None else secrets.token_bytes(32)

    def attach(self, voice: VoiceChannel) -> None:
        self.voice = voice
        self.dir.mkdir(parents=True, exist_ok=True)
        self.index_dir.mkdir(parents=True, exist_ok=True)
        types = [ev.ContactArrived, ev.ContactQueued, ev.ContactConnected, ev.ContactHeld,
                 ev.RecordingPaused, ev.ContactEnded, ev.ContactAbandoned]  # fmt: skip
        self.bus.subscribe_inline("recording", self._on_event, types)
        if self.cfg.consent_services:
            voice.ivr.before_flow = self.consent

    # ------------------------------------------------------------------ consent
    async def consent(self, port: Any, contact_id: str) -> None:
        """Before the flow of a service that announces it: the caller hears that the call
        may be recorded (IvrEngine.before_flow)."""
        if self.services.get(contact_id) in self.cfg.consent_services and self.cfg.consent_prompt:
            await port.prompt(text=self.cfg.consent_prompt, audio=None, language="en", barge_in=None)

    # ------------------------------------------------------------------ bus
    def _on_event(self, e: ev.Event) -> None:
        cid = e.contact_id
        if isinstance(e, ev.ContactArrived):
            if e.channel != "voice":
                return
            self.services[cid] = e.service
            if policy_for(self.cfg, e.service, None) == "always":
                self._start(cid, e.service, None)
        elif isinstance(e, ev.ContactQueued):
            service = self.services.get(cid)
            if service is None:
                return
            rec = self.active.get(cid)
            if rec is not None:
                rec.queue = e.queue
            elif policy_for(self.cfg, service, e.queue) == "always":
                self._start(cid, service, e.queue)
        elif isinstance(e, ev.ContactConnected):
            rec = self.active.get(cid)
            if rec is not None and e.agent_id not in rec.agents:
                rec.agents.append(e.agent_id)
        elif isinstance(e, ev.ContactHeld):
            rec = self.active.get(cid)
            if rec is not None:
                rec.ctl.mark("hold", e.on_hold)
        elif isinstance(e, ev.RecordingPaused):
            rec = self.active.get(cid)
            if rec is not None:
                self._apply_pause(rec, e.by or "api", e.paused)
        elif isinstance(e, ev.ContactEnded | ev.ContactAbandoned):
            self.services.pop(cid, None)
            rec = self.active.pop(cid, None)
            if rec is not None:
                self.tasks.spawn(self._finish(rec), f"recording-{rec.rec_id}")

    # ------------------------------------------------------------------ control
    def _anchor(self, contact_id: str) -> Any:
        legs = self.voice.legs.get(contact_id) if self.voice is not None else None
        media = getattr(getattr(legs, "call", None), "media", None)
        if media is None or media.closed:
            raise RecordingRefused("the call has no media (ended, or not a call)")
        return media

    def _start(self, contact_id: str, service: str, queue: str | None) -> Active:
        ctl = MixControl(self._anchor(contact_id))
        rec_id = f"rec-{contact_id}-{int(time.time())}"
        wav = self.dir / f"{rec_id}.wav"
        ctl.start_recording(rec_id, str(wav))
        rec = Active(rec_id, contact_id, ctl, wav, time.time(), service, queue)
        contact = self.voice.core.contacts.get(contact_id) if self.voice is not None else None
        if contact is not None and contact.agent_id:  # started on demand, on a connected call
            rec.agents.append(contact.agent_id)
        self.active[contact_id] = rec
        self._tell(rec)
        log.info("recording %s of contact %s started (%s)", rec_id, contact_id, queue or service,
                 extra={"contact_id": contact_id})  # fmt: skip
        if self.cfg.beep_every_s > 0:
            rec.beeper = self.tasks.spawn(self._beep(rec), f"beep-{rec_id}")
        return rec

    def start(self, contact_id: str, service: str, queue: str | None) -> str:
        """On demand (the desk or the API); refused where the policy says never."""
        if contact_id in self.active:
            return self.active[contact_id].rec_id
        if policy_for(self.cfg, service, queue) == "never":
            raise RecordingRefused(f"calls of {queue or service} are never recorded")
        return self._start(contact_id, service, queue).rec_id

    def pause(self, contact_id: str, on: bool, by: str) -> None:
        """PCI pause/resume from the desk or the API: an event, so the record lists it."""
        if contact_id not in self.active:
            raise RecordingRefused("the call is not being recorded")
        self.bus.publish(ev.RecordingPaused(contact_id=contact_id, paused=on, by=by,
                                            reason="pci" if on else ""))  # fmt: skip

    def _apply_pause(self, rec: Active, by: str, on: bool) -> None:
        was = bool(rec.paused_by)
        if on:
            rec.paused_by.add(by)
        else:
            rec.paused_by.discard(by)
            if by != "ivr":
                rec.paused_by -= {b for b in rec.paused_by if b != "ivr"}  # any agent/API resume
        if bool(rec.paused_by) != was:
            rec.ctl.pause(bool(rec.paused_by))
            self._tell(rec)

    def _tell(self, rec: Active) -> None:
        """The call's agent's desk: the recording's state now (whoever changed it)."""
        contact = self.voice.core.contacts.get(rec.contact_id) if self.voice is not None else None
        if self.hub is None or contact is None or not contact.agent_id:
            return  # in the IVR: the desk asks when the call reaches it
        self.hub.to_agent(contact.agent_id, {
            "type": "recording", "contact_id": rec.contact_id, **self.state(rec.contact_id),
            "policy": policy_for(self.cfg, rec.service, rec.queue)})  # fmt: skip

    def state(self, contact_id: str) -> dict[str, Any]:
        rec = self.active.get(contact_id)
        if rec is None:
            return {"recording": False}
        return {"recording": True, "id": rec.rec_id, "paused": bool(rec.paused_by)}

    async def _beep(self, rec: Active) -> None:
        """The periodic beep: a short tone to both parties (a prompt on each leg takes the
        floor from the bridge for 200 ms; not while the customer is held or in the IVR)."""
        import numpy as np

        n = int(8000 * BEEP_S)
        pcm = (3000 * np.sin(2 * np.pi * BEEP_HZ * np.arange(n) / 8000)).astype("<i2").tobytes()
        while True:
            await asyncio.sleep(self.cfg.beep_every_s)
            legs = self.voice.legs.get(rec.contact_id) if self.voice is not None else None
            if legs is None or legs.agent_call is None or legs.call.media.bridged_to is None:
                continue
            for media in (legs.call.media, legs.agent_call.media):
                with contextlib.suppress(Exception):
                    self.tasks.spawn(media.play(pcm), "beep")

    # ------------------------------------------------------------------ the end
    async def _finish(self, rec: Active) -> None:
        if rec.beeper is not None:
            rec.beeper.cancel()
        result = await rec.ctl.finish(rec.rec_id)
        if result is None:
            log.error("recording %s of contact %s: no file came back from the media worker",
                      rec.rec_id, rec.contact_id)  # fmt: skip
            return
        wav = Path(result["path"])
        opus = wav.with_suffix(".opus")
        try:
            seconds = await to_opus(wav, opus, self.cfg.bitrate_kbps)
            stored = await asyncio.to_thread(store_path, self.files_dir, opus)
        except (TranscodeError, OSError) as exc:
            # the WAV stays: nothing is lost, and the record still points at a playable file
            log.error("recording %s: transcode failed, keeping the WAV: %s", rec.rec_id, exc)
            opus.unlink(missing_ok=True)
            self._publish(rec, result, "wav", wav, None, result["duration_s"])
            return
        opus.unlink(missing_ok=True)
        wav.unlink(missing_ok=True)
        self._publish(rec, result, "opus", self.files_dir / stored.path, stored, seconds)

    def _publish(self, rec: Active, result: dict[str, Any], fmt: str, path: Path,
                 stored: Any, seconds: float) -> None:  # fmt: skip
        from crm_bridge.files import hash_file

        size, sha = (stored.size, stored.sha256) if stored is not None else hash_file(path)
        intervals = result.get("intervals") or {}
        attachment = {
            "kind": "call_recording", "id": rec.rec_id,
            "name": f"{rec.rec_id}.{'ogg' if fmt == 'opus' else 'wav'}",
            "path": stored.path if stored is not None else str(path), "format": fmt,
            "content_type": "audio/ogg" if fmt == "opus" else "audio/wav",
            "size": size, "sha256": sha, "duration_s": round(seconds, 3), "channels": CHANNELS,
            "paused": intervals.get("pause", []), "hold": intervals.get("hold", []),
            "started_at": rec.started_at, "agents": rec.agents,
        }
        index = {**attachment, "contact_id": rec.contact_id, "file": str(path)}
        (self.index_dir / f"{rec.rec_id}.json").write_text(json.dumps(index))
        self.bus.publish(ev.AttachmentAdded(contact_id=rec.contact_id, attachment=attachment))
        log.info("recording %s of contact %s stored: %s, %d bytes, %.1f s", rec.rec_id, rec.contact_id,
                 fmt, size, seconds, extra={"contact_id": rec.contact_id})  # fmt: skip

    def entry(self, rec_id: str) -> dict[str, Any] | None:
        """A stored recording's index entry (None: unknown or purged)."""
        if "/" in rec_id or not rec_id.startswith("rec-"):
            return None
        try:
            data: dict[str, Any] = json.loads((self.index_dir / f"{rec_id}.json").read_text())
        except (OSError, ValueError):
            return None
        return data

    async def close(self) -> None:
        """Finish what is running (the server is stopping: every call got its BYE)."""
        for cid in list(self.active):
            rec = self.active.pop(cid)
            await self._finish(rec)
        await self.tasks.close()
