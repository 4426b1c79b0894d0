"""An agent without a registered phone is not voice-available (issue 19, item 4): routing's
figures and estimated wait do not count them, so the IVR offers a callback instead of
promising an agent who cannot be reached; and registrations survive a server restart."""

from __future__ import annotations

import math
from typing import Any

from callcenter import events as ev
from callcenter.center import Center
from tests.support.peers import ROOT, watch
from tests.support.polling import eventually

ALAN = "+441632960002"  # demo customer, standard tier


async def test_an_available_agent_without_a_phone_is_not_counted(rig: Any) -> None:
    log = watch(rig)
    await rig.desktop("1002")  # Bob (support), Available, but no phone registered
    router = rig.center.router
    stats = router.queue_stats("support")
    assert (stats.staffed, stats.available) == (0, 0)
    assert math.isinf(router.estimated_wait(queue="support"))
    me = next(a for a in rig.center.supervisor_snapshot()["agents"] if a["agent_id"] == "1002")
    assert (me["state"], me["softphone"]) == ("available", False)

    # The IVR's wait check no longer sees a free agent: the caller is offered a callback.
    caller = await rig.caller()
    call = await caller.call("5000", rig.sip, ani=ALAN)
    call.media.send_dtmf("2")  # support
    await log.wait(ev.BranchTaken, step="support_wait", target="offer_callback")
    await call.hangup()

    await rig.phone("1002")
    device = await log.wait(ev.AgentDeviceChanged, agent_id="1002")
    assert device.softphone is True
    stats = router.queue_stats("support")
    assert (stats.staffed, stats.available) == (1, 1)
    assert router.estimated_wait(queue="support") == 0


async def test_registrations_survive_a_restart(rig: Any) -> None:
    phone = await rig.phone("1003")  # re-registers only every 600 s
    assert rig.center.router.agents["1003"].softphone
    cfg = rig.center.cfg
    await rig.center.stop()
    assert (rig.center.data_dir / "sip-bindings.json").is_file()

    rig.center = Center(cfg, flows_dir=ROOT / "ivr_flows")  # the rig's teardown stops this one
    await rig.center.start()
    assert rig.center.router.agents["1003"].softphone  # at once: restored, not re-registered
    assert await rig.center.registrar.is_registered("1003")

    # And the restored binding reaches the phone: a call to sales is answered by baresip.
    log = watch(rig)
    await rig.desktop("1003")
    caller = await rig.caller()
    call = await caller.call("5000", rig.sip, ani=ALAN)
    call.media.send_dtmf("3")  # sales
    cid = (await log.wait(ev.ContactQueued)).contact_id
    await log.wait(ev.ContactConnected, contact_id=cid, agent_id="1003")
    await phone.wait_event(lambda e: e.get("type") == "CALL_ESTABLISHED")
    await call.hangup()
    await eventually(lambda: not rig.center.ua.calls, 20, what="calls over")
