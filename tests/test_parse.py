from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from urllib.parse import urljoin

import pytest

from digest.models import FeedSource, Section
from digest.parse import Entry, fast_entries, parse_feed, read_entries, slow_entries
from digest.sanitize import canonical_link, clean_text

from .conftest import SAMPLES, SHARED_DATA

FETCHED_AT = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
SOURCE = FeedSource("Test", "https://feeds.example.com/rss", Section.STOCKS)

REAL_FEEDS = sorted((SHARED_DATA / "real-feeds").glob("*.*"))
REAL_FEEDS = [path for path in REAL_FEEDS if path.name != "README.md"]


def test_real_feed_corpus_is_present() -> None:
    assert len(REAL_FEEDS) >= 30


@pytest.mark.parametrize("path", REAL_FEEDS, ids=lambda path: path.name)
def test_real_feeds_give_titles_links_and_utc_dates(path: Path) -> None:
    items = parse_feed(path.read_bytes(), SOURCE, FETCHED_AT)
    if path.name in UNREADABLE_FEEDS:
        assert items == []
        return
    assert items, f"{path.name}: no items"
    for item in items:
        assert item.title and "<" not in item.title
        assert item.link.startswith(("http://", "https://"))
        assert item.published.utcoffset() == dt.timedelta(0)
        assert item.key
    # Real feeds date their entries: most items carry their own date, not the fetch time.
    dated = [item for item in items if item.published != FETCHED_AT]
    assert len(dated) >= len(items) / 2 or path.name in UNDATED_FEEDS


#: Feeds whose entry dates feedparser cannot read: none at all, or Portuguese day names.
UNDATED_FEEDS = {"rssparser__craigslist.rss", "rssparser__uolNoticias.rss"}
#: Feeds no parser here can read.
UNREADABLE_FEEDS: set[str] = set()


def test_sample_feeds_parse_to_about_150_items() -> None:
    files = sorted((SAMPLES / "feeds").glob("*.xml"))
    assert len(files) >= 8
    total = sum(len(parse_feed(path.read_bytes(), SOURCE, FETCHED_AT)) for path in files)
    assert 130 <= total <= 200


def test_rss_dates_with_offsets_become_utc() -> None:
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
    <item><title>A</title><link>https://a.example.com/1</link>
    <pubDate>Mon, 23 Nov 2026 09:00:00 -0500</pubDate></item></channel></rss>"""
    (item,) = parse_feed(body, SOURCE, FETCHED_AT)
    assert item.published == dt.datetime(2026, 11, 23, 14, 0, tzinfo=dt.UTC)


def test_entries_without_http_links_or_titles_are_skipped() -> None:
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
    <item><title>Bad</title><link>javascript:alert(1)</link></item>
    <item><title>Local</title><link>file:///etc/passwd</link></item>
    <item><link>https://a.example.com/untitled</link></item>
    <item><title>Good &lt;b&gt;one&lt;/b&gt;</title><link>https://a.example.com/ok?utm_source=x</link>
    </item></channel></rss>"""
    items = parse_feed(body, SOURCE, FETCHED_AT)
    assert [(item.title, item.link) for item in items] == [("Good one", "https://a.example.com/ok")]
    assert items[0].published == FETCHED_AT
    assert items[0].key == "https://a.example.com/ok"


def test_a_path_or_url_as_body_is_not_opened() -> None:
    assert parse_feed(b"/etc/passwd", SOURCE, FETCHED_AT) == []
    assert parse_feed(str(REAL_FEEDS[0]).encode(), SOURCE, FETCHED_AT) == []


def test_html_page_gives_no_items() -> None:
    assert parse_feed(b"<html><body><p>Not a feed</p></body></html>", SOURCE, FETCHED_AT) == []


def _readable(entries: list[Entry]) -> list[tuple[str, str, dt.datetime | None]]:
    """What a reader sees of each entry; entries with neither title nor link say nothing."""
    return [
        (clean_text(entry.title), canonical_link(urljoin(SOURCE.url, entry.link)), entry.published)
        for entry in entries
        if entry.title.strip() or entry.link.strip()
    ]


#: fastfeedparser reads these and feedparser does not: prefixed RSS elements after two XML
#: declarations, and Latin-1 bytes with no declaration (feedparser's fallback covers those).
ONLY_ONE_PARSER_READS = {
    "fastfeedparser__malformed_rss_namespaced.xml",
    "rssparser__uolNoticias.rss",
}


@pytest.mark.parametrize("path", REAL_FEEDS, ids=lambda path: path.name)
def test_both_parsers_agree_on_titles_links_and_dates(path: Path) -> None:
    body = path.read_bytes()
    fast, slow = _readable(fast_entries(body)), _readable(slow_entries(body))
    if path.name in ONLY_ONE_PARSER_READS:
        assert fast != slow
        return
    assert fast == slow


def test_wrongly_decoded_fast_result_falls_back_to_feedparser() -> None:
    body = (SHARED_DATA / "real-feeds" / "rssparser__uolNoticias.rss").read_bytes()
    titles = [entry.title for entry in read_entries(body)]
    assert any("simulações" in title for title in titles)
    assert not any("\ufffd" in title for title in titles)


def test_json_feed_is_read() -> None:
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "J",
            "items": [
                {
                    "id": "1",
                    "url": "https://j.example.com/1",
                    "title": "Ether tops $4,000",
                    "content_html": "<p>ETH rose.</p>",
                    "date_published": "2026-11-23T10:00:00-05:00",
                }
            ],
        }
    ).encode()
    (item,) = parse_feed(body, SOURCE, FETCHED_AT)
    assert (item.title, item.link, item.summary_text) == (
        "Ether tops $4,000",
        "https://j.example.com/1",
        "ETH rose.",
    )
    assert item.published == dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)


def test_relative_links_resolve_against_the_feed() -> None:
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
    <item><title>A</title><link>/news/1</link></item></channel></rss>"""
    (item,) = parse_feed(body, SOURCE, FETCHED_AT)
    assert item.link == "https://feeds.example.com/news/1"


def test_charset_from_the_server_is_honoured() -> None:
    body = """<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
    <item><title>Société Générale gagne</title><link>https://a.example.com/1</link></item>
    </channel></rss>""".encode("iso-8859-1")
    (item,) = parse_feed(body, SOURCE, FETCHED_AT, "application/rss+xml; charset=ISO-8859-1")
    assert item.title == "Société Générale gagne"
