"""Turn whatever a feed carried into plain text, safe HTML and canonical links.

Sanitizing happens once, here, with an allow-list (nh3): anything not listed is dropped,
so a new trick in a feed fails closed.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import nh3

ALLOWED_TAGS = {"a", "b", "strong", "i", "em", "p", "br", "ul", "ol", "li", "blockquote", "code"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
ALLOWED_SCHEMES = {"http", "https", "mailto"}
# Dropped with everything inside them, not just unwrapped.
_DROP_WITH_CONTENT = {
    "script",
    "style",
    "iframe",
    "object",
    "embed",
    "svg",
    "math",
    "form",
    "title",
}

# Query parameters that only track the reader; removing them makes links comparable.
_TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "hsa_", "_hs")
_TRACKING_PARAMS = {"fbclid", "gclid", "dclid", "msclkid", "yclid", "igshid", "ref_src", "cmpid"}

_WHITESPACE = re.compile(r"\s+")
# get_text(" ") puts a space before punctuation that followed a tag: "at <a>X</a>." → "at X ."
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([.,;:!?)])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_html(html: str, limit: int | None = None) -> str:
    """Safe HTML: allow-listed tags, http(s)/mailto links only, no images or scripts.

    With ``limit``, only the first ``limit`` characters are kept (the sanitizer closes
    whatever the cut left open).
    """
    if limit is not None:
        html = html[:limit]
    cleaned = nh3.clean(
        _CONTROL.sub("", html),
        tags=ALLOWED_TAGS,
        clean_content_tags=_DROP_WITH_CONTENT,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_SCHEMES,
        attribute_filter=_absolute_links_only,
        link_rel="noopener noreferrer nofollow",
    )
    return cleaned.strip()


def _absolute_links_only(tag: str, attribute: str, value: str) -> str | None:
    # A relative link means nothing in a mail client, and nh3 lets any relative URL through.
    if attribute == "href" and not value.strip().lower().startswith(_ABSOLUTE_PREFIXES):
        return None
    return value


_ABSOLUTE_PREFIXES = ("http://", "https://", "mailto:")


def clean_text(html_or_text: str) -> str:
    """Plain text with collapsed whitespace, as a reader would see it."""
    if "<" not in html_or_text and "&" not in html_or_text:
        return _WHITESPACE.sub(" ", _CONTROL.sub("", html_or_text)).strip()
    # A space before every tag keeps words of adjacent blocks apart ("a</p><p>b" → "a b").
    spaced = _CONTROL.sub("", html_or_text).replace("<", " <")
    stripped = nh3.clean(spaced, tags=set(), clean_content_tags=_DROP_WITH_CONTENT)
    text = _WHITESPACE.sub(" ", html.unescape(stripped))
    return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text).strip()


def text_of_clean_html(safe_html: str) -> str:
    """Plain text of HTML that ``clean_html`` already made safe: no second sanitizer pass."""
    text = _WHITESPACE.sub(" ", html.unescape(_TAG.sub(" ", safe_html)))
    return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text).strip()


_TAG = re.compile(r"<[^>]*>")


def summarize(text: str, limit: int = 280) -> str:
    """The first one or two sentences of ``text``, at most ``limit`` characters."""
    if len(text) <= limit:
        return text
    sentences = re.split(r"(?<=[.!?])\s+", text)
    summary = ""
    for sentence in sentences[:2]:
        candidate = f"{summary} {sentence}".strip()
        if len(candidate) > limit:
            break
        summary = candidate
    if not summary:
        summary = text[: limit - 1].rsplit(" ", 1)[0] + "…"
    return summary


def safe_link(url: str) -> str | None:
    """``url`` if it is an absolute http(s) link, else None."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def canonical_link(url: str) -> str:
    """The link with scheme and host lower-cased, and fragment and tracking parameters gone."""
    parts = urlsplit(url.strip())
    query = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if not _is_tracking(name)
    ]
    netloc = parts.netloc.lower()
    if parts.port in (80, 443):
        netloc = netloc.rsplit(":", 1)[0]
    return urlunsplit(
        (parts.scheme.lower(), netloc, parts.path or "/", urlencode(query, doseq=True), "")
    )


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in _TRACKING_PARAMS or lowered.startswith(_TRACKING_PREFIXES)
