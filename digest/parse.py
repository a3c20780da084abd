"""Parse fetched feed bytes into clean ``Item`` values.

fastfeedparser (lxml) reads nearly every feed, at about 50 times feedparser's speed; feedparser
reads what it cannot (broken XML, odd encodings). Either way only bytes go in, never a URL or
a path, and our own sanitizer cleans every field once (both parsers' own cleaning is off or
unused). Text is made safe here, once: every title, name and summary leaves as a
``safe_line`` (valid, printable, one line, bounded), so no later stage has to doubt it.
"""

from __future__ import annotations

import calendar
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import fastfeedparser

from .models import FeedSource, Item
from .sanitize import (
    canonical_link,
    clean_html,
    clean_text,
    safe_line,
    safe_link,
    safe_spaced_line,
    summarize,
    text_of_clean_html,
    valid_text,
)

#: Characters of an entry's HTML that are kept: the digest shows a sentence or two, and some
#: feeds carry whole articles (hundreds of KB) that would only cost sanitizing time.
SUMMARY_SOURCE_LIMIT = 16_000
#: Longest summary line kept, in characters (a sentence or two).
SUMMARY_LIMIT = 280
#: Longest title kept, in characters. Headlines run to about 100 (outlets write them for
#: search results and the subject line shows 110), so this leaves room for the wordiest,
#: while a feed that puts a whole article in its titles still gives a headline: one story
#: can never outgrow the message on its own (a 90 KB title once emptied the edition, as
#: every story was dropped to keep the HTML part under Gmail's clipping size).
TITLE_LIMIT = 300
#: Longest outlet name: a name is a few words, and it is shown beside every story.
SOURCE_NAME_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Entry:
    """One feed entry as a parser gave it, before cleaning."""

    title: str
    link: str
    guid: str
    summary: str
    published: dt.datetime | None


def read_entries(
    body: bytes, content_type: str | None = None, base_url: str | None = None
) -> list[Entry]:
    """The entries of the feed document ``body``: fastfeedparser first, then feedparser.

    feedparser takes over when the fast path fails, finds nothing, or decoded the bytes
    wrongly (a replacement character), and whenever the server named a charset other than
    UTF-8: feedparser applies the HTTP and XML encoding rules (RFC 7303) properly.
    """
    entries: list[Entry] = []
    if _is_utf8_or_unnamed(content_type):
        try:
            entries = fast_entries(body)
        except Exception:  # any failure of the fast path: try the careful one
            entries = []
        if any(_REPLACEMENT in entry.title + entry.summary for entry in entries):
            entries = []
    return entries or slow_entries(body, content_type, base_url)


def parse_feed(
    body: bytes, source: FeedSource, fetched_at: dt.datetime, content_type: str | None = None
) -> list[Item]:
    """Every usable entry of ``body`` as a clean item.

    ``content_type`` is the HTTP Content-Type header, which may name the charset. An entry
    without a title or an http(s) link is skipped; one without a date gets ``fetched_at``.
    A document that is not a feed gives an empty list.
    """
    return list(_items(read_entries(body, content_type, source.url), source, fetched_at))


_REPLACEMENT = "\ufffd"
_ABSOLUTE = ("http://", "https://")


def _is_utf8_or_unnamed(content_type: str | None) -> bool:
    if not content_type:
        return True
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower() in ("utf-8", "utf8", "us-ascii")
    return True


def _items(entries: Iterable[Entry], source: FeedSource, fetched_at: dt.datetime) -> Iterable[Item]:
    source_name = safe_line(source.name, SOURCE_NAME_LIMIT)
    for entry in entries:
        title = clean_text(entry.title, TITLE_LIMIT)
        # Relative links are relative to the feed's own address; an absolute one skips the
        # join, which would give the same canonical link at a third of safe_link's cost.
        base = None if entry.link.lstrip().lower().startswith(_ABSOLUTE) else source.url
        link = safe_link(entry.link, base=base) if entry.link else None
        if not title or link is None:
            continue
        summary_html = clean_html(entry.summary, limit=SUMMARY_SOURCE_LIMIT)
        canonical = canonical_link(link)
        yield Item(
            feed_url=source.url,
            source_name=source_name,
            section=source.section,
            weight=source.weight,
            primary=source.primary,
            key=_identity(entry.guid) or canonical,
            title=title,
            link=canonical,
            summary_text=summary_of(summary_html),
            summary_html=summary_html,
            published=entry.published or fetched_at,
        )


