"""Helpers for the browser test: Debian's Chromium driven by Playwright, and the workspace's
deployments served on a test server.

Chromium is the system one (/usr/bin/chromium, never a downloaded browser), headless, with a fresh
profile in a temporary directory. The deployments are served by ``tests.prefect_cli.
deployments_served`` with a long health interval, so the runner is free for the test's runs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TERMINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


@contextmanager
def chromium(profile: Path, timeout_ms: float = 60_000) -> Iterator[Any]:
    """Yield a page of a headless system Chromium with a fresh profile (user-data-dir)."""
    from playwright.sync_api import sync_playwright

    profile.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        try:
            context.set_default_timeout(timeout_ms)
            context.set_default_navigation_timeout(timeout_ms)
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def form_labels(page: Any) -> list[str]:
    """The parameter labels of a Prefect UI schema form, without the ' (Optional)' suffix."""
    texts = page.locator(".schema-form-property__label").all_inner_texts()
    return [re.sub(r"\s*\(Optional\)$", "", t.strip()) for t in texts]


def form_field(page: Any, label: str) -> Any:
    """The input of the schema form property labelled ``label`` (a textarea for strings)."""
    title = page.locator(".schema-form-property__label").filter(
        has_text=re.compile(rf"^\s*{re.escape(label)}(\s*\(Optional\))?\s*$"))
    return page.locator(".schema-form-property").filter(has=title).locator(
        "textarea, input").first


def open_run_menu_item(page: Any, item: str, tries: int = 5) -> None:
    """Open the deployment page's "Run" menu and click ``item``; a click that lands before the
    page is interactive opens nothing, so click again until the menu shows."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    entry = page.get_by_text(item, exact=True)
    for _ in range(tries):
        if not entry.is_visible():
            page.get_by_role("button", name="Run", exact=True).click()
        try:
            entry.wait_for(state="visible", timeout=5_000)
            break
        except PlaywrightTimeout:
            continue
    entry.click()


def submit_form(page: Any, tries: int = 4, timeout_s: float = 60) -> Any:
    """Click the form's Submit and return the UI's ``create_flow_run`` response.

    The test server keeps its state in SQLite; on a loaded machine it may answer 503 ("database
    is locked") to the validation or creation request. The form stays as it was, so, like the
    Prefect client does for 503s and an operator would, submit again (nothing was created)."""
    seen: list[Any] = []

    def watch(response: Any) -> None:
        if "/api/ui/schemas/validate" in response.url or response.url.endswith("/create_flow_run"):
            seen.append(response)

    page.on("response", watch)
    try:
        for _ in range(tries):
            seen.clear()
            page.get_by_role("button", name="Submit", exact=True).click()
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                page.wait_for_timeout(200)                  # lets Playwright dispatch events
                created = [r for r in seen if r.url.endswith("/create_flow_run")]
                if created and created[-1].status < 500:
                    return created[-1]
                if any(r.status >= 500 for r in seen):
                    break
            else:
                raise AssertionError(f"the UI sent no create_flow_run within {timeout_s:g} s "
                                     f"(saw {[(r.url, r.status) for r in seen]})")
            page.wait_for_timeout(2_000)
        raise AssertionError(f"create_flow_run kept failing: {[(r.url, r.status) for r in seen]}")
    finally:
        page.remove_listener("response", watch)
