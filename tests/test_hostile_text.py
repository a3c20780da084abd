"""No feed, title or address can spoil the morning edition: hostile text through the real line.

Feeds are served over HTTP on 127.0.0.1, fetched, parsed and stored, built into the edition,
sent over SMTP to aiosmtpd (or the outbox) and shown on the web pages; the checks read what
arrived, as a mail client or a feed reader would.
"""

from __future__ import annotations

import re
import tempfile
import unicodedata
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from digest.config import load_settings
from digest.models import Digest, Subscriber
from digest.parse import TITLE_LIMIT
from digest.pipeline import FeedReport, build_edition, fetch_feeds, send_edition
from digest.store import Store
from digest.web import make_app, subscribe_form

from .checks import (
    ANY_CHARACTER,
    BIDI_CONTROLS,
    assert_safe_line,
    assert_sound_headers,
    header_names,
    is_noncharacter,
    raw_header,
)
from .conftest import SAMPLE_DATE, SAMPLE_NOW, FeedServer, Inbox, Route, serve_app, write_config
from .factories import FeedEntry, atom_document, json_feed_document, rss_document
from .test_hostile import assert_safe_html

RSS = "application/rss+xml; charset=utf-8"
ATOM = "application/atom+xml"
JSON_FEED = "application/feed+json"
HEADERS = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
]
EMPTY_EDITION = "No stories in this edition"


@dataclass(frozen=True)
class Feed:
    """A feed document as the test server serves it."""

    body: bytes
    content_type: str
    #: Above 1 to make its stories lead the edition.
    weight: float = 1.0


@dataclass(frozen=True)
class Edition:
    """What one run of the line left: the edition, the mail, and the web pages."""

    fetched: tuple[FeedReport, ...]
    digest: Digest
    messages: tuple[bytes, ...]
    home: str
    text: str
    atom: bytes


def run_line(
    directory: Path, feed_server: FeedServer, inbox: Inbox | None, feeds: Sequence[Feed]
) -> Edition:
    """Fetch ``feeds``, build the sample date's edition, send it to one subscriber (through
    ``inbox``, or the embedded server into ``directory``/outbox) and read the web pages."""
    directory.mkdir(parents=True, exist_ok=True)
    feed_server.routes.clear()
    configured = []
    for index, feed in enumerate(feeds):
        path = f"/feed-{index}"
        feed_server.routes[path] = Route(feed.body, headers={"Content-Type": feed.content_type})
        configured.append(
            {
                "name": f"Outlet {index}",
                "url": feed_server.url(path),
                "section": "stocks",
                "weight": feed.weight,
            }
        )
    outbox = directory / "outbox"
    env = {"DIGEST_SMTP_URL": inbox.url} if inbox else {"DIGEST_OUTBOX": str(outbox)}
    config = load_settings(write_config(directory, configured), env=env)
    received = len(inbox.messages) if inbox else 0
    store = Store(config.db_url)
    try:
        store.add_subscriber(Subscriber("ann@example.com"), SAMPLE_NOW)
        fetched = tuple(fetch_feeds(config, store, SAMPLE_NOW))
        digest = build_edition(config, store, SAMPLE_DATE)
        # Generated feeds may hold few stories or none: the floor is not what is tested here.
        report = send_edition(config, store, SAMPLE_DATE, SAMPLE_NOW, force=True)
        assert (report.sent, report.failed) == (1, 0)
        with serve_app(make_app(config, store)) as port:
            home = _get(port, "/").decode()
            text = _get(port, f"/archive/{SAMPLE_DATE.isoformat()}.txt").decode()
            atom = _get(port, "/feed.xml")
    finally:
        store.close()
    if inbox:
        messages = tuple(raw for _, _, raw in inbox.messages[received:])
    else:
        messages = tuple(path.read_bytes() for path in sorted(outbox.rglob("*.eml")))
    return Edition(fetched, digest, messages, home, text, atom)


def _get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        body: bytes = response.read()
        return body


def parts(raw: bytes) -> tuple[str, str]:
    """The HTML and plain-text parts of a received message."""
    message = assert_sound_headers(raw)
    html, text = message.get_body(("html",)), message.get_body(("plain",))
    assert html is not None and text is not None
    return html.get_content(), text.get_content()


def assert_plain_text(text: str, where: str) -> None:
    """Lines of printable text: no control but the line end, nothing that reorders or is no
    character."""
    for char in text.replace("\r\n", "\n"):
        assert char == "\n" or unicodedata.category(char) not in ("Cc", "Cs", "Zl", "Zp"), where
        assert char not in BIDI_CONTROLS and not is_noncharacter(char), where


def headlines(digest: Digest) -> list[str]:
    return [story.lead.title for story in digest.top] + [
        story.lead.title for _, stories in digest.sections for story in stories
    ]


def one_entry(title: str, summary: str = "") -> list[FeedEntry]:
    return [FeedEntry(title, "https://news.example.com/lead", summary)]


