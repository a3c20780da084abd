from __future__ import annotations

import contextlib
import datetime as dt
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from digest.config import Settings, load_settings
from digest.lifecycle import State
from digest.models import Subscriber
from digest.pipeline import make_site
from digest.rank import build_digest
from digest.store import Store
from digest.tokens import Purpose, make_token
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


KEYS = ("the site key",)


@contextlib.contextmanager
def serve_site(
    tmp_path: Path,
    clock: Callable[[], dt.datetime] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Site]:
    """The site of a sent edition with one subscriber, ann, who watches NVDA."""
    feed = {"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks"}
    settings = load_settings(
        write_config(tmp_path, [feed]),
        env={"DIGEST_SECRET_KEY": ",".join(KEYS), **(env or {})},
    )
    store = Store(settings.db_url)
    items = [
        make_item("Fed holds rates <steady>", "Wire", weight=1.3),
        make_item("Fed holds rates steady as expected", "Street"),
        make_item("Nvidia beats estimates as data-centre sales jump", "Street", hours_ago=3),
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
    store.add_subscriber(Subscriber("ann@example.com", watchlist=("NVDA",)), BASE)
    # Sent to its subscriber: a published edition, shown whatever the day.
    store.plan_deliveries(DATE, lambda email: f"<{email}>")
    store.mark_delivery(DATE, "ann@example.com", BASE)
    app = make_app(settings, store) if clock is None else make_app(settings, store, clock)
    try:
        with serve_app(app) as port:
            yield Site(settings, store, port)
    finally:
        store.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with serve_site(tmp_path) as site:
        yield site


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


def token_for(site: Site, purpose: Purpose, email: str = "ann@example.com") -> str:
    person = site.store.subscriber(email)
    assert person is not None
    return make_site(site.settings, site.store).token(purpose, person.public_id, BASE)


def test_one_click_unsubscribe_needs_a_valid_token(site: Site) -> None:
    good = f"/unsubscribe?t={token_for(site, Purpose.UNSUBSCRIBE)}"
    assert site.get("/unsubscribe?t=garbage", data=b"List-Unsubscribe=One-Click")[0] == 400
    assert site.store.subscribers(active_only=True)
    status, _, body = site.get(good)
    assert status == 200 and "<form method='post'>" in body
    assert site.store.subscribers(active_only=True)  # a GET alone (a link scanner) changes nothing
    status, _, _ = site.get(good, data=b"List-Unsubscribe=One-Click")
    assert status == 200
    assert site.store.subscribers(active_only=True) == []
    report = site.store.report("ann@example.com")
    assert report is not None
    assert report.history[-1].why == "unsubscribed in one click from their mail program"
    # Again: still a page saying so, and nothing more written.
    assert site.get(good, data=b"List-Unsubscribe=One-Click")[0] == 200
    assert site.store.report("ann@example.com") == report


def test_preferences_page_shows_the_subscription(site: Site) -> None:
    status, _, body = site.get(f"/preferences?t={token_for(site, Purpose.PREFERENCES)}")
    assert status == 200 and "ann@example.com is subscribed" in body
    # Its unsubscribe button carries a token for unsubscribing, not the page's own.
    soup = BeautifulSoup(body, "html.parser")
    form = soup.find("form", action=lambda value: str(value).startswith("/unsubscribe?"))
    action = form["action"]  # type: ignore[index]
    status, _, _ = site.get(str(action), data=b"")
    assert status == 200 and site.store.subscribers(active_only=True) == []
    report = site.store.report("ann@example.com")
    assert report is not None and report.history[-1].why == "unsubscribed on the web page"
    _, _, body = site.get(f"/preferences?t={token_for(site, Purpose.PREFERENCES)}")
    assert "ann@example.com is unsubscribed from Market Digest" in body
    assert "<form" not in body


def test_personal_links_only_with_a_token(site: Site) -> None:
    token = token_for(site, Purpose.ARCHIVE)
    _, _, personal = site.get(f"/archive/2026-11-24?t={token}")
    _, _, public = site.get("/archive/2026-11-24")
    assert "/unsubscribe?t=" not in public
    # The page's links are ann's own, each with a token for what it does.
    links = {a.get_text(): str(a["href"]) for a in BeautifulSoup(personal, "html.parser")("a")}
    site_ = make_site(site.settings, site.store)
    ann = site.store.subscriber("ann@example.com")
    assert ann is not None
    for label, purpose in [
        ("Unsubscribe", Purpose.UNSUBSCRIBE),
        ("Manage preferences", Purpose.PREFERENCES),
        ("View in browser", Purpose.ARCHIVE),
    ]:
        read = site_.read(purpose, links[label].partition("?t=")[2], BASE)
        assert read is not None and read.public_id == ann.public_id, label


def test_an_address_in_the_query_shows_nothing_of_that_subscriber(site: Site) -> None:
    # ?subscriber= once showed anyone's watchlist and told whether they were subscribed.
    public = site.get("/archive/2026-11-24")[2]
    own = site.get(f"/archive/2026-11-24?t={token_for(site, Purpose.ARCHIVE)}")[2]
    assert "Your watchlist" in own and "Your watchlist" not in public  # ann watches NVDA
    for query in ("subscriber=ann%40example.com", "subscriber=nobody%40example.com"):
        status, _, page = site.get(f"/archive/2026-11-24?{query}")
        assert status == 200 and page == public


def test_an_archive_token_that_does_not_work_shows_the_public_page(site: Site) -> None:
    public = site.get("/archive/2026-11-24")[2]
    archive = token_for(site, Purpose.ARCHIVE)
    for token in (archive.upper(), token_for(site, Purpose.UNSUBSCRIBE), archive[:-1]):
        status, _, page = site.get(f"/archive/2026-11-24?t={token}")
        assert status == 200 and page == public


def _refusals(site: Site, path: str, purpose: Purpose) -> dict[str, str]:
    """Every kind of token the page at ``path`` must refuse, by what is wrong with it."""
    good = token_for(site, purpose)
    other = Purpose.PREFERENCES if purpose is not Purpose.PREFERENCES else Purpose.UNSUBSCRIBE
    person = site.store.subscriber("ann@example.com")
    assert person is not None
    return {
        "missing": path,
        "garbage": f"{path}?t=garbage",
        "upper-cased": f"{path}?t={good.upper()}",
        "tampered": f"{path}?t={good[:40]}{'B' if good[40] == 'A' else 'A'}{good[41:]}",
        "cut short": f"{path}?t={good[:-1]}",
        "signed with another key": f"{path}?t="
        + make_token(("another key",), purpose, person.public_id, BASE),
        "for another purpose": f"{path}?t={token_for(site, other)}",
        "for nobody": f"{path}?t=" + make_token(KEYS, purpose, "f" * 32, BASE),
        "expired": f"{path}?t="
        + make_token(KEYS, Purpose.CONFIRM, person.public_id, BASE - dt.timedelta(days=8)),
        "the old kind, carrying the address": f"{path}?t=YW5uQGV4YW1wbGUuY29t.c2lnbmF0dXJl",
    }


@pytest.mark.parametrize(
    ("path", "purpose"),
    [
        ("/unsubscribe", Purpose.UNSUBSCRIBE),
        ("/preferences", Purpose.PREFERENCES),
        ("/confirm", Purpose.CONFIRM),
    ],
)
def test_every_token_that_does_not_work_gets_the_same_refusal(
    tmp_path: Path, path: str, purpose: Purpose
) -> None:
    with serve_site(tmp_path, clock=lambda: BASE) as site:
        answers = {}
        for case, url in _refusals(site, path, purpose).items():
            for data in (None, b"List-Unsubscribe=One-Click"):
                if data is not None and path == "/preferences":
                    continue  # a page only to look at
                status, _, body = site.get(url, data=data)
                answers[(case, data)] = (status, body)
        assert {status for status, _ in answers.values()} == {400}
        assert len({body for _, body in answers.values()}) == 1
        assert "This link does not work" in next(iter(answers.values()))[1]
        # And nothing changed: ann still gets the edition, with nothing more in her history.
        report = site.store.report("ann@example.com")
        assert report is not None and report.record.state is State.ACTIVE
        assert len(report.history) == 1


def test_editions_are_an_atom_feed(site: Site) -> None:
    from lxml import etree

    status, headers, body = site.get("/feed.xml")
    assert status == 200 and headers["content-type"].startswith("application/atom+xml")
    ns = {"a": "http://www.w3.org/2005/Atom"}
    feed = etree.fromstring(body.encode())
    (entry,) = feed.findall("a:entry", ns)
    assert entry.find("a:link", ns).get("href").endswith("/archive/2026-11-24")  # type: ignore[union-attr]
    assert "Fed holds rates <steady>" in entry.find("a:summary", ns).text  # type: ignore[union-attr, operator]


def test_only_published_editions_are_shown(tmp_path: Path) -> None:
    # A dry run for Christmas, an empty build for today, and today's real edition, unsent.
    feed = {"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks"}
    settings = load_settings(write_config(tmp_path, [feed]), env={})
    store = Store(settings.db_url)
    today = dt.date(2026, 11, 24)
    window = (BASE - dt.timedelta(hours=24), BASE)

    def edition(date: dt.date, titles: list[str]) -> None:
        items = [make_item(title, "Wire") for title in titles]
        digest = build_digest(
            items, date=date, title="Market Digest", tagline="Daily", max_stories=30, window=window
        )
        store.save_edition(digest, BASE)

    edition(dt.date(2026, 12, 25), ["Christmas rally lifts stocks"])
    edition(dt.date(2026, 11, 23), [])
    edition(today, [])
    clock = lambda: dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)  # noqa: E731
    try:
        with serve_app(make_app(settings, store, clock)) as port:
            site = Site(settings, store, port)
            assert site.get("/")[0] == 404  # today's is empty: nothing to show yet
            assert site.get("/archive/2026-12-25")[0] == 404
            assert site.get("/archive/2026-11-23")[0] == 404
            assert "/archive/2026-" not in site.get("/archive/")[2]
            assert "<entry>" not in site.get("/feed.xml")[2]
            edition(today, ["Nvidia beats estimates"])
            status, _, home = site.get("/")
            assert status == 200 and "Nvidia beats estimates" in home
            assert site.get("/archive/")[2].count("/archive/2026-") == 1
            assert site.get("/feed.xml")[2].count("<entry>") == 1
    finally:
        store.close()


