"""Find the feeds an HTML page points to, for when someone gives a page instead of a feed."""

from __future__ import annotations

import warnings
from urllib.parse import urljoin

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, XMLParsedAsHTMLWarning

_FEED_TYPES = {
    "application/rss+xml",
    "application/atom+xml",
    "application/feed+json",
    "application/json",
}


def discover_feeds(page: bytes, page_url: str) -> list[str]:
    """Absolute http(s) URLs of the feeds ``page`` advertises with <link rel="alternate">."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(page, "html.parser")
    found = []
    for link in soup.find_all("link"):
        rel = link.get("rel") or ()
        kind = str(link.get("type") or "").lower()
        href = str(link.get("href") or "")
        if "alternate" in rel and kind in _FEED_TYPES and href:
            url = urljoin(page_url, href)
            if url.startswith(("http://", "https://")) and url not in found:
                found.append(url)
    return found
