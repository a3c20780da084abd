"""Turn whatever a feed carried into plain text, safe HTML and canonical links.

Sanitizing happens once, here, with an allow-list (nh3): anything not listed is dropped,
so a new trick in a feed fails closed. Every line of text a reader sees (titles, summaries,
header values) passes ``safe_line``, so later stages can trust it to be one line of valid,
printable Unicode.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

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

#: Longest link kept (the limit of the sitemaps protocol and of several browsers): a longer
#: one is not a real article's address, and it would cost every message it appears in.
LINK_LIMIT = 2048

# Runs of whitespace become one space with " ".join(text.split()): str.split() splits at the
# line and paragraph separators (U+2028, U+2029), NEL, VT, FF and the information separators,
# everything str.splitlines() splits at, so nothing of that is left.
# get_text(" ") puts a space before punctuation that followed a tag: "at <a>X</a>." → "at X ."
_PUNCTUATION = ".,;:!?)"


def _tighten(line: str) -> str:
    """``line``, whose spaces are single, without the space before punctuation: a plain
    replace of each pair, several times cheaper than one regex over the line."""
    for mark in _PUNCTUATION:
        pair = " " + mark
        if pair in line:
            line = line.replace(pair, mark)
    return line


# Code points that are not characters: UTF-8 cannot encode a lone surrogate (SQLite and
# every writer refuse it), and noncharacters are not allowed in XML or interchange.
_SURROGATES = "\ud800-\udfff"
_NONCHARACTERS = "\ufdd0-\ufdef" + "".join(
    f"{chr(plane + 0xFFFE)}{chr(plane + 0xFFFF)}" for plane in range(0, 0x110000, 0x10000)
)
# Bidirectional formatting characters reorder how the text around them is shown, so a title
# could read as something else than it says (the "Trojan Source" trick, CVE-2021-42574).
_BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# C0 and C1 controls and DEL, except those that separate words (tab, newlines, form feed,
# the information separators, NEL): those count as whitespace (``\s``) and become a space.
_CONTROLS = "\x00-\x08\x0e-\x1b\x7f\x80-\x84\x86-\x9f"
_NOT_CHARACTERS = re.compile(f"[{_SURROGATES}{_NONCHARACTERS}]")
_NOT_IN_HTML = re.compile(f"[{_SURROGATES}{_NONCHARACTERS}{_CONTROLS}]")
_NOT_IN_A_LINE = re.compile(f"[{_SURROGATES}{_NONCHARACTERS}{_CONTROLS}{_BIDI_CONTROLS}]")
# The classes above list 34 single characters beyond the first plane, which makes the regex
# engine test each of them at every position (about 150 ns a character). These wider
# classes, every character beyond the first plane instead, test in a tenth of that time:
# text that has none of them (nearly all) skips the exact pass.
_BEYOND_BMP = "\U00010000-\U0010ffff"
_BMP_NONCHARACTERS = "\ufdd0-\ufdef\ufffe\uffff"
_MAYBE_NOT_CHARACTERS = re.compile(f"[{_SURROGATES}{_BMP_NONCHARACTERS}{_BEYOND_BMP}]")
_MAYBE_NOT_IN_HTML = re.compile(f"[{_SURROGATES}{_BMP_NONCHARACTERS}{_CONTROLS}{_BEYOND_BMP}]")
_MAYBE_NOT_IN_A_LINE = re.compile(
    f"[{_SURROGATES}{_BMP_NONCHARACTERS}{_CONTROLS}{_BIDI_CONTROLS}{_BEYOND_BMP}]"
)


def _drop(exact: re.Pattern[str], maybe: re.Pattern[str], text: str) -> str:
    """``text`` without the characters ``exact`` matches; ``maybe`` matches a superset."""
    return exact.sub("", text) if maybe.search(text) else text


# Characters that separate words but are not HTML whitespace: a space keeps the words apart.
_ODD_HTML_WHITESPACE = re.compile("[\x0b\x1c-\x1f\x85]")
_MAYBE_TO_CHANGE_IN_HTML = re.compile(
    f"[{_SURROGATES}{_BMP_NONCHARACTERS}{_CONTROLS}\x0b\x1c-\x1f\x85{_BEYOND_BMP}]"
)


def safe_line(text: str, limit: int | None = None) -> str:
    """``text`` as one line of valid, printable Unicode, at most ``limit`` characters.

    Surrogates, noncharacters, C0 and C1 controls and bidirectional formatting characters
    are removed; any run of whitespace (line and paragraph separators included) becomes one
    space, and none leads or trails. Longer than ``limit``, the text is cut after a word
    and ends with "…". Every other character is kept: letters of any script, emoji and their
    joiners, combining marks. ``safe_line(safe_line(t, n), n) == safe_line(t, n)``.
    """
    line = " ".join(_drop(_NOT_IN_A_LINE, _MAYBE_NOT_IN_A_LINE, text).split())
    if limit is not None and len(line) > limit:
        line = _cut(line, limit)
    return line


def safe_spaced_line(text: str) -> str:
    """``safe_line(text)`` for text whose white space is already single spaces, none at the
    ends (as ``text_of_clean_html`` gives): nothing to do unless a character must go."""
    return safe_line(text) if _MAYBE_NOT_IN_A_LINE.search(text) else text


def valid_text(text: str) -> str:
    """``text`` without surrogates and noncharacters: what any encoder and XML takes."""
    return _drop(_NOT_CHARACTERS, _MAYBE_NOT_CHARACTERS, text)


def _cut(line: str, limit: int) -> str:
    """The start of ``line`` in at most ``limit`` characters, the last one "…"."""
    if limit < 1:
        return ""
    head = line[: limit - 1]
    if line[limit - 1] != " ":
        word_end = head.rfind(" ")
        # After a word, unless that drops more than half: one endless "word" (a script
        # written without spaces, a run of garbage) is cut where it reaches the limit.
        if word_end >= limit // 2:
            head = head[:word_end]
    return head.rstrip(" ,;:") + "…"


def clean_html(html: str, limit: int | None = None) -> str:
    """Safe HTML: allow-listed tags, http(s)/mailto links only, no images or scripts.

    With ``limit``, only the first ``limit`` characters are kept (the sanitizer closes
    whatever the cut left open).
    """
    if limit is not None:
        html = html[:limit]
    # Before: nh3 cannot take a surrogate at all (it raises).
    cleaned = _HTML_CLEANER.clean(_html_characters(html))
    # After as well when there are numeric character references ("&#xFFFE;", "&#x1;"): they
    # come out as the character. Without them every character out was a character in (named
    # references give no control or noncharacter), so a second pass would find nothing.
    if "&#" in html:
        cleaned = _html_characters(cleaned)
    return cleaned.strip()


def _html_characters(html: str) -> str:
    if not _MAYBE_TO_CHANGE_IN_HTML.search(html):
        return html  # nearly all: one scan instead of two
    return _ODD_HTML_WHITESPACE.sub(" ", _drop(_NOT_IN_HTML, _MAYBE_NOT_IN_HTML, html))


def _absolute_links_only(tag: str, attribute: str, value: str) -> str | None:
    # A relative link means nothing in a mail client, and nh3 lets any relative URL through.
    if attribute == "href" and not value.strip().lower().startswith(_ABSOLUTE_PREFIXES):
        return None
    return value


_ABSOLUTE_PREFIXES = ("http://", "https://", "mailto:")

# Built once: nh3.clean would build its rules from these sets again on every call.
_HTML_CLEANER = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    clean_content_tags=_DROP_WITH_CONTENT,
    attributes=ALLOWED_ATTRIBUTES,
    url_schemes=ALLOWED_SCHEMES,
    attribute_filter=_absolute_links_only,
    link_rel="noopener noreferrer nofollow",
)
_TEXT_CLEANER = nh3.Cleaner(tags=set(), clean_content_tags=_DROP_WITH_CONTENT)


def clean_text(html_or_text: str, limit: int | None = None) -> str:
    """Plain text as a reader would see it, made a ``safe_line`` of at most ``limit``."""
    text = _drop(_NOT_IN_A_LINE, _MAYBE_NOT_IN_A_LINE, html_or_text)
    if "<" in text or "&" in text:
        # A space before every tag keeps words of adjacent blocks apart ("a</p><p>b" → "a b").
        stripped = _TEXT_CLEANER.clean(text.replace("<", " <"))
        text = " ".join(html.unescape(stripped).split())
        text = _tighten(text)
    # Last: entities unescape to any character at all ("&#x2028;", "&#x202E;").
    return safe_line(text, limit)


def text_of_clean_html(safe_html: str) -> str:
    """Plain text of HTML that ``clean_html`` already made safe: no second sanitizer pass."""
    text = " ".join(html.unescape(_TAG.sub(" ", safe_html)).split())
    return _tighten(text).strip()


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


def safe_link(url: str, base: str | None = None) -> str | None:
    """``url``, resolved against ``base``, if it is an absolute http(s) link, else None.

    The link is made printable: tabs and newlines go (as browsers drop them), and any other
    whitespace, control or invisible character is percent-encoded. A link longer than
    ``LINK_LIMIT``, or one that does not parse (a bad port or IPv6 host), is no link.
    """
    if base is None and len(url) <= LINK_LIMIT and _PLAIN_LINK.fullmatch(url):
        return url  # what _safe_link_by_parts gives back for it, at a tenth of the cost
    return _safe_link_by_parts(url, base)


def _safe_link_by_parts(url: str, base: str | None) -> str | None:
    url = _URL_NEWLINES.sub("", valid_text(url)).strip()
    if len(url) > LINK_LIMIT:  # before encoding, which only makes it longer
        return None
    if not url.isprintable() or " " in url:
        url = "".join(c if c.isprintable() and c != " " else quote(c) for c in url)
    try:
        if base is not None:
            url = urljoin(base, url)
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number from 0 to 65535 raises ValueError
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or len(url) > LINK_LIMIT:
        return None
    return url


_URL_NEWLINES = re.compile("[\t\n\r]")
# An http(s) link of printable ASCII with a host of letters, digits, dots and hyphens and no
# port: nothing to strip, encode or refuse in it (most feed links are like this).
_PLAIN_LINK = re.compile(r"https?://[A-Za-z0-9.\-]+(?:[/?#][!-~]*)?")
# Such a link with a lower-case host, a path, no fragment and a query of name=value pairs in
# characters that need no quoting: canonical once its tracking pairs are dropped, with
# nothing to lower-case, add, decode or quote.
_CANONICAL_LINK = re.compile(
    r"https?://[a-z0-9.\-]+/[!-\"$-\x3e@-~]*"
    r"(?:\?[A-Za-z0-9_.~\-]+=[A-Za-z0-9_.~\-]*(?:&[A-Za-z0-9_.~\-]+=[A-Za-z0-9_.~\-]*)*)?"
)


def canonical_link(url: str) -> str:
    """The link with scheme and host lower-cased, and fragment and tracking parameters gone.

    A string that does not parse as a URL comes back stripped, otherwise unchanged.
    """
    if not _CANONICAL_LINK.fullmatch(url):
        return _canonical_by_parts(url)
    # What _canonical_by_parts gives for it, without splitting and joining it again.
    head, _, query = url.partition("?")
    if not query:
        return url
    kept = [pair for pair in query.split("&") if not _is_tracking(pair.partition("=")[0])]
    return f"{head}?{'&'.join(kept)}" if kept else head


def _canonical_by_parts(url: str) -> str:
    url = valid_text(url).strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    query = ""
    if parts.query:
        kept = [
            (name, value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
            if not _is_tracking(name)
        ]
        query = urlencode(kept, doseq=True)
    netloc = parts.netloc.lower()
    if port in (80, 443):
        netloc = netloc.rsplit(":", 1)[0]
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", query, ""))


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in _TRACKING_PARAMS or lowered.startswith(_TRACKING_PREFIXES)