# -- each reproduced case ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("separator", "kind"),
    [
        ("=?utf-8?q?=E2=80=A8?=", RSS),
        ("=?utf-8?q?=E2=80=A9?=", RSS),
        ("=?utf-8?q?=0B?=", RSS),
        ("=?utf-8?q?=0C?=", RSS),
        ("=?utf-8?q?=C2=85?=", RSS),
        ("\u2028", JSON_FEED),
        ("\u2029", JSON_FEED),
        ("\x0b", JSON_FEED),
        ("\x0c", JSON_FEED),
        ("\x85", JSON_FEED),
    ],
)
def test_a_line_separator_in_the_top_headline_does_not_stop_sending(
    separator: str, kind: str, tmp_path: Path, feed_server: FeedServer, inbox: Inbox
) -> None:
    entries = one_entry(f"Chipmakers rally {separator} as orders jump")
    document = rss_document(entries) if kind == RSS else json_feed_document(entries)
    quiet = rss_document([FeedEntry("Oil steady", "https://other.example.com/oil")])
    edition = run_line(
        tmp_path, feed_server, inbox, [Feed(document, kind, weight=3.0), Feed(quiet, RSS)]
    )
    ((message),) = edition.messages
    assert header_names(message) == HEADERS
    subject = str(assert_sound_headers(message)["Subject"])
    assert subject == "Market Digest for Nov 24: Chipmakers rally as orders jump"


def test_a_lone_surrogate_in_a_json_feed_title_is_dropped_and_the_item_stored(
    tmp_path: Path, feed_server: FeedServer, inbox: Inbox
) -> None:
    entries = one_entry("Bitcoin \ud800tops $100,000", "<p>Record \udfff high.</p>")
    assert b"\\ud800" in json_feed_document(entries)  # a JSON escape, as the feed sent it
    edition = run_line(tmp_path, feed_server, inbox, [Feed(json_feed_document(entries), JSON_FEED)])
    ((report),) = edition.fetched
    assert (report.error, report.items, report.new_items) == (None, 1, 1)
    assert headlines(edition.digest) == ["Bitcoin tops $100,000"]
    assert edition.digest.top[0].lead.summary_text == "Record high."
    ((message),) = edition.messages
    subject = str(assert_sound_headers(message)["Subject"])
    assert subject == "Market Digest for Nov 24: Bitcoin tops $100,000"


def test_list_unsubscribe_arrives_raw_at_the_smtp_server_and_in_the_outbox(
    tmp_path: Path, feed_server: FeedServer, inbox: Inbox
) -> None:
    feeds = [Feed(rss_document(one_entry("Stocks climb")), RSS)]
    by_smtp = run_line(tmp_path / "smtp", feed_server, inbox, feeds)
    to_outbox = run_line(tmp_path / "outbox", feed_server, None, feeds)
    for raw in [*by_smtp.messages, *to_outbox.messages]:
        value = raw_header(raw, "List-Unsubscribe")
        assert re.fullmatch(
            rb"<http://127\.0\.0\.1:8025/unsubscribe\?t=[\w.=-]+>, "
            rb"<mailto:digest\+unsubscribe@example\.com\?subject=unsubscribe%20[\w.=-]+>",
            value,
        ), value
        assert raw_header(raw, "List-Unsubscribe-Post") == b"List-Unsubscribe=One-Click"
    assert len(by_smtp.messages) == len(to_outbox.messages) == 1


def test_a_90_kb_title_is_cut_at_a_word_and_the_edition_keeps_its_stories(
    tmp_path: Path, feed_server: FeedServer, inbox: Inbox
) -> None:
    huge = "Fed minutes " + " ".join(f"word{index}" for index in range(12_000))
    assert len(huge.encode()) > 90_000
    entries = [
        FeedEntry(huge, "https://news.example.com/huge"),
        FeedEntry("Gold hits a record", "https://news.example.com/gold"),
        FeedEntry("Nvidia beats estimates", "https://news.example.com/nvda"),
    ]
    edition = run_line(tmp_path, feed_server, inbox, [Feed(rss_document(entries), RSS)])
    ((message),) = edition.messages
    html, text = parts(message)
    for where, page in [("html", html), ("text", text), ("web", edition.home)]:
        assert EMPTY_EDITION not in page, where
        assert "Gold hits a record" in page and "Nvidia beats estimates" in page, where
    titles = headlines(edition.digest)
    assert len(titles) == 3
    (cut,) = [title for title in titles if title.startswith("Fed minutes")]
    assert len(cut) <= TITLE_LIMIT and cut.endswith("…")
    assert huge.startswith(cut[:-1]) and huge[len(cut) - 1] == " "  # after a whole word
    assert cut in BeautifulSoup(html, "html.parser").get_text()


