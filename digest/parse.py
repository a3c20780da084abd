"""Parse fetched feed bytes into clean ``Item`` values.

Only bytes go in: feedparser is never handed a URL or a path, so nothing a feed or a user
supplies is opened by the parser.
"""

from __future__ import annotations

import calendar
import datetime as dt
import io
from typing import Any

import feedparser

from .models import FeedSource, Item
from .sanitize import canonical_link, clean_html, clean_text, safe_link, summarize

# Our own sanitizer runs on every field; feedparser's would only cost time.
feedparser.SANITIZE_HTML = False
feedparser.RESOLVE_RELATIVE_URIS = False


def parse_feed(body: bytes, source: FeedSource, fetched_at: dt.datetime) -> list[Item]:
    """Every usable entry of the feed document ``body``.

    An entry without a title or an http(s) link is skipped; one without a date gets
    ``fetched_at``. A document that is not a feed at all gives an empty list.
    """
    # A stream, not bytes: feedparser opens a bytes value that looks like a path or URL.
    parsed = feedparser.parse(io.BytesIO(body), response_headers={"content-location": source.url})
    items = []
    for entry in parsed.entries:
        item = _item(entry, source, fetched_at)
        if item is not None:
            items.append(item)
    return items


def _item(entry: Any, source: FeedSource, fetched_at: dt.datetime) -> Item | None:
    title = clean_text(entry.get("title", ""))
    link = safe_link(entry.get("link", "") or "")
    if not title or link is None:
        return None
    summary_html = clean_html(_summary_source(entry))
    summary_text = summarize(clean_text(summary_html))
    guid = (entry.get("id") or "").strip()
    return Item(
        feed_url=source.url,
        source_name=source.name,
        section=source.section,
        weight=source.weight,
        key=guid or canonical_link(link),
        title=title,
        link=canonical_link(link),
        summary_text=summary_text,
        summary_html=summary_html,
        published=_published(entry) or fetched_at,
    )


def _summary_source(entry: Any) -> str:
    summary = entry.get("summary") or ""
    if summary:
        return str(summary)
    for content in entry.get("content") or ():
        if content.get("value"):
            return str(content["value"])
    return ""


def _published(entry: Any) -> dt.datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        # dict.get: feedparser's own get maps missing keys to others, with a warning.
        parsed = dict.get(entry, key)
        if parsed:
            # feedparser gives UTC struct_time; timegm reads it as UTC.
            return dt.datetime.fromtimestamp(calendar.timegm(parsed), tz=dt.UTC)
    return None
