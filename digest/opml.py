"""Read and write OPML, the feed list format every feed reader speaks.

Reading uses a parser with no DTD or entity support, so an OPML file cannot pull in local
files or expand into gigabytes.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit
from xml.sax.saxutils import quoteattr

from lxml import etree

from .config import is_http_url
from .errors import ConfigError
from .models import FeedSource, Section


def read_opml(path: Path, default_section: Section | None) -> list[FeedSource]:
    """The feeds listed in the OPML file ``path``.

    A feed's section comes from its ``category`` attribute, else from the outline folder
    it sits in ("Stocks", "Crypto"), else ``default_section``.
    """
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.parse(str(path), parser).getroot()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except etree.XMLSyntaxError as exc:
        raise ConfigError(f"{path}: line {exc.lineno}: not valid OPML: {exc.msg}") from None
    if root.tag != "opml":
        raise ConfigError(f"{path}: not an OPML file (the root element is <{root.tag}>)")
    feeds = []
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or "").strip()
        if not url:
            continue
        where = f"{path}: line {outline.sourceline}"
        if not is_http_url(url):
            raise ConfigError(f"{where}: xmlUrl: expected an http(s) URL, got {url!r}")
        section = _section(outline, default_section)
        if section is None:
            raise ConfigError(
                f'{where}: no section for {url} (give it category="stocks" or '
                '"crypto", or pass --section)'
            )
        name = (outline.get("title") or outline.get("text") or urlsplit(url).netloc).strip()
        feeds.append(FeedSource(name=name, url=url, section=section))
    return feeds


def _section(outline: etree._Element, default: Section | None) -> Section | None:
    candidates = [outline.get("category") or ""]
    parent = outline.getparent()
    while parent is not None and parent.tag == "outline":
        candidates.append(parent.get("text") or parent.get("title") or "")
        parent = parent.getparent()
    for candidate in candidates:
        for word in candidate.replace(",", "/").split("/"):
            try:
                return Section(word.strip().lower())
            except ValueError:
                continue
    return default


def write_opml(feeds: list[FeedSource], title: str) -> str:
    """An OPML document listing ``feeds``, each with its section as its category."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<opml version="2.0">',
        f"  <head><title>{_escape(title)}</title></head>",
        "  <body>",
    ]
    for feed in feeds:
        lines.append(
            f'    <outline type="rss" text={quoteattr(feed.name)} title={quoteattr(feed.name)}'
            f" xmlUrl={quoteattr(feed.url)} category={quoteattr(feed.section.value)}/>"
        )
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
