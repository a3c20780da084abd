"""The web edition in real headless Chromium: no console errors, no sideways scrolling on a
phone, signing up, confirming and unsubscribing as a reader does, and screenshots under
tests/artifacts/ for a person to look at."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from digest.config import load_settings
from digest.lifecycle import State
from digest.store import Store
from digest.web import make_app

from .conftest import REPO, DemoEdition, Inbox, serve_app

ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Chromium is not installed: run 'make system-deps' (as root)"
    return path


@pytest.fixture(scope="module")
def site(demo_edition: DemoEdition) -> Iterator[str]:
    settings = load_settings(demo_edition.config, env={})
    store = Store(settings.db_url)
    with serve_app(make_app(settings, store)) as port:
        yield f"http://127.0.0.1:{port}"
    store.close()


#: Each public page and the name of its screenshots; EDITION is the demo edition's page.
PAGES = {"/": "home", "/archive/": "archive", "EDITION": "edition", "/subscribe": "subscribe"}


@pytest.mark.parametrize("where", list(PAGES))
@pytest.mark.parametrize("width", [375, 1280])
def test_page_loads_cleanly_and_fits_the_screen(
    site: str, demo_edition: DemoEdition, where: str, width: int
) -> None:
    path = where
    if where == "EDITION":
        settings = load_settings(demo_edition.config, env={})
        store = Store(settings.db_url)
        path = f"/archive/{store.edition_dates()[0]}"
        store.close()
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            response = page.goto(site + path, wait_until="networkidle")
            assert response is not None and response.status == 200
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            name = PAGES[where]
            title = page.title()
            preview = page.locator("meta[property='og:title']").get_attribute("content")
            page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert overflow <= 0, f"{overflow}px of sideways scrolling at {width}px"
    assert (ARTIFACTS / f"{name}-{width}.png").stat().st_size > 5000
    assert title and preview


def test_the_edition_page_shows_the_stories(site: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 375, "height": 900})
            page.goto(site + "/", wait_until="networkidle")
            headlines = page.locator("a.headline").all_inner_texts()
            sections = page.locator("td.section").all_inner_texts()
        finally:
            browser.close()
    assert len(headlines) >= 20
    assert [s.upper() for s in sections][:2] == ["TOP STORIES", "STOCKS"]


def test_sign_up_from_the_home_page_confirm_and_unsubscribe_in_one_click(
    tmp_path: Path, inbox: Inbox
) -> None:
    from .test_signup import link_in, wait_for_mail
    from .test_web import serve_site

    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    with (
        serve_site(tmp_path, env={"DIGEST_SMTP_URL": inbox.url}) as served,
        sync_playwright() as playwright,
    ):
        local = f"http://127.0.0.1:{served.port}"
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 375, "height": 900})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(local + "/", wait_until="networkidle")
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            page.screenshot(path=str(ARTIFACTS / "home-with-sign-up-375.png"))
            page.fill("input[name=email]", "reader@example.com")
            page.click("form.subscribe button[type=submit]")
            page.wait_for_load_state("networkidle")
            assert page.locator("h1").inner_text() == "Check your inbox"

            (confirmation,) = wait_for_mail(inbox, 1)
            confirm = link_in(confirmation, "/confirm")
            page.goto(local + confirm, wait_until="networkidle")
            assert page.locator("h1").inner_text() == "Confirm your subscription"
            record = served.store.record("reader@example.com")
            assert record is not None and record.state is State.PENDING
            page.click("text=Yes, subscribe me")
            page.wait_for_load_state("networkidle")
            assert page.locator("h1").inner_text() == "You are subscribed"
            record = served.store.record("reader@example.com")
            assert record is not None and record.state is State.ACTIVE

            _, welcome = wait_for_mail(inbox, 2)
            page.goto(local + link_in(welcome, "/preferences"), wait_until="networkidle")
            assert page.locator("h1").inner_text() == "Preferences"
            assert "reader@example.com is subscribed" in page.locator("body").inner_text()
            page.fill("input[name=watch]", "nvda, btc")
            page.click("button:has-text('Save')")
            page.wait_for_load_state("networkidle")
            assert "Saved: your watchlist is NVDA, BTC." in page.locator("body").inner_text()
            person = served.store.subscriber("reader@example.com")
            assert person is not None and person.watchlist == ("NVDA", "BTC")
            page.screenshot(path=str(ARTIFACTS / "preferences-375.png"))
            # One click on the preferences page's button unsubscribes.
            page.click("button:has-text('Unsubscribe')")
            page.wait_for_load_state("networkidle")
            assert page.locator("h1").inner_text() == "Unsubscribed"
        finally:
            browser.close()
    record = served.store.record("reader@example.com")
    assert record is not None and record.state is State.UNSUBSCRIBED
    assert problems == []
    assert overflow <= 0, f"{overflow}px of sideways scrolling with the sign-up form"
