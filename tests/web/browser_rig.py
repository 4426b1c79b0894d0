"""A real headless browser (Debian's chromium driven by Playwright) for the web-page tests,
plus a bus recorder to check what the server saw while the page was clicked.

Playwright's wheel carries its driver; the browser is the system one (``apt-get install
chromium``), never one downloaded by ``playwright install``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.support import unavailable

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # runs as root in the container
    "--disable-background-networking",  # no calls home: tests stay on 127.0.0.1
    "--disable-gpu",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}



ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def artifacts(name: str) -> Path:
    """A folder under test-artifacts/ (git-ignored, kept after the run) for a test's screenshots."""
    folder = ARTIFACTS / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder

def playwright_api() -> ModuleType:
    try:
        import playwright.async_api as api
    except ImportError:
        unavailable("the playwright Python package", "pip install playwright")
    return api


def chromium_path() -> str:
    """``$CHROMIUM`` if set, else Debian's /usr/bin/chromium (or chromium on PATH)."""
    configured = os.environ.get("CHROMIUM")
    candidates = [configured] if configured else ["/usr/bin/chromium", shutil.which("chromium")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    unavailable("chromium", configured or "apt-get install chromium")


class PageErrors:
    """Uncaught exceptions and console errors of a page: a clean run has none."""

    def __init__(self, page: Any) -> None:
        self.items: list[str] = []
        page.on("pageerror", lambda exc: self.items.append(f"pageerror: {exc}"))
        page.on("console", self._console)
        page.on("response", self._response)

    def _console(self, msg: Any) -> None:
        # Failed loads are reported with their URL by _response; a request the test aborted
        # on purpose (page.route(...).abort()) is the test's doing, not the page's.
        text = msg.text
        if msg.type == "error" and "Failed to load resource" not in text:
            self.items.append(f"console: {text}")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.items.append(f"HTTP {response.status}: {response.url}")


def watch(rig: Any) -> Any:
    """The callpath tests' bus recorder (tests/support/peers.py), named for these tests."""
    from tests.support.peers import watch as record

    return record(rig, name="web-test")


async def supervisor_signed_in(page: Any, http: str, path: str = "/supervisor") -> None:
    """Open the supervisor board at ``path``, sign in as the demo supervisor, wait until live."""
    await page.goto(f"{http}{path}")
    await page.fill("#login-username", "supervisor")
    await page.fill("#login-password", "demo-supervisor")
    await page.click("#login-form button[type=submit]")
    await playwright_api().expect(page.locator("#link")).to_have_text("live", timeout=30_000)
