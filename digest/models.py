"""The plain data that flows through the pipeline.

``FeedSource → FetchResult → Item → Story → Digest → Email → Delivery``: each stage takes
and returns these frozen dataclasses, never dicts, so every field is named and typed once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from zoneinfo import ZoneInfo


class Section(StrEnum):
    """Where a story is shown in the edition."""

    STOCKS = "stocks"
    CRYPTO = "crypto"
    #: Macro, rates and commodities.
    MARKETS = "markets"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Cadence(StrEnum):
    """Which days an edition goes out (``edition.schedule``)."""

    DAILY = "daily"
    #: Monday to Friday.
    WEEKDAYS = "weekdays"


class Calendar(StrEnum):
    """The market calendar that decides whether the Stocks section runs (``edition.calendar``)."""

    #: Every day the edition goes out has a Stocks section.
    NONE = "none"
    #: The New York Stock Exchange: no Stocks section on a day the exchange is closed.
    NYSE = "nyse"


@dataclass(frozen=True, slots=True)
class Timetable:
    """When editions go out: the rules of ``digest serve``'s calendar (see ``timetable``)."""

    send_at: dt.time
    timezone: ZoneInfo
    schedule: Cadence = Cadence.DAILY
    calendar: Calendar = Calendar.NONE
    #: A send missed by less than this (the service was down) is made up once on return.
    catch_up: dt.timedelta = dt.timedelta(hours=6)


class Method(StrEnum):
    """How headlines are grouped into stories."""

    #: TF-IDF of words and word parts.
    LIGHT = "light"
    #: TF-IDF blended with a sentence embedding (the optional ``embeddings`` extra).
    EMBEDDING = "embedding"


@dataclass(frozen=True, slots=True)
class FeedSource:
    """A feed as configured: where it lives and how much its stories count."""

    name: str
    url: str
    section: Section
    #: Multiplies the score of every story the outlet covers; 1.0 is an ordinary outlet.
    weight: float = 1.0
    #: A primary source: the company, exchange or regulator itself, not a report about it.
    primary: bool = False


@dataclass(frozen=True, slots=True)
class Validators:
    """What the server said last time, sent back for a conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome of one feed request: a body, 'not modified', or an error in words."""

    source: FeedSource
    status: int | None
    body: bytes | None = None
    validators: Validators = Validators()
    error: str | None = None
    #: Seconds from sending the request to the last byte of the response.
    elapsed: float = 0.0
    #: The Content-Type header, which may name the charset.
    content_type: str | None = None
    #: Where a permanent redirect (301/308) says the feed now lives.
    moved_to: str | None = None
    #: Seconds the server asked us to wait (429/503 with Retry-After).
    retry_after: float | None = None
    #: Seconds the request waited for a free connection to its host before it left.
    waited: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class Origin(StrEnum):
    """Where a feed was listed."""

    CONFIG = "config"
    CLI = "cli"


@dataclass(frozen=True, slots=True)
class FeedState:
    """A feed as the store knows it: its configuration and what the last fetches left."""

    source: FeedSource
    active: bool = True
    origin: Origin = Origin.CONFIG
    validators: Validators = Validators()
    last_attempt: dt.datetime | None = None
    last_success: dt.datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    last_item_count: int = 0
    #: Not fetched before this: it is backing off, or the server asked us to wait.
    next_attempt: dt.datetime | None = None
    #: When the publisher said 410 Gone; such a feed is no longer fetched.
    gone_at: dt.datetime | None = None
    fetch_count: int = 0
    mean_response_ms: float | None = None
    #: Items of this feed in the database.
    stored_items: int = 0

    @property
    def url(self) -> str:
        return self.source.url

    @property
    def name(self) -> str:
        return self.source.name


@dataclass(frozen=True, slots=True)
class FeedUpdate:
    """A feed's state after one fetch, as the health rules decide it; the store writes it."""

    last_attempt: dt.datetime
    last_status: int | None
    last_error: str | None
    consecutive_failures: int
    fetch_count: int
    mean_response_ms: float
    last_success: dt.datetime | None
    last_item_count: int
    next_attempt: dt.datetime | None
    gone_at: dt.datetime | None
    validators: Validators
    #: The feed's new URL after a permanent redirect, unless another feed already has it.
    moved_to: str | None = None

    @property
    def ok(self) -> bool:
        return self.last_error is None


