"""The review flow as a person does it, in a real browser (Debian's Chromium driven by Playwright): sign in, filter,
open a decision, mark a false flag with the keyboard, see it counted; the playground. Screenshots of the main pages go
to artefacts/console/ (kept out of git)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import ProxyFactory
from tests.console.helpers import CONVERSATIONS, console_proxy, send_conversations, set_audit, wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Page

ARTEFACTS = Path(__file__).resolve().parents[2] / "artefacts" / "console"


def _chromium() -> str:
    for candidate in (os.environ.get("HEEDFUL_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    raise RuntimeError("chromium is not installed; scripts/setup.sh installs Debian's chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=_chromium(), args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


def keys_ready(page: Page) -> None:
    """Wait until console.js listens for keys: a key pressed while the page still loads is dropped."""
    page.wait_for_selector("html[data-keys=ready]", state="attached")


def test_review_flow_in_chromium(browser: object, make_proxy: ProxyFactory, policy_dir: Path,
                                 tokens: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    set_audit(policy_dir, "    include_texts: true\n")
    file, clear = tokens
    # Secure cookies as in production: Chromium sends them to localhost over plain HTTP.
    server = console_proxy(make_proxy, f"sqlite:///{tmp_path / 'console.db'}", file, console_secure_cookies=True)
    send_conversations(server)
    wait_for(server, len(CONVERSATIONS), clear["viewer"])
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    base = f"http://localhost:{server.port}/console"

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/login?next=/console/")  # no anonymous access
    page.screenshot(path=str(ARTEFACTS / "login.png"))
    page.fill("#token", clear["reviewer"])
    page.click("#sign-in")
    expect(page.locator("#who")).to_have_text("reviewer-person (reviewer)")
    expect(page.locator("#total")).to_have_text(str(len(CONVERSATIONS)))
    page.screenshot(path=str(ARTEFACTS / "decisions.png"), full_page=True)

    page.select_option("#filter-rule", "repair-pacification")
    page.click("#apply-filters")
    expect(page.locator("#total")).to_have_text("1")
    keys_ready(page)
    page.keyboard.press("j")
    page.keyboard.press("Enter")  # open the decision from the keyboard
    expect(page.locator("#rule")).to_have_text("repair-pacification")
    expect(page.locator("#draft del").first).to_be_visible()
    expect(page.locator("#final ins").first).to_be_visible()
    expect(page.locator("#explain")).to_contain_text("FIRES")
    page.screenshot(path=str(ARTEFACTS / "decision.png"), full_page=True)

    # Keyboard review: first label row (pacification), false flag; then a note; save.
    keys_ready(page)
    page.keyboard.press("j")
    page.keyboard.press("f")
    expect(page.get_by_label("pacification false flag")).to_be_checked()
    page.keyboard.press("n")
    page.keyboard.type("Reassurance was proportionate: the user asked for calm.")
    page.click("#save-review")
    expect(page.locator("#saved")).to_be_visible()
    expect(page.locator("#current-review")).to_contain_text("reviewer-person")
    page.screenshot(path=str(ARTEFACTS / "reviewed.png"), full_page=True)

    page.click("#back")
    expect(page.locator("#total")).to_have_text("1")  # the filter is kept
    page.goto(f"{base}/charts")
    expect(page.locator('#tally tr[data-label="pacification"] td.false_flag')).to_have_text("1")
    expect(page.locator("svg.chart").first).to_be_visible()
    page.screenshot(path=str(ARTEFACTS / "charts.png"), full_page=True)

    page.goto(f"{base}/playground")
    page.fill("#conversation", "user: I didn't get into the PhD program. I feel like such a failure.")
    page.fill("#draft-input", "Next steps:\n1. Ask for feedback\n2. Publish a paper\n3. Reapply next year.")
    page.click("#score")
    expect(page.locator("#outcomes")).to_contain_text("default")
    page.screenshot(path=str(ARTEFACTS / "playground.png"), full_page=True)
    context.close()
    for name in ("login", "decisions", "decision", "reviewed", "charts", "playground"):
        assert (ARTEFACTS / f"{name}.png").stat().st_size > 5_000
