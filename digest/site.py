"""The site's addresses, and the signed tokens its personal links carry.

Every URL the emails and the web pages point at is made here, so the scheme lives once.
Links carry an opaque signed token rather than the address itself, which would leak it
into logs and looks, to spam filters, like a tracking link.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from email.utils import parseaddr
from urllib.parse import quote

ARCHIVE_PATH = "/archive/"
FEED_PATH = "/feed.xml"
PREFERENCES_PATH = "/preferences"
UNSUBSCRIBE_PATH = "/unsubscribe"


def edition_path(date: dt.date, text: bool = False) -> str:
    """The web edition of ``date``, or its plain-text version."""
    return f"{ARCHIVE_PATH}{date.isoformat()}{'.txt' if text else ''}"


def is_published(date: dt.date, today: dt.date, sent: bool, story_count: int) -> bool:
    """Whether the site shows the edition of ``date``: one that went out to its subscribers,
    or today's while it has stories. A dry run or a build for another date is never public,
    and neither is an empty edition nobody received."""
    return sent or (date == today and story_count > 0)


def sign(key: str, email: str) -> str:
    digest = hmac.new(key.encode(), email.lower().encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def make_token(key: str, email: str) -> str:
    """An opaque, signed token naming a subscriber, for links that act on their behalf."""
    encoded = base64.urlsafe_b64encode(email.encode()).decode().rstrip("=")
    return f"{encoded}.{sign(key, email)}"


def read_token(key: str, token: str) -> str | None:
    """The address a token made by ``make_token`` names, or None if it is not genuine."""
    encoded, _, signature = token.partition(".")
    try:
        email = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    genuine = signature and hmac.compare_digest(sign(key, email), signature)
    return email if genuine else None


@dataclass(frozen=True, slots=True)
class Links:
    """Where a message or page points besides the stories."""

    site_url: str
    unsubscribe: str
    view_in_browser: str
    preferences: str = ""


@dataclass(frozen=True, slots=True)
class Site:
    """The public site at ``url``, whose personal links are signed with ``key``."""

    url: str
    key: str

    def page(self, path: str) -> str:
        return f"{self.url}{path}"

    def personal(self, path: str, email: str) -> str:
        """``path`` on the site, acting for ``email``."""
        return f"{self.url}{path}?t={make_token(self.key, email)}"

    def reader(self, token: str) -> str | None:
        """The subscriber a link's token names, or None if it is not genuine."""
        return read_token(self.key, token)

    def links(self, date: dt.date, email: str | None = None) -> Links:
        """The links of ``date``'s edition: ``email``'s own, or the public page's."""
        if email is None:
            return Links(
                self.url,
                unsubscribe=self.page(UNSUBSCRIBE_PATH),
                view_in_browser=self.page(edition_path(date)),
                preferences=self.page(PREFERENCES_PATH),
            )
        return Links(
            self.url,
            unsubscribe=self.personal(UNSUBSCRIBE_PATH, email),
            view_in_browser=self.personal(edition_path(date), email),
            preferences=self.personal(PREFERENCES_PATH, email),
        )

    def unsubscribe_mailto(self, sender: str, email: str) -> str:
        """A mailto: unsubscribe address at the sender's domain, carrying the signed address."""
        local, _, domain = parseaddr(sender)[1].partition("@")
        subject = quote(f"unsubscribe {make_token(self.key, email)}")
        return f"mailto:{local}+unsubscribe@{domain}?subject={subject}"
