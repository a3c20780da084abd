"""Hostile and broken feeds: every file goes through fetch and parse without an exception,
and nothing unsafe comes out. Output is checked by parsing HTML, never by substring."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import tracemalloc
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from digest.fetch import FetchPolicy, fetch_all
from digest.models import FeedSource, Section
from digest.parse import parse_feed, read_entries
from digest.rank import build_digest
from digest.render import render_digest
from digest.sanitize import clean_html, clean_text
from digest.site import Links

from .conftest import SHARED_DATA, FeedServer, Route

HOSTILE = SHARED_DATA / "hostile-feeds"
EXTRA = SHARED_DATA / "hostile-feeds-extra"
FILES = sorted([*HOSTILE.rglob("*.xml"), *EXTRA.glob("*.xml")])
NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
FORBIDDEN_TAGS = {
    "script",
    "style",
    "iframe",
    "object",
    "embed",
    "svg",
    "math",
    "form",
    "input",
    "button",
    "img",
    "link",
    "meta",
    "base",
    "frame",
    "frameset",
    "applet",
    "audio",
    "video",
    "textarea",
}
SAFE_SCHEMES = ("http://", "https://", "mailto:")
#: The per-file memory bound the parser must stay within.
MAX_PARSE_BYTES = 200 * 1024 * 1024
_HEADER_LINE = re.compile(rb"^Header:\s*([A-Za-z-]+):\s*(.*?)\s*$", re.MULTILINE)


def response_headers(document: bytes) -> dict[str, str]:
    """The HTTP headers a corpus file asks to be served with (its ``Header:`` lines)."""
    head = document[:2000]
    return {m[1].decode(): m[2].decode(errors="replace") for m in _HEADER_LINE.finditer(head)}


def assert_safe_html(html: str, where: str, template: bool = False) -> None:
    """No active content in ``html``; ``template`` allows the email's own meta and styles."""
    forbidden = FORBIDDEN_TAGS - {"meta", "style"} if template else FORBIDDEN_TAGS
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup.find_all(True):
        assert tag.name not in forbidden, f"{where}: <{tag.name}> survived"
        for name, value in tag.attrs.items():
            assert not name.lower().startswith("on"), f"{where}: {name}= survived"
            assert name.lower() not in ("src", "srcset", "xlink:href", "formaction")
            assert template or name.lower() != "style", f"{where}: style= survived"
            if name.lower() == "href":
                assert str(value).startswith(SAFE_SCHEMES), f"{where}: href={value!r}"


def test_corpus_is_present() -> None:
    assert len(list(HOSTILE.rglob("*.xml"))) == 846
    assert len(list(EXTRA.glob("*.xml"))) >= 6


def test_every_hostile_file_is_fetched_and_parsed_cleanly(feed_server: FeedServer) -> None:
    sources = []
    for index, path in enumerate(FILES):
        document = path.read_bytes()
        feed_server.routes[f"/{index}"] = Route(document, headers=response_headers(document))
        sources.append(FeedSource(path.name, feed_server.url(f"/{index}"), Section.STOCKS))
    policy = FetchPolicy(allow_private_hosts=True, concurrency=16, per_host=16)
    results = asyncio.run(fetch_all(sources, None, policy))
    assert [result.error for result in results if not result.ok] == []
    items = []
    for path, result in zip(FILES, results, strict=True):
        assert result.body is not None
        for item in parse_feed(result.body, result.source, NOW, result.content_type):
            assert item.link.startswith(("http://", "https://")), f"{path.name}: {item.link}"
            assert_safe_html(item.summary_html, path.name)
            items.append(item)
    assert len(items) >= 20  # most corpus entries have no link: the entry test covers them
    # The whole lot rendered into one email is still safe.
    digest = build_digest(
        items,
        date=NOW.date(),
        title="T",
        tagline="t",
        max_stories=len(items),
        window=(dt.datetime(1900, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC)),
    )
    links = Links(
        "https://d.example.com",
        "https://d.example.com/u",
        "https://d.example.com/a",
        "https://d.example.com/p",
    )
    assert_safe_html(render_digest(digest, links).html, "rendered edition", template=True)


@pytest.mark.parametrize("path", FILES, ids=lambda path: str(path.relative_to(SHARED_DATA)))
def test_every_entry_field_is_cleaned_within_the_memory_bound(path: Path) -> None:
    document = path.read_bytes()
    tracemalloc.start()
    try:
        entries = read_entries(document, response_headers(document).get("Content-type"))
        cleaned = [(clean_text(entry.title), clean_html(entry.summary)) for entry in entries]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_PARSE_BYTES
    for title, summary in cleaned:
        assert_safe_html(summary, path.name)
        assert "\n" not in title and "\r" not in title


def test_external_entities_are_never_read() -> None:
    document = (EXTRA / "xxe_file_and_param_entity.xml").read_bytes()
    for entry in read_entries(document):
        assert "root:" not in entry.title + entry.summary


def test_billion_laughs_does_not_expand() -> None:
    document = (EXTRA / "billion_laughs.xml").read_bytes()
    tracemalloc.start()
    try:
        entries = read_entries(document)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_PARSE_BYTES
    assert all(len(entry.title) + len(entry.summary) < 100_000 for entry in entries)


def test_quadratic_entity_blowup_is_bounded() -> None:
    document = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "' + b"A" * 50000 + b'">]>'
        b'<rss version="2.0"><channel><title>t</title><item><guid>q</guid><title>q</title>'
        b"<link>https://q.example.com/</link><description>"
        + b"&a;" * 5000
        + b"</description></item></channel></rss>"
    )
    tracemalloc.start()
    try:
        items = parse_feed(
            document, FeedSource("Q", "https://q.example.com/rss", Section.STOCKS), NOW
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_PARSE_BYTES
    assert all(len(item.summary_html) < 1_000_000 for item in items)


def test_deeply_nested_markup_is_cut_and_made_safe() -> None:
    document = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><guid>d</guid>'
        b"<title>deep</title><link>https://d.example.com/</link><description>"
        + b"&lt;div&gt;" * 100_000
        + b"x</description></item></channel></rss>"
    )
    (item,) = parse_feed(
        document, FeedSource("D", "https://d.example.com/rss", Section.STOCKS), NOW
    )
    # Only the start of a long entry is sanitized; 100,000 empty divs say nothing.
    assert item.summary_text == ""
    assert len(item.summary_html) < 20_000
    assert_safe_html(item.summary_html, "deep nesting")


def test_fifty_megabyte_feed_is_refused_and_the_run_goes_on(feed_server: FeedServer) -> None:
    big = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        + b"".join(
            b"<item><title>T%d</title><guid>g%d</guid><description>%s</description></item>"
            % (i, i, b"x" * 1000)
            for i in range(50_000)
        )
        + b"</channel></rss>"
    )
    assert len(big) > 50_000_000
    feed_server.routes["/big"] = Route(big)
    feed_server.routes["/ok"] = Route(
        b'<rss version="2.0"><channel><title>t</title><item><title>Fine</title>'
        b"<link>https://ok.example.com/1</link></item></channel></rss>"
    )
    sources = [
        FeedSource("Big", feed_server.url("/big"), Section.STOCKS),
        FeedSource("Ok", feed_server.url("/ok"), Section.STOCKS),
    ]
    big_result, ok_result = asyncio.run(
        fetch_all(sources, None, FetchPolicy(allow_private_hosts=True))
    )
    assert "larger than" in (big_result.error or "")
    assert ok_result.ok and ok_result.body is not None
