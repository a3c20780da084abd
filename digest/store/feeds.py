"""The feeds table: which feeds there are, and each one's health as the rules decided it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select

from ..models import (
    FeedSource,
    FeedUpdate,
    FetchOutcome,
    Item,
    Origin,
    Section,
    Validators,
)
from . import feed_rows
from . import schema as s
from ._database import Database, driver_rows
from .feed_rows import FeedRecords, Rows


class FeedStore(Database, FeedRecords):
    """A fetch's reads and writes (``FeedRecords``) on the store's connection, and the
    feeds added and removed from the CLI."""

    @contextmanager
    def rows_in_transaction(self) -> Iterator[Rows]:
        with self.begin() as c:
            yield driver_rows(c)

    def add_feed(self, source: FeedSource) -> bool:
        """Add a feed from the CLI (or bring a gone one back); False if it was already there."""
        with self.begin() as c:
            row = c.execute(
                select(s.feeds.c.id, s.feeds.c.active, s.feeds.c.gone_at).where(
                    s.feeds.c.url == source.url
                )
            ).first()
            values = {**_configured_values(source), "gone_at": None, "next_attempt": None}
            if row is None:
                c.execute(s.feeds.insert().values(url=source.url, origin=Origin.CLI, **values))
                return True
            c.execute(s.feeds.update().where(s.feeds.c.id == row.id).values(**values))
            return not row.active or row.gone_at is not None

    def remove_feed(self, url: str) -> Origin | None:
        """Remove a CLI-added feed and its items; returns its origin, or None if unknown.

        A configured feed is not removed (the configuration would bring it back): its
        origin tells the caller so.
        """
        with self.begin() as c:
            row = c.execute(
                select(s.feeds.c.id, s.feeds.c.origin).where(s.feeds.c.url == url)
            ).first()
            if row is None:
                return None
            if row.origin == Origin.CLI:
                c.execute(s.feeds.delete().where(s.feeds.c.id == row.id))
            return Origin(row.origin)

    def feed_sources(self) -> list[FeedSource]:
        """Active feeds that are not gone, in the order they were added."""
        query = (
            select(s.feeds)
            .where(s.feeds.c.active, s.feeds.c.gone_at.is_(None))
            .order_by(s.feeds.c.id)
        )
        with self.begin() as c:
            return [_source(row) for row in c.execute(query)]

    def validators(self) -> dict[str, Validators]:
        with self.begin() as c:
            rows = c.execute(select(s.feeds.c.url, s.feeds.c.etag, s.feeds.c.last_modified))
            return {row.url: Validators(row.etag, row.last_modified) for row in rows}

    def save_fetch(
        self, url: str, update: FeedUpdate, items: Sequence[Item], now: dt.datetime
    ) -> int:
        """Write a fetch's outcome and its items in one transaction; return how many are new."""
        return self.save_fetches([FetchOutcome(url, update, tuple(items))], now)[0]


def _configured_values(source: FeedSource) -> dict[str, Any]:
    """The columns of an active feed that its configuration decides."""
    return dict(zip(feed_rows.CONFIGURED, feed_rows.configured_values(source), strict=True))


def _source(row: Any) -> FeedSource:
    return FeedSource(row.name, row.url, Section(row.section), row.weight, row.is_primary)
