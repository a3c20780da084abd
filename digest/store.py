"""The database: feeds and their health, items, subscribers, editions and deliveries.

SQLite in WAL mode by default; any SQLAlchemy URL works (PostgreSQL for several workers).
Every multi-step change runs in one transaction, so a crash leaves no half-written state.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, Engine, and_, create_engine, event, func, or_, select
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from . import schema as s
from .errors import StoreError
from .health import next_attempt
from .models import Digest, FeedSource, FetchResult, Item, Section, Story, Subscriber, Validators


@dataclass(frozen=True, slots=True)
class FeedHealth:
    """A feed's state as the last fetches left it."""

    url: str
    name: str
    section: str
    active: bool
    last_attempt: dt.datetime | None
    last_success: dt.datetime | None
    last_status: int | None
    last_error: str | None
    consecutive_failures: int
    last_item_count: int
    stored_items: int
    origin: str = "config"
    next_attempt: dt.datetime | None = None
    gone_at: dt.datetime | None = None
    mean_response_ms: float | None = None


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    """A message that is planned but not yet accepted by the SMTP server."""

    subscriber: Subscriber
    message_id: str


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    return None if moment is None else moment.replace(tzinfo=dt.UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class Store:
    """All reads and writes of the database go through here."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = make_engine(url)
            with self.engine.begin() as connection:
                s.migrate(connection)
        except SQLAlchemyError as exc:
            raise StoreError(f"{url}: cannot open the database: {_reason(exc)}") from None

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as connection:
                yield connection
        except OperationalError as exc:
            raise StoreError(f"{self.url}: {_reason(exc)}") from None

    # -- feeds ---------------------------------------------------------------------------

    def sync_feeds(self, sources: Iterable[FeedSource]) -> None:
        """Make the configured feeds match ``sources``, keeping each feed's history.

        A configured feed is known by the URL in the configuration, even after a permanent
        redirect moved the URL it is fetched from. Feeds added from the CLI are left alone.
        """
        sources = list(sources)
        with self._begin() as c:
            known = {
                row.config_url: row.id
                for row in c.execute(
                    select(s.feeds.c.config_url, s.feeds.c.id).where(s.feeds.c.origin == "config")
                )
            }
            taken = {row.url: row.id for row in c.execute(select(s.feeds.c.url, s.feeds.c.id))}
            for source in sources:
                values = _feed_values(source)
                if source.url in known:
                    c.execute(s.feeds.update().where(s.feeds.c.id == known[source.url]), values)
                elif source.url in taken:
                    # Added from the CLI first, listed in the configuration now.
                    c.execute(
                        s.feeds.update()
                        .where(s.feeds.c.id == taken[source.url])
                        .values(origin="config", config_url=source.url, **values)
                    )
                else:
                    c.execute(
                        s.feeds.insert().values(
                            url=source.url, origin="config", config_url=source.url, **values
                        )
                    )
            configured = {source.url for source in sources}
            gone = [url for url in known if url not in configured]
            if gone:
                c.execute(
                    s.feeds.update().where(s.feeds.c.config_url.in_(gone)).values(active=False)
                )

    def add_feed(self, source: FeedSource) -> bool:
        """Add a feed from the CLI (or bring a gone one back); False if it was already there."""
        with self._begin() as c:
            row = c.execute(
                select(s.feeds.c.id, s.feeds.c.active, s.feeds.c.gone_at).where(
                    s.feeds.c.url == source.url
                )
            ).first()
            values = {**_feed_values(source), "gone_at": None, "next_attempt": None}
            if row is None:
                c.execute(s.feeds.insert().values(url=source.url, origin="cli", **values))
                return True
            c.execute(s.feeds.update().where(s.feeds.c.id == row.id).values(**values))
            return not row.active or row.gone_at is not None

    def remove_feed(self, url: str) -> str | None:
        """Remove a CLI-added feed and its items; returns its origin, or None if unknown.

        A configured feed is not removed (the configuration would bring it back): its
        origin, "config", tells the caller so.
        """
        with self._begin() as c:
            row = c.execute(
                select(s.feeds.c.id, s.feeds.c.origin).where(s.feeds.c.url == url)
            ).first()
            if row is None:
                return None
            if row.origin == "cli":
                c.execute(s.feeds.delete().where(s.feeds.c.id == row.id))
            return str(row.origin)

    def feed_sources(self, now: dt.datetime | None = None) -> list[FeedSource]:
        """Active feeds that are not gone; with ``now``, only those due by then."""
        query = select(s.feeds).where(s.feeds.c.active, s.feeds.c.gone_at.is_(None))
        if now is not None:
            query = query.where(
                or_(s.feeds.c.next_attempt.is_(None), s.feeds.c.next_attempt <= _naive_utc(now))
            )
        with self._begin() as c:
            return [
                FeedSource(row.name, row.url, Section(row.section), row.weight, row.is_primary)
                for row in c.execute(query.order_by(s.feeds.c.id))
            ]

    def validators(self) -> dict[str, Validators]:
        with self._begin() as c:
            rows = c.execute(select(s.feeds.c.url, s.feeds.c.etag, s.feeds.c.last_modified))
            return {row.url: Validators(row.etag, row.last_modified) for row in rows}

    def record_fetch(self, result: FetchResult, items: Sequence[Item], now: dt.datetime) -> int:
        """Store a fetch's items and the feed's health together; return how many are new."""
        with self._begin() as c:
            row = c.execute(
                select(
                    s.feeds.c.id,
                    s.feeds.c.consecutive_failures,
                    s.feeds.c.fetch_count,
                    s.feeds.c.mean_response_ms,
                ).where(s.feeds.c.url == result.source.url)
            ).one()
            milliseconds = result.elapsed * 1000
            count = row.fetch_count
            mean = (
                milliseconds
                if not count
                else (row.mean_response_ms * count + milliseconds) / (count + 1)
            )
            health: dict[str, Any] = {
                "last_attempt": _naive_utc(now),
                "last_status": result.status,
                "fetch_count": count + 1,
                "mean_response_ms": mean,
            }
            if result.ok:
                health.update(
                    last_success=_naive_utc(now),
                    last_error=None,
                    consecutive_failures=0,
                    last_item_count=len(items),
                    next_attempt=None,
                )
                if not result.not_modified:
                    health.update(
                        etag=result.validators.etag, last_modified=result.validators.last_modified
                    )
            elif result.status == 410:
                health.update(
                    last_error="HTTP 410 Gone: the publisher removed this feed; no longer fetched",
                    consecutive_failures=row.consecutive_failures + 1,
                    gone_at=_naive_utc(now),
                )
            else:
                failures = row.consecutive_failures + 1
                due = next_attempt(result.source.url, failures, result.retry_after, now)
                health.update(
                    last_error=result.error,
                    consecutive_failures=failures,
                    next_attempt=_naive_utc(due),
                )
            if result.moved_to and result.moved_to != result.source.url:
                taken = c.execute(
                    select(s.feeds.c.id).where(s.feeds.c.url == result.moved_to)
                ).first()
                if taken is None:
                    health["url"] = result.moved_to
            c.execute(s.feeds.update().where(s.feeds.c.id == row.id).values(**health))
            return self._save_items(c, row.id, items, now)

    def _save_items(
        self, c: Connection, feed_id: int, items: Sequence[Item], now: dt.datetime
    ) -> int:
        if not items:
            return 0
        keys = [item.key for item in items]
        existing = {
            row.key: row.id
            for row in c.execute(
                select(s.items.c.key, s.items.c.id).where(
                    and_(s.items.c.feed_id == feed_id, s.items.c.key.in_(keys))
                )
            )
        }
        new = 0
        for item in {item.key: item for item in items}.values():
            values = {
                "title": item.title,
                "link": item.link,
                "summary_text": item.summary_text,
                "summary_html": item.summary_html,
                "published": _naive_utc(item.published),
            }
            if item.key in existing:
                c.execute(s.items.update().where(s.items.c.id == existing[item.key]), values)
            else:
                c.execute(
                    s.items.insert().values(
                        feed_id=feed_id, key=item.key, first_seen=_naive_utc(now), **values
                    )
                )
                new += 1
        return new

    def items_between(self, start: dt.datetime, end: dt.datetime) -> list[Item]:
        """Items of active feeds published in ``[start, end)``, one per link."""
        query = (
            select(
                s.items,
                s.feeds.c.url,
                s.feeds.c.name,
                s.feeds.c.section,
                s.feeds.c.weight,
                s.feeds.c.is_primary,
            )
            .join(s.feeds, s.items.c.feed_id == s.feeds.c.id)
            .where(
                s.feeds.c.active,
                s.items.c.published >= _naive_utc(start),
                s.items.c.published < _naive_utc(end),
            )
            .order_by(s.items.c.published, s.items.c.id)
        )
        with self._begin() as c:
            rows = c.execute(query).all()
        by_link: dict[str, Item] = {}
        for row in rows:
            by_link.setdefault(
                row.link,
                Item(
                    feed_url=row.url,
                    source_name=row.name,
                    section=Section(row.section),
                    weight=row.weight,
                    primary=row.is_primary,
                    key=row.key,
                    title=row.title,
                    link=row.link,
                    summary_text=row.summary_text,
                    summary_html=row.summary_html,
                    published=row.published.replace(tzinfo=dt.UTC),
                ),
            )
        return list(by_link.values())

    def feed_health(self) -> list[FeedHealth]:
        counts = (
            select(s.items.c.feed_id, func.count().label("n"))
            .group_by(s.items.c.feed_id)
            .subquery()
        )
        query = (
            select(s.feeds, func.coalesce(counts.c.n, 0).label("stored"))
            .outerjoin(counts, counts.c.feed_id == s.feeds.c.id)
            .order_by(s.feeds.c.name)
        )
        with self._begin() as c:
            return [
                FeedHealth(
                    url=row.url,
                    name=row.name,
                    section=row.section,
                    active=row.active,
                    last_attempt=_aware(row.last_attempt),
                    last_success=_aware(row.last_success),
                    last_status=row.last_status,
                    last_error=row.last_error,
                    consecutive_failures=row.consecutive_failures,
                    last_item_count=row.last_item_count,
                    stored_items=row.stored,
                    origin=row.origin,
                    next_attempt=_aware(row.next_attempt),
                    gone_at=_aware(row.gone_at),
                    mean_response_ms=row.mean_response_ms,
                )
                for row in c.execute(query)
            ]

    # -- subscribers ---------------------------------------------------------------------

    def add_subscriber(self, subscriber: Subscriber, now: dt.datetime) -> bool:
        """Add or reactivate ``subscriber``; False when it was already active."""
        with self._begin() as c:
            row = c.execute(
                select(s.subscribers.c.id, s.subscribers.c.active).where(
                    s.subscribers.c.email == subscriber.email
                )
            ).first()
            if row is None:
                c.execute(
                    s.subscribers.insert().values(
                        email=subscriber.email,
                        name=subscriber.name,
                        active=True,
                        created_at=_naive_utc(now),
                        watchlist=" ".join(subscriber.watchlist),
                    )
                )
                return True
            values: dict[str, Any] = {"active": True, "unsubscribed_at": None}
            if subscriber.name:
                values["name"] = subscriber.name
            if subscriber.watchlist:
                values["watchlist"] = " ".join(subscriber.watchlist)
            c.execute(s.subscribers.update().where(s.subscribers.c.id == row.id).values(**values))
            return not row.active

    def remove_subscriber(self, email: str) -> bool:
        with self._begin() as c:
            result = c.execute(s.subscribers.delete().where(s.subscribers.c.email == email))
            return result.rowcount > 0

    def unsubscribe(self, email: str, now: dt.datetime) -> bool:
        """Mark ``email`` unsubscribed, keeping the record; False if unknown or inactive."""
        with self._begin() as c:
            result = c.execute(
                s.subscribers.update()
                .where(s.subscribers.c.email == email, s.subscribers.c.active)
                .values(active=False, unsubscribed_at=_naive_utc(now))
            )
            return result.rowcount > 0

    def subscribers(self, active_only: bool = False) -> list[Subscriber]:
        query = select(s.subscribers).order_by(s.subscribers.c.email)
        if active_only:
            query = query.where(s.subscribers.c.active)
        with self._begin() as c:
            return [_subscriber(row) for row in c.execute(query)]

    # -- editions and deliveries ---------------------------------------------------------

    def save_edition(self, digest: Digest, now: dt.datetime) -> None:
        """Store ``digest`` as the edition of its date, replacing an unsent one."""
        payload = json.dumps(digest_to_json(digest))
        with self._begin() as c:
            row = c.execute(select(s.editions.c.id).where(s.editions.c.date == digest.date)).first()
            if row is None:
                c.execute(
                    s.editions.insert().values(
                        date=digest.date, built_at=_naive_utc(now), payload=payload
                    )
                )
            else:
                c.execute(
                    s.editions.update()
                    .where(s.editions.c.id == row.id)
                    .values(built_at=_naive_utc(now), payload=payload)
                )

    def edition_is_planned(self, date: dt.date) -> bool:
        """True once deliveries of ``date``'s edition have been planned (it is frozen then)."""
        with self._begin() as c:
            found = c.execute(
                select(func.count())
                .select_from(s.deliveries.join(s.editions))
                .where(s.editions.c.date == date)
            ).scalar_one()
            return bool(found)

    def load_edition(self, date: dt.date) -> Digest | None:
        with self._begin() as c:
            payload = c.execute(
                select(s.editions.c.payload).where(s.editions.c.date == date)
            ).scalar()
        return None if payload is None else digest_from_json(json.loads(payload))

    def edition_dates(self) -> list[dt.date]:
        """Dates of stored editions, newest first."""
        with self._begin() as c:
            rows = c.execute(select(s.editions.c.date).order_by(s.editions.c.date.desc()))
            return [row.date for row in rows]

    def plan_deliveries(self, date: dt.date, message_id: Any) -> int:
        """Record one pending delivery per active subscriber not yet planned; return how many.

        ``message_id(email)`` gives each message its id, fixed here so a resend after a
        crash carries the same one.
        """
        with self._begin() as c:
            edition_id = c.execute(
                select(s.editions.c.id).where(s.editions.c.date == date)
            ).scalar_one()
            planned = select(s.deliveries.c.subscriber_id).where(
                s.deliveries.c.edition_id == edition_id
            )
            rows = c.execute(
                select(s.subscribers.c.id, s.subscribers.c.email).where(
                    s.subscribers.c.active, s.subscribers.c.id.not_in(planned)
                )
            ).all()
            for row in rows:
                c.execute(
                    s.deliveries.insert().values(
                        edition_id=edition_id,
                        subscriber_id=row.id,
                        status="pending",
                        message_id=message_id(row.email),
                        attempts=0,
                    )
                )
            return len(rows)

    def pending_deliveries(self, date: dt.date) -> list[PendingDelivery]:
        """Deliveries not yet sent, to subscribers who are still active."""
        query = (
            select(s.subscribers, s.deliveries.c.message_id)
            .select_from(s.deliveries.join(s.editions).join(s.subscribers))
            .where(
                s.editions.c.date == date,
                s.deliveries.c.status != "sent",
                s.subscribers.c.active,
            )
            .order_by(s.subscribers.c.email)
        )
        with self._begin() as c:
            return [PendingDelivery(_subscriber(row), row.message_id) for row in c.execute(query)]

    def mark_delivery(
        self, date: dt.date, email: str, now: dt.datetime, error: str | None = None
    ) -> None:
        """Record that the SMTP server accepted (``error`` None) or refused a message."""
        with self._begin() as c:
            edition_id = select(s.editions.c.id).where(s.editions.c.date == date).scalar_subquery()
            subscriber_id = (
                select(s.subscribers.c.id).where(s.subscribers.c.email == email).scalar_subquery()
            )
            values: dict[str, Any] = {"attempts": s.deliveries.c.attempts + 1, "error": error}
            if error is None:
                values.update(status="sent", sent_at=_naive_utc(now))
            else:
                values["status"] = "failed"
            c.execute(
                s.deliveries.update()
                .where(
                    s.deliveries.c.edition_id == edition_id,
                    s.deliveries.c.subscriber_id == subscriber_id,
                )
                .values(**values)
            )

    def delivery_counts(self, date: dt.date) -> dict[str, int]:
        """How many deliveries of ``date``'s edition are in each status."""
        with self._begin() as c:
            rows = c.execute(
                select(s.deliveries.c.status, func.count())
                .select_from(s.deliveries.join(s.editions))
                .where(s.editions.c.date == date)
                .group_by(s.deliveries.c.status)
            )
            return {status: count for status, count in rows}

    # -- secrets -------------------------------------------------------------------------

    def signing_key(self) -> str:
        """The key that signs unsubscribe links when DIGEST_SECRET_KEY is not set.

        Made once and kept in the database, so links in sent mail stay valid.
        """
        with self._begin() as c:
            found = c.execute(select(s.meta.c.value).where(s.meta.c.key == "signing_key")).scalar()
            if found is not None:
                return str(found)
            key = secrets.token_urlsafe(32)
            c.execute(s.meta.insert().values(key="signing_key", value=key))
            return key


def _feed_values(source: FeedSource) -> dict[str, Any]:
    """The columns of an active feed that its configuration decides."""
    return {
        "name": source.name,
        "section": source.section.value,
        "weight": source.weight,
        "is_primary": source.primary,
        "active": True,
    }


def _subscriber(row: Any) -> Subscriber:
    return Subscriber(row.email, row.name, row.active, tuple(row.watchlist.split()))


def _reason(exc: SQLAlchemyError) -> str:
    original = getattr(exc, "orig", None)
    return str(original) if original is not None else str(exc).splitlines()[0]


# -- edition payload --------------------------------------------------------------------


def _item_to_json(item: Item) -> dict[str, Any]:
    raw = {field.name: getattr(item, field.name) for field in fields(Item)}
    return {**raw, "section": item.section.value, "published": item.published.isoformat()}


def _item_from_json(raw: dict[str, Any]) -> Item:
    return Item(
        **{
            **raw,
            "section": Section(raw["section"]),
            "published": dt.datetime.fromisoformat(raw["published"]),
        }
    )


def _story_to_json(story: Story) -> dict[str, Any]:
    return {
        "section": story.section.value,
        "score": story.score,
        "items": [_item_to_json(item) for item in story.items],
        "tickers": list(story.tickers),
        "earlier_outlets": list(story.earlier_outlets),
    }


def _story_from_json(raw: dict[str, Any]) -> Story:
    return Story(
        items=tuple(_item_from_json(item) for item in raw["items"]),
        section=Section(raw["section"]),
        score=raw["score"],
        tickers=tuple(raw.get("tickers", ())),
        earlier_outlets=tuple(raw.get("earlier_outlets", ())),
    )


def digest_to_json(digest: Digest) -> dict[str, Any]:
    return {
        "date": digest.date.isoformat(),
        "title": digest.title,
        "tagline": digest.tagline,
        "window_start": digest.window_start.isoformat(),
        "window_end": digest.window_end.isoformat(),
        "top": [_story_to_json(story) for story in digest.top],
        "sections": [
            [section.value, [_story_to_json(story) for story in stories]]
            for section, stories in digest.sections
        ],
    }


def digest_from_json(raw: dict[str, Any]) -> Digest:
    return Digest(
        date=dt.date.fromisoformat(raw["date"]),
        title=raw["title"],
        tagline=raw["tagline"],
        window_start=dt.datetime.fromisoformat(raw["window_start"]),
        window_end=dt.datetime.fromisoformat(raw["window_end"]),
        top=tuple(_story_from_json(story) for story in raw["top"]),
        sections=tuple(
            (Section(section), tuple(_story_from_json(story) for story in stories))
            for section, stories in raw["sections"]
        ),
    )
