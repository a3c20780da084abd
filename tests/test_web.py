from __future__ import annotations

import datetime as dt
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from digest.config import Settings, load_settings
from digest.models import Subscriber
from digest.pipeline import make_site
from digest.rank import build_digest
from digest.site import make_token
from digest.store import Store
from digest.web import make_app

from .conftest import serve_app, write_config
from .factories import BASE, make_item

DATE = dt.date(2026, 11, 24)


class Site:
    def __init__(self, settings: Settings, store: Store, port: int) -> None:
        self.settings, self.store, self.port = settings, store, port

    def get(self, path: str, data: bytes | None = None) -> tuple[int, dict[str, str], str]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    feed = {"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks"}
    settings = load_settings(write_config(tmp_path, [feed]), env={})
    store = Store(settings.db_url)
    items = [
        make_item("Fed holds rates <steady>", "Wire", weight=1.3),
        make_item("Fed holds rates steady as expected", "Street"),
    ]
    digest = build_digest(
        items,
        date=DATE,
        title="Market Digest",
        tagline="Daily",
        max_stories=30,
        window=(BASE - dt.timedelta(hours=24), BASE),
    )
    store.save_edition(digest, BASE)
    store.add_subscriber(Subscriber("ann@example.com"), BASE)
    with serve_app(make_app(settings, store)) as port:
        yield Site(settings, store, port)
    store.close()


def test_latest_edition_is_served_escaped_with_a_strict_policy(site: Site) -> None:
    status, headers, body = site.get("/")
    assert status == 200
    assert "default-src 'none'" in headers["content-security-policy"]
    soup = BeautifulSoup(body, "html.parser")
    assert "Fed holds rates <steady>" in soup.get_text()
    assert soup.find("steady") is None


def test_archive_lists_and_serves_each_edition(site: Site) -> None:
    status, _, body = site.get("/archive/")
    assert status == 200 and "/archive/2026-11-24" in body
    status, _, text = site.get("/archive/2026-11-24.txt")
    assert status == 200 and "1. Fed holds rates <steady>" in text
    assert site.get("/archive/2026-11-23")[0] == 404
    assert site.get("/archive/not-a-date")[0] == 404


def test_one_click_unsubscribe_needs_a_valid_token(site: Site) -> None:
    key = make_site(site.settings, site.store).key
    good = f"/unsubscribe?t={make_token(key, 'ann@example.com')}"
    forged = f"/unsubscribe?t={make_token('another key', 'ann@example.com')}"
    assert site.get(forged, data=b"List-Unsubscribe=One-Click")[0] == 400
    assert site.get("/unsubscribe?t=garbage", data=b"List-Unsubscribe=One-Click")[0] == 400
    assert site.store.subscribers(active_only=True)
    status, _, body = site.get(good)
    assert status == 200 and "<form method='post'>" in body
    assert site.store.subscribers(active_only=True)  # a GET alone (a link scanner) changes nothing
    status, _, _ = site.get(good, data=b"List-Unsubscribe=One-Click")
    assert status == 200
    assert site.store.subscribers(active_only=True) == []


def test_preferences_page_shows_the_subscription(site: Site) -> None:
    key = make_site(site.settings, site.store).key
    status, _, body = site.get(f"/preferences?t={make_token(key, 'ann@example.com')}")
    assert status == 200 and "ann@example.com is subscribed" in body
    assert site.get("/preferences?t=nope")[0] == 400


def test_personal_links_only_with_a_token(site: Site) -> None:
    key = make_site(site.settings, site.store).key
    token = make_token(key, "ann@example.com")
    _, _, personal = site.get(f"/archive/2026-11-24?t={token}")
    _, _, by_address = site.get("/archive/2026-11-24?subscriber=ann%40example.com")
    assert f"/unsubscribe?t={token}" in personal
    assert "/unsubscribe?t=" not in by_address


def test_editions_are_an_atom_feed(site: Site) -> None:
    from lxml import etree

    status, headers, body = site.get("/feed.xml")
    assert status == 200 and headers["content-type"].startswith("application/atom+xml")
    ns = {"a": "http://www.w3.org/2005/Atom"}
    feed = etree.fromstring(body.encode())
    (entry,) = feed.findall("a:entry", ns)
    assert entry.find("a:link", ns).get("href").endswith("/archive/2026-11-24")  # type: ignore[union-attr]
    assert "Fed holds rates <steady>" in entry.find("a:summary", ns).text  # type: ignore[union-attr, operator]