@dataclass(frozen=True, slots=True)
class FetchOutcome:
    """What one fetch leaves to store: the feed's new state and the items it gave."""

    #: The feed's URL as the store knows it (before any move the update carries).
    url: str
    update: FeedUpdate
    items: tuple[Item, ...] = ()


@dataclass(frozen=True, slots=True)
class Item:
    """One article from one feed, cleaned: plain-text title, safe HTML summary, UTC date."""

    feed_url: str
    source_name: str
    section: Section
    weight: float
    #: Stable identity within the feed: the guid, or the canonical link when there is none.
    key: str
    title: str
    link: str
    summary_text: str
    summary_html: str
    published: dt.datetime
    #: From a primary source (company release, filing, regulator).
    primary: bool = False


@dataclass(frozen=True, slots=True)
class Story:
    """One event as reported by one or more outlets; ``items[0]`` is the lead report."""

    items: tuple[Item, ...]
    section: Section
    score: float
    #: Stock and coin symbols the story mentions, most mentioned first ("NVDA", "BTC").
    tickers: tuple[str, ...] = ()
    #: Outlets that had reported it before this edition's window: a developing story.
    earlier_outlets: tuple[str, ...] = ()

    @property
    def lead(self) -> Item:
        return self.items[0]

    @property
    def outlets(self) -> tuple[str, ...]:
        """Distinct outlet names, lead first."""
        return tuple(dict.fromkeys(item.source_name for item in self.items))

    @property
    def new_outlets(self) -> int:
        """Outlets that took the story up since the last edition (all of them if it is new)."""
        return len(set(self.outlets) - set(self.earlier_outlets))

    @property
    def other_items(self) -> tuple[Item, ...]:
        """One report per outlet other than the lead's, for the 'also covered by' links."""
        seen = {self.lead.source_name}
        others = []
        for item in self.items[1:]:
            if item.source_name not in seen:
                seen.add(item.source_name)
                others.append(item)
        return tuple(others)


@dataclass(frozen=True, slots=True)
class Digest:
    """One edition: the day's stories in order, before it is addressed to anybody."""

    date: dt.date
    title: str
    tagline: str
    window_start: dt.datetime
    window_end: dt.datetime
    top: tuple[Story, ...]
    sections: tuple[tuple[Section, tuple[Story, ...]], ...]
    #: A line about the market's hours that day ("NYSE closes early today, at 1:00 p.m.
    #: ET."), or "". Derived from the date and the timetable (``timetable.market_note``),
    #: so it is not stored with the edition.
    market_note: str = ""

    @property
    def story_count(self) -> int:
        return len(self.top) + sum(len(stories) for _, stories in self.sections)


@dataclass(frozen=True, slots=True)
class Subscriber:
    """Somebody who receives the digest."""

    email: str
    name: str = ""
    #: Whether they get the edition: their state is active (see ``digest.lifecycle``).
    active: bool = True
    #: Tickers and coins whose stories lead this subscriber's edition ("NVDA", "BTC").
    watchlist: tuple[str, ...] = ()
    #: The random id their links' tokens name (32 hex digits); "" until the store gives one.
    #: Not compared: it tells records of one person apart, not one person from another.
    public_id: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    """A message that is planned but not yet accepted by the SMTP server."""

    subscriber: Subscriber
    message_id: str


@dataclass(frozen=True, slots=True)
class Email:
    """A rendered message for one subscriber, ready for SMTP."""

    recipient: str
    subject: str
    html: str
    text: str
    message_id: str
    headers: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Delivery:
    """What happened to one message."""

    recipient: str
    edition: dt.date
    sent: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One subscriber's delivery of one edition, as the store records it."""

    edition: dt.date
    #: pending, sent or failed.
    status: str
    attempts: int
    sent_at: dt.datetime | None = None
    error: str | None = None
