"""Small builders for test data."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import format_datetime
from xml.sax.saxutils import escape, quoteattr

from digest.models import Item, Section

BASE = dt.datetime(2026, 11, 24, 6, 0, tzinfo=dt.UTC)


def make_item(
    title: str,
    source: str = "Wire",
    *,
    hours_ago: float = 1.0,
    section: Section = Section.STOCKS,
    weight: float = 1.0,
    summary: str = "",
    link: str | None = None,
) -> Item:
    slug = "-".join(title.lower().split())[:60]
    url = link or f"https://{source.lower().replace(' ', '')}.example.com/{slug}"
    return Item(
        feed_url=f"https://{source.lower().replace(' ', '')}.example.com/rss",
        source_name=source,
        section=section,
        weight=weight,
        key=url,
        title=title,
        link=url,
        summary_text=summary,
        summary_html=f"<p>{summary}</p>" if summary else "",
        published=BASE - dt.timedelta(hours=hours_ago),
    )


@dataclass(frozen=True)
class FeedEntry:
    """One entry of a feed document; its text goes into the document as it is."""

    title: str
    link: str
    summary: str = ""
    published: dt.datetime = BASE


def rss_document(entries: Sequence[FeedEntry]) -> bytes:
    """An RSS 2.0 feed of ``entries``: text escaped, any other character left as it is.

    A lone surrogate becomes the bytes a careless encoder writes for it (not UTF-8), and a
    character XML forbids stays in, so the document is what a broken feed would send.
    """
    items = "".join(
        f"<item><title>{escape(entry.title)}</title><link>{escape(entry.link)}</link>"
        f"<guid>{escape(entry.link)}</guid><description>{escape(entry.summary)}</description>"
        f"<pubDate>{format_datetime(entry.published)}</pubDate></item>"
        for entry in entries
    )
    document = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>W</title>'
        f"{items}</channel></rss>"
    )
    return document.encode("utf-8", "surrogatepass")


def atom_document(entries: Sequence[FeedEntry]) -> bytes:
    """An Atom feed of ``entries``, written as ``rss_document`` writes RSS."""
    items = "".join(
        f"<entry><title type='html'>{escape(entry.title)}</title>"
        f"<link href={quoteattr(entry.link)}/><id>{escape(entry.link)}</id>"
        f"<updated>{entry.published.isoformat()}</updated>"
        f"<summary type='html'>{escape(entry.summary)}</summary></entry>"
        for entry in entries
    )
    document = (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>W</title><id>urn:w</id><updated>{BASE.isoformat()}</updated>{items}</feed>"
    )
    return document.encode("utf-8", "surrogatepass")


def json_feed_document(entries: Sequence[FeedEntry]) -> bytes:
    """A JSON Feed of ``entries``: every character, a lone surrogate too, as a JSON escape."""
    return json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "W",
            "items": [
                {
                    "id": entry.link,
                    "url": entry.link,
                    "title": entry.title,
                    "content_html": entry.summary,
                    "date_published": entry.published.isoformat(),
                }
                for entry in entries
            ],
        }
    ).encode()


def sample_items() -> list[Item]:
    """Every item of the demo's sample feeds, parsed as the demo parses them."""
    from pathlib import Path

    from digest.models import FeedSource
    from digest.parse import parse_feed

    feeds = Path(__file__).resolve().parent.parent / "samples" / "feeds"
    fetched = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
    return [
        item
        for path in sorted(feeds.glob("*.xml"))
        for item in parse_feed(
            path.read_bytes(),
            FeedSource(path.stem, f"https://{path.stem}.example/rss", Section.STOCKS),
            fetched,
        )
    ]
