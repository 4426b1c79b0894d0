"""The customer's chat page and the agent's desk in two chromium contexts, chatting through
the real server: pre-chat, self-service, hand-over, both ways with typing, canned lines,
markup shown as text on both pages, a reload that resumes the chat, end and wrap-up; the
message form when nobody is signed in; the widget on a site that may not use it."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from playwright.async_api import expect

from tests.support import eventually
from tests.webchat.conftest import connected_chat, record_of

T = 30_000  # ms: the bound of every wait on a page
W = "#cc-chat-widget"  # the widget's host; Playwright's CSS reaches into its shadow root
GREETING = "Hello, thanks for contacting us. How can I help you today?"  # webchat.yaml canned "greeting"
AWAY = "Said while you were away"
MARKUP = '<img src=x onerror="window.__pwned=1">bold <b>move</b>'


async def agent_desk(page: Any, base: str, user: str = "1002") -> None:
    await page.goto(f"{base}/desk")
    await page.fill("#login-username", user)
    await page.fill("#login-password", f"demo-{user}")
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#link")).to_have_text("live", timeout=T)
    await page.click("#btn-available")
    await expect(page.locator("#state")).to_have_text("Available", timeout=T)


async def test_customer_and_agent_chat_through_the_server(chat_rig: Any, new_page: Any) -> None:
    rig = await chat_rig()
    agent = await new_page()
    await agent_desk(agent, rig.http)
    customer = await new_page()
    await customer.goto(f"{rig.http}/chat")

    # Pre-chat form, then self-service.
    await customer.fill(f"{W} #pre-name", "Grace Hopper")
    await customer.fill(f"{W} #pre-email", "grace@example.com")
    await customer.select_option(f"{W} #pre-topic", "support")
    await customer.click(f"{W} #pre-start")
    bot = customer.locator(f"{W} .line.bot .text")
    await expect(bot.first).to_contain_text("Hello Grace", timeout=T)
    await customer.click(f'{W} button[data-faq="delivery"]')
    await expect(bot.nth(1)).to_contain_text("2-4 working days", timeout=T)
    await customer.click(f"{W} #talk-to-person")

    # The desk: the chat is offered with what the customer asked; Accept.
    item = agent.locator('.work-item[data-channel="chat"]')
    await expect(item).to_have_count(1, timeout=T)
    await item.locator(".work-select").click()
    panel = agent.locator(".chat-view")
    await expect(panel.locator(".chat-steps")).to_contain_text("2-4 working days", timeout=T)
    await expect(panel.locator(".chat-email")).to_have_text("grace@example.com")
    await item.locator(".work-accept").click()
    await expect(customer.locator(f"{W} #title")).to_have_text("Chat with Bob Baker", timeout=T)

    # Customer → agent, with the typing indicator, markup arriving as text.
    await customer.fill(f"{W} #input", MARKUP)
    await expect(panel.locator(".chat-typing")).to_be_visible(timeout=T)
    await customer.press(f"{W} #input", "Enter")
    seen = panel.locator(".chat-line.customer .chat-text")
    await expect(seen.last).to_have_text(MARKUP, timeout=T)
    assert await panel.locator("img, b").count() == 0
    await expect(panel.locator(".chat-typing")).to_be_hidden()

    # Agent → customer: a canned line, then markup; typing shows on the customer's side.
    await panel.locator(".chat-canned").select_option("greeting")
    await expect(panel.locator(".chat-input")).to_have_value(GREETING)
    await panel.locator(".chat-send").click()
    said = customer.locator(f"{W} .line.agent .text")
    await expect(said.last).to_have_text(GREETING, timeout=T)
    await panel.locator(".chat-input").fill(MARKUP)
    await expect(customer.locator(f"{W} #typing")).to_be_visible(timeout=T)
    await panel.locator(".chat-send").click()
    await expect(said.last).to_have_text(MARKUP, timeout=T)
    assert await customer.locator(f"{W} img, {W} b").count() == 0
    when = customer.locator(f"{W} .line.agent .when").last
    await expect(when).to_have_text(re.compile(r"\d\d:\d\d"), timeout=T)
    assert await customer.evaluate("window.__pwned") is None
    assert await agent.evaluate("window.__pwned") is None

    # The customer's page goes away and comes back: the chat resumes with the line said meanwhile.
    await customer.goto("about:blank")
    cid = await panel.get_attribute("data-contact-id")
    await eventually(lambda: rig.center.webchat.session_of(cid).socket is None, 10)
    await panel.locator(".chat-input").fill(AWAY)
    await panel.locator(".chat-send").click()
    await expect(panel.locator(".chat-line.agent .chat-text").last).to_have_text(AWAY, timeout=T)
    await customer.goto(f"{rig.http}/chat")
    await expect(said.last).to_have_text(AWAY, timeout=T)
    await expect(customer.locator(f"{W} #panel")).to_have_attribute("data-state", "connected")

    # The customer ends; the agent wraps up; the record holds the whole transcript.
    await customer.click(f"{W} #end")
    await expect(customer.locator(f"{W} #panel")).to_have_attribute("data-state", "ended", timeout=T)
    await expect(agent.locator("#task-wrapup-form")).to_be_visible(timeout=T)
    await agent.select_option("#task-wrapup-disposition", "resolved")
    await agent.click("#task-wrapup-submit")

    async def wrapped() -> Any:
        rec = await record_of(rig, cid)
        return rec if rec is not None and rec["disposition"] == "resolved" else None

    record = await eventually(wrapped, 15)
    texts = [(m["meta"]["from"], m["text"]) for m in record["messages"]]
    assert ("customer", MARKUP) in texts and ("agent", MARKUP) in texts
    assert ("agent", AWAY) in texts
    assert customer.errors == [] and agent.errors == []


async def test_the_message_form_when_nobody_can_chat(chat_rig: Any, new_page: Any) -> None:
    rig = await chat_rig()  # nobody signed in
    customer = await new_page()
    await customer.goto(f"{rig.http}/chat")
    await expect(customer.locator(f"{W} #offline-why")).to_contain_text("No one is available", timeout=T)
    await customer.fill(f"{W} #off-name", "Ada Lovelace")
    await customer.fill(f"{W} #off-email", "ada@example.com")
    await customer.fill(f"{W} #off-message", "Please send the engine notes again.")
    await customer.click(f"{W} #off-send")
    done = customer.locator(f"{W} #offline-done")
    await expect(done).to_contain_text("we have your message", timeout=T)
    cid = await done.get_attribute("data-interaction")
    record = await eventually(lambda: record_of(rig, cid), 10)
    assert record["channel"] == "webform"
    assert record["messages"][0]["text"] == "Please send the engine notes again."
    assert customer.errors == []


async def foreign_site(html: str) -> Any:
    """A minimal HTTP server on another loopback port: the foreign site embedding the widget
    (a real server, since chromium treats a page without an address as public and then refuses
    its requests to loopback)."""
    body = html.encode()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def test_the_widget_on_a_site_that_may_not_use_it(chat_rig: Any, new_page: Any) -> None:
    rig = await chat_rig()
    page = await new_page()
    tag = f'<script src="{rig.http}/chat/widget.js" data-open="true"></script>'
    server = await foreign_site(f"<!doctype html><title>shop</title>{tag}")
    try:
        port = server.sockets[0].getsockname()[1]
        await page.goto(f"http://127.0.0.1:{port}/")  # another origin: not in allowed_origins
        refused = "Chat is not available on this site."
        await expect(page.locator(f"{W} #status")).to_have_text(refused, timeout=T)
        assert await page.locator(f"{W} #prechat").count() == 0
    finally:
        server.close()
        await server.wait_closed()


async def test_supervisor_sees_web_queues_and_load(chat_rig: Any, new_page: Any, customers: Any) -> None:
    rig = await chat_rig()
    bob = await rig.desktop("1002")
    await connected_chat(rig, await customers(rig), bob)
    await connected_chat(rig, await customers(rig), bob)
    page = await new_page()
    await page.goto(f"{rig.http}/supervisor")
    await page.fill("#login-username", "supervisor")
    await page.fill("#login-password", "demo-supervisor")
    await page.click("#login-form button[type=submit]")
    row = page.locator('#web-agents tr[data-agent="1002"] .web-load')
    await expect(row).to_have_text("2 / 3", timeout=T)
    await expect(page.locator('#web-queues tr[data-queue="support"]')).to_be_visible()
    await expect(page.locator("#web-sessions")).to_contain_text("2 customers connected")


async def test_desk_holds_two_chats_with_unread_counts(chat_rig: Any, new_page: Any, customers: Any) -> None:
    rig = await chat_rig()
    agent = await new_page()
    await agent_desk(agent, rig.http)
    first, second = await customers(rig), await customers(rig)
    for customer in (first, second):
        await customer.connect()
        await customer.start_chat()
        await customer.send(type="agent")
    items = agent.locator('.work-item[data-channel="chat"]')
    await expect(items).to_have_count(2, timeout=T)
    for i in range(2):
        await items.nth(i).locator(".work-accept").click()
        await expect(items.nth(i)).to_have_attribute("data-phase", "connected", timeout=T)
    await items.nth(0).locator(".work-select").click()
    shown = await agent.locator("#channel-panel").get_attribute("data-contact-id")
    other = await items.nth(1).get_attribute("data-contact-id")
    assert shown != other
    chats = rig.center.webchat
    writer = first if chats.session_of(other) is chats.sessions[first.token] else second
    await writer.send(type="say", text="Hello from the other chat", client_id="u1")
    other_item = agent.locator(f'.work-item[data-contact-id="{other}"]')
    await expect(other_item.locator(".chat-unread")).to_have_text("1", timeout=T)
    await other_item.locator(".work-select").click()
    await expect(agent.locator(".chat-view .chat-line.customer .chat-text").last).to_have_text(
        "Hello from the other chat", timeout=T)  # fmt: skip
    await expect(other_item.locator(".chat-unread")).to_have_count(0)
    assert agent.errors == []
