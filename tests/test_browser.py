"""The web edition in real headless Chromium: no console errors, no sideways scrolling on a
phone, and screenshots under tests/artifacts/ for a person to look at."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import sync_playwright

from digest.config import load_settings
from digest.store import Store
from digest.web import make_app

from .conftest import REPO, DemoEdition, serve_app

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


@pytest.mark.parametrize("path", ["/", "/archive/"])
@pytest.mark.parametrize("width", [375, 1280])
def test_page_loads_cleanly_and_fits_the_screen(site: str, path: str, width: int) -> None:
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
            name = "edition" if path == "/" else "archive"
            page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert overflow <= 0, f"{overflow}px of sideways scrolling at {width}px"
    assert (ARTIFACTS / f"{name}-{width}.png").stat().st_size > 5000


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
