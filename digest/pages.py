"""The site's own pages around the editions: the archive, short message pages, and the tags
that make a shared link preview well (title, description, Open Graph).

Pure: plain values in, HTML out. They wear the edition's colours (the masthead's navy, the
links' blue, the grey page) so that moving from an edition to the archive feels like one site.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .render import long_date
from .site import ARCHIVE_PATH, SUBSCRIBE_PATH, edition_path

#: Editions on one archive page.
ARCHIVE_PAGE_SIZE = 20
#: Headlines shown for each edition in the archive.
ARCHIVE_HEADLINES = 3

_STYLE = (
    "body{margin:0;background:#eef0f3;color:#36404d;font-family:Helvetica,Arial,sans-serif;"
    "font-size:15px;line-height:22px}"
    ".sheet{box-sizing:border-box;max-width:600px;margin:16px auto;background:#fff;"
    "border:1px solid #dde1e6}"
    ".masthead{background:#0f1c2e;padding:22px 20px}"
    ".brand{color:#fff;font-family:Georgia,'Times New Roman',serif;font-size:28px;"
    "line-height:34px;font-weight:bold;text-decoration:none}"
    ".tagline{color:#c9d3e0;font-size:14px;margin:4px 0 0 0}"
    ".body{padding:8px 20px 20px 20px}"
    "h1{color:#0f1c2e;font-family:Georgia,'Times New Roman',serif;font-size:22px;"
    "line-height:28px;margin:16px 0 8px 0}"
    "a{color:#1d5fd1}"
    ".edition{border-top:1px solid #e3e6ea;padding:14px 0}"
    ".edition h2{margin:0 0 6px 0;font-size:13px;line-height:20px;text-transform:uppercase;"
    "letter-spacing:.04em}"
    ".edition h2 a{color:#a05a00;text-decoration:none}"
    ".edition ol{margin:0;padding:0 0 0 20px}"
    ".edition li{margin:0 0 4px 0}"
    ".edition li a{color:#0f1c2e;font-weight:bold;text-decoration:none}"
    ".pager{display:flex;justify-content:space-between;border-top:1px solid #e3e6ea;"
    "padding:14px 0 0 0}"
    "button{padding:8px 16px;font-size:15px;font-weight:bold;color:#fff;"
    "background:#1d5fd1;border:0}"
)


@dataclass(frozen=True, slots=True)
class Head:
    """What a page tells browsers and link previews about itself."""

    title: str
    description: str
    #: The page's public address (site_url + path).
    url: str
    site_name: str


def meta_tags(head: Head) -> str:
    """The description and Open Graph tags (escaped), for inside <head>."""
    pairs = [
        ("name", "description", head.description),
        ("property", "og:type", "website"),
        ("property", "og:site_name", head.site_name),
        ("property", "og:title", head.title),
        ("property", "og:description", head.description),
        ("property", "og:url", head.url),
        ("name", "twitter:card", "summary"),
    ]
    return "".join(
        f"<meta {kind}='{html.escape(name)}' content='{html.escape(value)}'>"
        for kind, name, value in pairs
    )


_HEAD = re.compile(r"<head[^>]*>", re.IGNORECASE)


def with_meta(page: str, head: Head) -> str:
    """``page`` (a whole HTML document) with ``head``'s tags at the top of its <head>."""
    found = _HEAD.search(page)
    if found is None:
        return page
    return page[: found.end()] + meta_tags(head) + page[found.end() :]


def shell(head: Head, heading: str, body: str) -> str:
    """A page of the site: the masthead, ``heading`` and ``body`` (HTML, already escaped)."""
    name = html.escape(head.site_name)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(head.title)}</title>{meta_tags(head)}<style>{_STYLE}</style>"
        "</head><body><div class='sheet'><div class='masthead'>"
        f"<a class='brand' href='/'>{name}</a></div>"
        f"<div class='body'><h1>{html.escape(heading)}</h1>{body}</div></div></body></html>"
    )


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    """One edition in the archive: its date and its top headlines (title, link)."""

    date: dt.date
    headlines: tuple[tuple[str, str], ...]


def page_count(editions: int) -> int:
    return max(1, math.ceil(editions / ARCHIVE_PAGE_SIZE))


def archive_page(
    entries: Sequence[ArchiveEntry], page: int, pages: int, head: Head, tagline: str
) -> str:
    """One page of the archive, newest first, each edition with its top headlines."""
    blocks = []
    for entry in entries:
        items = "".join(
            f"<li><a href='{html.escape(link)}'>{html.escape(title)}</a></li>"
            for title, link in entry.headlines
        )
        blocks.append(
            f"<div class='edition'><h2><a href='{edition_path(entry.date)}'>"
            f"{html.escape(long_date(entry.date))}</a></h2><ol>{items}</ol></div>"
        )
    if not blocks:
        blocks.append("<p>No edition has gone out yet.</p>")
    newer = (
        f"<a rel='prev' href='{_archive_url(page - 1)}'>&larr; Newer</a>" if page > 1 else "<span>"
    )
    older = (
        f"<a rel='next' href='{_archive_url(page + 1)}'>Older &rarr;</a>"
        if page < pages
        else "<span>"
    )
    newer += "" if page > 1 else "</span>"
    older += "" if page < pages else "</span>"
    intro = (
        f"<p>{html.escape(tagline)}. Every edition so far; "
        f"<a href='{SUBSCRIBE_PATH}'>get the next one by email</a>.</p>"
    )
    pager = f"<nav class='pager'>{newer}<span>Page {page} of {pages}</span>{older}</nav>"
    return shell(head, "Archive", intro + "".join(blocks) + pager)


def _archive_url(page: int) -> str:
    return ARCHIVE_PATH if page == 1 else f"{ARCHIVE_PATH}?page={page}"
