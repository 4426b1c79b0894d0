"""The supervisor page in a real browser: live agent states from the WebSocket, the queue
table, changing an agent's state from the page, and routing decisions as they happen."""

from __future__ import annotations

from typing import Any

from browser_rig import PageErrors, artifacts, playwright_api, watch

from callcenter import events as ev

pw = playwright_api()
expect = pw.expect

ALAN = "+441632960002"  # demo standard customer
T = 30_000  # ms


async def test_supervisor_sees_live_states_queues_and_decisions(rig: Any, new_page: Any) -> None:
    log = watch(rig)
    page = await new_page()
    errors = PageErrors(page)
    # Everything comes over the WebSocket (test_supervisor_live.py refuses the REST snapshot
    # throughout); refusing it while the state changes proves the page got it from the stream.
    refused: list[str] = []

    async def refuse(route: Any) -> None:
        refused.append(route.request.url)
        await route.abort()

    await page.route("**/api/supervisor/snapshot", refuse)

    await page.goto(f"{rig.http}/")  # / redirects to the agent desk...
    await expect(page).to_have_url(f"{rig.http}/desk")
    await page.goto(f"{rig.http}/supervisor")
    # A wrong password and an agent's account are both turned away at the form.
    for user, password, why in [("supervisor", "wrong", "invalid username or password"),
                                ("1001", "demo-1001", "This page is for supervisors")]:  # fmt: skip
        await page.fill("#login-username", user)
        await page.fill("#login-password", password)
        await page.click("#login-form button[type=submit]")
        await expect(page.locator("#login-error")).to_contain_text(why, timeout=T)
        await expect(page.locator("#board")).to_be_hidden()
    errors.items = [e for e in errors.items if not e.endswith("/api/login")]  # the refused login: 401
    # The agent's sign-in at the wrong page is undone: 1001 is not left logged in to routing.
    await log.wait(ev.AgentStateChanged, agent_id="1001", new="offline")
    assert str(rig.center.router.agent_state("1001")) == "offline"
    await page.fill("#login-username", "supervisor")
    await page.fill("#login-password", "demo-supervisor")
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#link")).to_have_text("live", timeout=T)

    carol = page.locator('#agent-rows tr[data-agent="1003"]')
    await expect(carol.locator(".c-agent")).to_have_text("Carol Clark (1003)", timeout=T)
    await expect(carol.locator(".c-state")).to_have_text("Offline")
    sales = page.locator('#queue-rows tr[data-queue="sales"]')
    await expect(sales.locator(".c-name")).to_have_text("sales", timeout=T)
    await expect(sales.locator(".c-waiting")).to_have_text("0")
    await expect(sales.locator(".c-staff")).to_have_text("0/0")

    # The agent signs in and goes available through the API (not through any page).
    desk = await rig.desktop("1003")
    await expect(carol.locator(".c-state")).to_have_text("Available — no phone", timeout=T)  # none registered
    await expect(carol).to_have_attribute("data-state", "available")
    await expect(carol.locator(".c-reason")).to_have_text("")

    # The supervisor puts the agent on not ready from the page; the agent's own stream
    # and the router agree.
    await page.unroute("**/api/supervisor/snapshot")
    await carol.locator(".c-target").select_option("not_ready")
    await carol.locator(".c-reason-in").fill("coaching")
    await carol.locator(".c-apply").click()
    await desk.wait(lambda m: m["type"] == "agent_state" and m["state"] == "not_ready")
    await log.wait(ev.AgentStateChanged, agent_id="1003", new="not_ready", reason="coaching")
    assert str(rig.center.router.agent_state("1003")) == "not_ready"
    await expect(carol.locator(".c-state")).to_have_text("Not ready", timeout=T)
    await expect(carol.locator(".c-reason")).to_have_text("(Coaching)")

    # A call into sales with nobody available: the decision appears, with its explanation,
    # and the pushed queue figures count the waiting caller.
    caller = await rig.caller()
    call = await caller.call("5000", rig.sip, ani=ALAN)
    call.media.send_dtmf("3")
    queued = await log.wait(ev.ContactQueued)
    assert queued.queue == "sales"
    await page.click("#decisions-box summary")  # the decision log is collapsed: not the main content
    decision = page.locator(f'#decisions li[data-task="{queued.contact_id}"]').first
    await expect(decision).to_be_visible(timeout=T)
    await expect(decision.locator(".explanation")).not_to_be_empty()
    await expect(sales.locator(".c-waiting")).to_have_text("1", timeout=T)
    await expect(sales).to_have_attribute("data-waiting", "yes")

    await call.hangup()
    await log.wait(ev.ContactAbandoned, contact_id=queued.contact_id)
    await expect(sales.locator(".c-waiting")).to_have_text("0", timeout=T)
    await expect(sales.locator(".c-abandon")).not_to_have_text("—", timeout=T)

    await page.screenshot(path=str(artifacts("supervisor-page") / "board.png"), full_page=True)
    assert errors.items == []
