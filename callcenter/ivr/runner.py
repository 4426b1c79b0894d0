"""The IVR's async shell: drives a FlowStepper against a CallPort and Lookups.

All waiting happens here (media, CRM, routing estimates); all deciding
happens in the stepper. A caller hanging up (``CallEnded``) ends the walk
with outcome ``hangup``; a failing lookup counts as "not found" — the CRM
being down must not drop calls. ``IvrEngine.run`` hands its caller (the
voice channel) the result with the outcome as an :class:`IvrOutcome`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from callcenter.events import Event, FlowEntered, IvrCompleted
from callcenter.ivr.flows import FlowSet
from callcenter.ivr.ports import CallEnded, CallPort, Lookups, NoLookups
from callcenter.ivr.services import ServicesConfig
from callcenter.ivr.stepper import (
    Action,
    CollectAction,
    Done,
    FlowStepper,
    HangupAction,
    IvrResult,
    LookupAction,
    PromptAction,
    RecordAction,
    TransferAction,
)
from callcenter.speech.interfaces import TextToSpeech

log = logging.getLogger(__name__)


class IvrOutcome(StrEnum):
    """How a flow ended, as the contact core acts on it."""

    QUEUED = "queued"  # to a routing queue
    CALLBACK = "callback"  # took a number to call back, and hung up
    SELF_SERVED = "self_served"  # the flow did all the caller needed
    VOICEMAIL = "voicemail"
    TRANSFERRED = "transferred"  # bridged to an outside number
    HANGUP = "hangup"  # the caller (or the flow) hung up
    APP = "app"  # a built-in app serves the call, not a flow


def utc_now() -> datetime:
    return datetime.now(UTC)


async def perform(action: Action, port: CallPort, lookups: Lookups) -> Any:
    """Carry out one stepper action; the return value is what the stepper expects."""
    if isinstance(action, PromptAction):
        return await port.prompt(text=action.text, audio=action.audio, language=action.language,
                                 barge_in=action.barge_in)  # fmt: skip
    if isinstance(action, CollectAction):
        return await port.collect(action.spec, initial=action.initial)
    if isinstance(action, LookupAction):
        try:
            if action.what == "customer_by_ani":
                return await lookups.customer_by_ani(action.key)
            if action.what == "customer_by_account":
                return await lookups.customer_by_account(action.key)
            if action.what == "order_status":
                return await lookups.order_status(action.key, action.customer_id)
            return await lookups.queue_estimated_wait(action.key)
        except Exception:
            log.exception("IVR lookup %s(%r) failed; treating as not found", action.what, action.key)
            return None
    if isinstance(action, RecordAction):
        Path(action.path).parent.mkdir(parents=True, exist_ok=True)
        return await port.record(action.path, max_seconds=action.max_seconds, beep=action.beep)
    if isinstance(action, TransferAction):
        return await port.transfer(action.uri)
    if isinstance(action, HangupAction):
        await port.hangup()
        return None
    raise TypeError(f"unknown action {action!r}")


async def drive(stepper: FlowStepper, port: CallPort, lookups: Lookups) -> IvrResult:
    action = stepper.start()
    while not isinstance(action, Done):
        try:
            result = await perform(action, port, lookups)
        except CallEnded:
            return stepper.caller_hung_up()
        action = stepper.send(result)
    return action.result


class IvrEngine:
    """Everything a call needs to run its service's flow.

    One engine per process; ``run`` per call. ``emit`` is usually
    ``bus.publish``; ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        flows: FlowSet,
        services: ServicesConfig,
        *,
        emit: Callable[[Event], None],
        lookups: Lookups | None = None,
        clock: Callable[[], datetime] = utc_now,
        voicemail_dir: Path | str = "var/voicemail",
    ) -> None:
        missing = services.flow_names() - set(flows.flows) - BUILTIN_APPS
        if missing:
            raise ValueError(f"services refer to flows that are not loaded: {sorted(missing)}")
        self.flows = flows
        self.services = services
        self.emit = emit
        self.lookups = lookups or NoLookups()
        self.clock = clock
        self.voicemail_dir = Path(voicemail_dir)
        # Run before every flow (callcenter/recording: the recording consent announcement).
        self.before_flow: Callable[[CallPort, str], Awaitable[None]] | None = None

    def path_titles(self, path: tuple[str, ...], dnis: str) -> tuple[str, ...]:
        """The call's IVR path in words, for the agent: each step's title, else its id."""
        entry = self.services.resolve(dnis).flow
        return tuple(self.flows.step_title(label, entry) for label in path)

    def stepper(self, *, contact_id: str, ani: str, dnis: str) -> FlowStepper:
        service = self.services.resolve(dnis)
        return FlowStepper(
            self.flows,
            service,
            contact_id=contact_id,
            ani=ani,
            dnis=dnis,
            clock=self.clock,
            emit=self.emit,
            language_skills=self.services.language_skills,
            voicemail_dir=self.voicemail_dir,
        )

    async def prerender(self, tts: TextToSpeech) -> int:
        """Render every static prompt (no ``{variables}``) into the TTS cache; returns the count.

        Run it at start-up (or as a background task): the first caller then hears
        cached audio. Texts given for one language are rendered in that language;
        plain texts in each service's default language.
        """
        wanted: set[tuple[str, str]] = set()
        defaults = {s.languages.default for s in self.services.services.values()}
        for lang, texts in self.flows.static_prompts().items():
            for text in texts:
                for language in [lang] if lang else sorted(defaults):
                    wanted.add((text, language))
        for text, language in sorted(wanted):
            try:
                await tts.render(text, language=language)
            except Exception:  # one bad prompt must not stop start-up; it renders on demand later
                log.exception("could not pre-render prompt %r (%s)", text, language)
        return len(wanted)

    def is_builtin(self, dnis: str) -> bool:
        """True when the DNIS maps to a built-in app (e.g. ``echo``), not a YAML flow."""
        return self.services.resolve(dnis).flow in BUILTIN_APPS

    async def run(self, port: CallPort, *, contact_id: str) -> IvrResult:
        """Run the call's service flow. A service mapped to a built-in app (``echo``) is
        not run here: the result has outcome ``app`` and ``variables['app']`` names it.
        The result's ``outcome`` is an :class:`IvrOutcome` (a ``str`` too, as the stepper's is)."""
        service = self.services.resolve(port.dnis)
        if service.flow in BUILTIN_APPS:
            ts = self.clock().timestamp()
            self.emit(FlowEntered(contact_id=contact_id, ts=ts, flow=service.flow,
                                  language=service.languages.default))  # fmt: skip
            path = (service.flow,)
            self.emit(IvrCompleted(contact_id=contact_id, ts=ts, outcome="app", path=path,
                                   data={"service": service.name, "app": service.flow}))  # fmt: skip
            return IvrResult(outcome=IvrOutcome.APP, path=path, variables={"app": service.flow})
        stepper = self.stepper(contact_id=contact_id, ani=port.ani, dnis=port.dnis)
        if self.before_flow is not None:
            # a hang-up here: the flow's first step finds the caller gone, ends as a hang-up
            with contextlib.suppress(CallEnded):
                await self.before_flow(port, contact_id)
        result = await drive(stepper, port, self.lookups)
        return dataclasses.replace(result, outcome=IvrOutcome(result.outcome))


# Service flows handled by Python apps in callcenter/apps, not by YAML (the lead wires them).
BUILTIN_APPS = frozenset({"echo", "fax"})  # fax: callcenter/fax/wiring.py answers it