def summary_of(summary_html: str) -> str:
    """The summary line of an entry's clean HTML, read from its start only when that is
    enough: ``summarize`` keeps at most ``SUMMARY_LIMIT`` characters of the text's start."""
    if len(summary_html) > _HEAD_CHARACTERS:
        # Cut just after a tag's end, so no tag or character reference is split: the text
        # of the head is then the start of the whole text.
        end = summary_html.rfind(">", 0, _HEAD_CHARACTERS) + 1
        if end:
            text = safe_spaced_line(text_of_clean_html(summary_html[:end]))
            if len(text) > SUMMARY_LIMIT + _HEAD_MARGIN:
                return summarize(text, SUMMARY_LIMIT)
    return summarize(safe_spaced_line(text_of_clean_html(summary_html)), SUMMARY_LIMIT)


#: Characters of the summary's HTML read first; and how many characters of text past
#: ``SUMMARY_LIMIT`` make the head enough (the last few may change once the rest follows,
#: as a space before punctuation goes).
_HEAD_CHARACTERS = 2_000
_HEAD_MARGIN = 20


def _identity(guid: str) -> str:
    """The guid, with a permalink guid made canonical so tracking parameters don't split it."""
    guid = valid_text(guid).strip()  # stored: it must encode
    return canonical_link(guid) if guid.startswith(("http://", "https://")) else guid


# -- fastfeedparser ----------------------------------------------------------------------------


def fast_entries(body: bytes) -> list[Entry]:
    parsed = fastfeedparser.parse(body, include_content=True, include_tags=False)
    return [
        Entry(
            title=str(entry.get("title") or ""),
            link=str(entry.get("link") or ""),
            guid=str(entry.get("id") or ""),
            summary=_summary(entry, "description"),
            published=_iso_date(entry.get("published") or entry.get("updated")),
        )
        for entry in parsed.entries
    ]


def _summary(entry: Any, summary_key: str) -> str:
    """The entry's summary, or else its first non-empty content."""
    summary = entry.get(summary_key) or ""
    if summary:
        return str(summary)
    for content in entry.get("content") or ():
        if content.get("value"):
            return str(content["value"])
    return ""


def _iso_date(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    # Whole seconds, as feedparser gives them: the same entry has the same date either way.
    return moment.astimezone(dt.UTC).replace(microsecond=0)


# -- feedparser --------------------------------------------------------------------------------


def slow_entries(
    body: bytes, content_type: str | None = None, base_url: str | None = None
) -> list[Entry]:
    # Loaded here, for the few feeds that need it: most runs never do.
    import feedparser

    # Our own sanitizer runs on every field; feedparser's would only cost time.
    feedparser.SANITIZE_HTML = False
    feedparser.RESOLVE_RELATIVE_URIS = False
    headers = {"content-type": content_type} if content_type else {}
    if base_url:
        headers["content-location"] = base_url
    # A stream, not bytes: feedparser opens a bytes value that looks like a path or URL.
    parsed = feedparser.parse(io.BytesIO(body), response_headers=headers)
    return [
        Entry(
            title=str(entry.get("title", "")),
            link=str(entry.get("link", "") or ""),
            guid=str(entry.get("id") or ""),
            summary=_summary(entry, "summary"),
            published=_struct_date(entry),
        )
        for entry in parsed.entries
    ]


def _struct_date(entry: Any) -> dt.datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        # dict.get: feedparser's own get maps missing keys to others, with a warning.
        parsed = dict.get(entry, key)
        if parsed:
            # feedparser gives UTC struct_time; timegm reads it as UTC.
            return dt.datetime.fromtimestamp(calendar.timegm(parsed), tz=dt.UTC)
    return None