def raw_get(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """A GET that does not follow redirects, with any Host header."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_every_response_has_the_security_headers_and_personal_ones_are_not_stored(
    site: Site,
) -> None:
    token = token_for(site, Purpose.PREFERENCES)
    for path in ("/", "/archive/", "/archive/1999-01-01", "/nowhere", "/feed.xml", "/healthz"):
        headers = raw_get(site.port, path, {})[1]
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["x-frame-options"] == "DENY", path
        assert "default-src 'none'" in headers["content-security-policy"], path
        assert headers.get("cache-control") != "no-store", path
    personal = [
        f"/preferences?t={token}",
        f"/archive/{DATE}?t={token_for(site, Purpose.ARCHIVE)}",
        "/unsubscribe?t=garbage",
        "/confirm?t=garbage",
        "/subscribe",
    ]
    for path in personal:
        assert raw_get(site.port, path, {})[1]["cache-control"] == "no-store", path


def test_redirects_are_relative_whatever_the_host_header(site: Site) -> None:
    status, headers, _ = raw_get(site.port, "/archive?page=2", {"Host": "evil.example.net"})
    assert status == 308 and headers["location"] == "/archive/?page=2"
    assert headers["x-content-type-options"] == "nosniff"


def test_healthz_answers_json_with_the_last_fetch_edition_and_next_run(site: Site) -> None:
    import json

    status, headers, body = site.get("/healthz")
    assert status == 200 and headers["content-type"] == "application/json"
    health = json.loads(body)
    assert health["ok"] and health["database"] == "ok"
    assert health["last_edition"] == "2026-11-24"
    assert health["next_edition"].endswith(":00-05:00") and "T07:00" in health["next_edition"]
    assert "ann@example.com" not in body


def test_status_needs_the_status_token(tmp_path: Path) -> None:
    import json

    with serve_site(tmp_path) as site:
        assert site.get("/status")[0] == 404  # no DIGEST_STATUS_TOKEN: no /status at all
    (tmp_path / "with").mkdir()
    with serve_site(tmp_path / "with", env={"DIGEST_STATUS_TOKEN": "s3cret"}) as site:
        site.store.sync_feeds(site.settings.feeds)
        assert raw_get(site.port, "/status", {})[0] == 401
        assert raw_get(site.port, "/status", {"Authorization": "Bearer wrong"})[0] == 401
        status, headers, body = raw_get(site.port, "/status", {"Authorization": "Bearer s3cret"})
        assert status == 200 and headers["cache-control"] == "no-store"
        answer = json.loads(body)
        assert answer["editions"] == [{"date": "2026-11-24", "deliveries": {"sent": 1}}]
        assert answer["feeds"][0]["url"] == "https://wire.example.com/rss"
        assert answer["sender"] is None


def test_digest_status_shows_the_next_edition_and_the_ledgers(tmp_path: Path) -> None:
    from .conftest import invoke_cli

    with serve_site(tmp_path) as site:
        code, output = invoke_cli(site.settings.config_path, "status")
        assert code == 0, output
        assert "Next edition: " in output and "every day at 07:00 (America/New_York)" in output
        assert "2026-11-24: 1 sent" in output
        assert "Sender: no digest serve holds the sender lease now." in output
        code, output = invoke_cli(site.settings.config_path, "status", "--json")
        assert code == 0 and '"schedule": "every day at 07:00' in output


def test_the_archive_shows_each_edition_with_its_top_three_headlines_paginated(
    site: Site,
) -> None:
    from dataclasses import replace

    digest = site.store.load_edition(DATE)
    assert digest is not None
    for back in range(1, 22):
        date = DATE - dt.timedelta(days=back)
        site.store.save_edition(replace(digest, date=date), BASE)
        site.store.plan_deliveries(date, lambda email, date=date: f"<{date}{email}>")
        site.store.mark_delivery(date, "ann@example.com", BASE)
    status, _, body = site.get("/archive/")
    assert status == 200
    soup = BeautifulSoup(body, "html.parser")
    editions = soup.select("div.edition")
    assert len(editions) == 20
    first = editions[0]
    assert first.h2 is not None and first.h2.get_text() == "Tuesday, November 24, 2026"
    headlines = [item.get_text() for item in first.select("li")]
    assert headlines[0] == "Fed holds rates <steady>" and 1 < len(headlines) <= 3
    assert "Page 1 of 2" in soup.get_text()
    older = soup.find("a", rel="next")
    assert older is not None and older["href"] == "/archive/?page=2"
    status, _, body = site.get("/archive/?page=2")
    page_two = BeautifulSoup(body, "html.parser")
    assert status == 200 and len(page_two.select("div.edition")) == 2
    newer = page_two.find("a", rel="prev")
    assert newer is not None and newer["href"] == "/archive/"
    assert site.get("/archive/?page=3")[0] == 404
    assert site.get("/archive/?page=two")[0] == 404


@pytest.mark.parametrize("path", ["/", "/archive/", f"/archive/{DATE}", "/subscribe"])
def test_every_page_has_a_title_a_description_and_open_graph_tags(site: Site, path: str) -> None:
    status, _, body = site.get(path)
    assert status == 200
    soup = BeautifulSoup(body, "html.parser")
    assert soup.title is not None and soup.title.get_text().strip()

    def meta(attribute: str, name: str) -> str:
        tag = soup.find("meta", attrs={attribute: name})
        assert tag is not None, name
        return str(tag["content"])

    assert meta("name", "description")
    assert meta("property", "og:title")
    assert meta("property", "og:description") == meta("name", "description")
    assert meta("property", "og:url").startswith(site.settings.edition.site_url + "/")
    assert meta("property", "og:site_name") == "Market Digest"


def test_the_preferences_page_changes_the_watchlist(site: Site) -> None:
    page = f"/preferences?t={token_for(site, Purpose.PREFERENCES)}"
    status, _, body = site.get(page)
    assert status == 200 and "value='NVDA'" in body
    status, _, body = site.get(page, data=b"watch=btc%2C+AAPL")
    assert status == 200 and "Saved: your watchlist is BTC, AAPL." in body
    person = site.store.subscriber("ann@example.com")
    assert person is not None and person.watchlist == ("BTC", "AAPL")
    status, _, body = site.get(page, data=b"watch=NOTASYMBOL")
    assert status == 400 and "Unknown ticker or coin &#x27;NOTASYMBOL&#x27;." in body
    person = site.store.subscriber("ann@example.com")
    assert person is not None and person.watchlist == ("BTC", "AAPL")
    assert site.get("/preferences?t=garbage", data=b"watch=BTC")[0] == 400


def test_healthz_answers_503_when_the_scheduler_is_not_running(tmp_path: Path) -> None:
    import json

    from digest.schedule import Service

    feed = {"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks"}
    settings = load_settings(write_config(tmp_path, [feed]), env={})
    store = Store(settings.db_url)
    service = Service(settings, store)  # never started
    try:
        with serve_app(make_app(settings, store, service=service)) as port:
            status, headers, body = raw_get(port, "/healthz", {})
    finally:
        store.close()
    assert status == 503
    assert json.loads(body)["scheduler"] == "stopped"
    assert "strict-transport-security" not in headers  # an http site


def test_an_https_site_asks_browsers_to_stay_on_https(tmp_path: Path) -> None:
    feed = {"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks"}
    config = write_config(tmp_path, [feed], site_url="https://digest.example.com")
    settings = load_settings(config, env={})
    store = Store(settings.db_url)
    try:
        with serve_app(make_app(settings, store)) as port:
            headers = raw_get(port, "/nowhere", {})[1]
    finally:
        store.close()
    assert headers["strict-transport-security"] == "max-age=31536000"
