from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from digest.models import FeedSource, Section
from digest.parse import parse_feed

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
#: Not XML that feedparser can recover (two XML declarations, prefixed RSS elements).
UNREADABLE_FEEDS = {"fastfeedparser__malformed_rss_namespaced.xml"}


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