def test_controls_noncharacters_and_bidi_controls_leave_titles_feed_xml_and_subject(
    tmp_path: Path, feed_server: FeedServer, inbox: Inbox
) -> None:
    hostile = (
        "Apple\x80\x9f \ufffe\uffff\ufdd0\U0010fffe"
        "\u202eshares\u202c \u2066rise\u2069\u200e\u200f\u061c after earnings"
    )
    rss_c1 = rss_document([FeedEntry("Tesla\x85recall \x9bwidens", "https://news.example.com/t")])
    feeds = [Feed(json_feed_document(one_entry(hostile)), JSON_FEED, weight=3.0), Feed(rss_c1, RSS)]
    edition = run_line(tmp_path, feed_server, inbox, feeds)
    feed = etree.fromstring(edition.atom)  # raises unless the document is well-formed XML
    ns = {"a": "http://www.w3.org/2005/Atom"}
    summary = feed.find("a:entry/a:summary", ns)
    assert summary is not None and summary.text == (
        "2 stories. Top: Apple shares rise after earnings"
    )
    ((message),) = edition.messages
    subject = raw_header(message, "Subject")
    assert subject == b"Market Digest for Nov 24: Apple shares rise after earnings"
    assert headlines(edition.digest) == ["Apple shares rise after earnings", "Tesla recall widens"]


# -- any text at all -----------------------------------------------------------------------

#: Pieces that have broken feed readers, mail composers and HTML sanitizers.
NASTY = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<a href='javascript:alert(1)'>x</a>",
    '<a href="https://ok.example.com/">ok</a>',
    "<svg onload=alert(1)>",
    "<iframe src=https://evil.example.com>",
    "<p>",
    "</p>",
    "]]>",
    "<![CDATA[",
    "&amp;",
    "&",
    "<",
    "&#x2028;",
    "&#xd800;",
    "&#xfffe;",
    "&#x202e;",
    "&#1;",
    "&#x85;",
    "=?utf-8?q?=0D=0ABcc:_x@example.com?=",
    "=?utf-8?q?=E2=80=A8?=",
    "=?utf-8?b?7aCA?=",
    "=?x-unknown?q?x?=",
    "\r\nBcc: x@example.com",
    "\u2028",
    "\u2029",
    "\u202e",
    "\u2066",
    "\ud800",
    "\udfff",
    "\ufffe",
    "\x85",
    "\x9b",
    "\x00",
    "\x0b",
    "\ufeff",
    "word " * 400,
]
TEXT = st.lists(
    st.one_of(st.text(ANY_CHARACTER, max_size=30), st.sampled_from(NASTY)), max_size=6
).map("".join)
LINKS = st.one_of(
    st.builds(lambda tail: f"https://news.example.com/{tail}", TEXT),
    TEXT,
    st.sampled_from(
        [
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "http://[",
            "http://a:b/",
            "http://a:99999/",
            " https://news.example.com/a b\n",
            "//news.example.com/relative",
            "https://news.example.com/" + "x" * 5000,
        ]
    ),
)
ENTRIES = st.lists(st.builds(FeedEntry, title=TEXT, link=LINKS, summary=TEXT), max_size=4)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rss=ENTRIES, atom=ENTRIES, json_feed=ENTRIES)
def test_any_text_in_any_feed_gives_sound_mail_and_pages(
    rss: list[FeedEntry],
    atom: list[FeedEntry],
    json_feed: list[FeedEntry],
    feed_server: FeedServer,
    inbox: Inbox,
) -> None:
    feeds = [
        Feed(rss_document(rss), RSS),
        Feed(atom_document(atom), ATOM),
        Feed(json_feed_document(json_feed), JSON_FEED),
    ]
    with tempfile.TemporaryDirectory() as directory:
        edition = run_line(Path(directory), feed_server, inbox, feeds)
    stories = [*edition.digest.top, *(s for _, stories in edition.digest.sections for s in stories)]
    for story in stories:
        for item in story.items:
            assert_safe_line(item.title, "title")
            assert_safe_line(item.summary_text, "summary")
            assert_safe_line(item.source_name, "outlet")
            assert 0 < len(item.title) <= TITLE_LIMIT
            assert item.link.startswith(("http://", "https://")) and item.link.isprintable()
            assert " " not in item.link
    ((message),) = edition.messages
    assert header_names(message) == HEADERS
    subject = str(assert_sound_headers(message)["Subject"])
    assert subject.startswith("Market Digest for Nov 24")
    html, text = parts(message)
    assert_safe_html(html, "email", template=True)
    # The home page's one form is the site's own sign-up form; none comes from a feed.
    assert edition.home.count(subscribe_form()) == 1
    assert_safe_html(edition.home.replace(subscribe_form(), ""), "web edition", template=True)
    for where, plain in [("email", text), ("web", edition.text)]:
        assert_plain_text(plain, where)
        assert (EMPTY_EDITION in plain) == (not stories), where
    etree.fromstring(edition.atom)  # well-formed XML
