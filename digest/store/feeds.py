"""The feeds table: which feeds there are, and each one's health as the rules decided it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, func, select

from ..models import (
    FeedSource,
    FeedState,
    FeedUpdate,
    FetchOutcome,
    Item,
    Origin,
    Section,
    Validators,
)
from . import schema as s
from ._database import Database, aware, maybe_naive_utc, naive_utc
from .bulk import insert_skipping
from .items import save_items


class FeedStore(Database):
    def sync_feeds(self, sources: Iterable[FeedSource]) -> None:
        """Make the configured feeds match ``sources``, keeping each feed's history.

        A configured feed is known by the URL in the configuration, even after a permanent
        redirect moved the URL it is fetched from. Feeds added from the CLI are left alone.
        """
        sources = list(sources)
        with self.begin() as c:
            rows = c.execute(
                select(
                    s.feeds.c.id,
                    s.feeds.c.url,
                    s.feeds.c.origin,
                    s.feeds.c.config_url,
                    *(s.feeds.c[name] for name in _CONFIGURED),
                )
            ).all()
            known = {row.config_url: row for row in rows if row.origin == Origin.CONFIG}
            taken = {row.url: row.id for row in rows}
            changed: list[dict[str, Any]] = []
            adopted: list[dict[str, Any]] = []
            added: list[dict[str, Any]] = []
            for source in sources:
                values = _configured_values(source)
                if source.url in known:
                    row = known[source.url]
                    if any(getattr(row, name) != value for name, value in values.items()):
                        changed.append({"row_id": row.id, **values})
                elif source.url in taken:
                    # Added from the CLI first, listed in the configuration now.
                    row_id = taken[source.url]
                    adopted.append({"row_id": row_id, "config_url": source.url, **values})
                else:
                    origin = {"origin": Origin.CONFIG, "config_url": source.url}
                    added.append({"url": source.url, **origin, **values})
            if changed:
                c.execute(_BY_ROW_ID, changed)
            if adopted:
                c.execute(_BY_ROW_ID.values(origin=Origin.CONFIG), adopted)
            if added:
                # Skipping a URL another process added meanwhile (workers starting together).
                c.execute(insert_skipping(s.feeds, ("url",), c.dialect.name), added)
            configured = {source.url for source in sources}
            gone = [url for url in known if url not in configured]
            if gone:
                c.execute(
                    s.feeds.update().where(s.feeds.c.config_url.in_(gone)).values(active=False)
                )

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

    def feed_states(self) -> list[FeedState]:
        """Every feed with its health and how many items it has stored, by name."""
        counts = (
            select(s.items.c.feed_id, func.count().label("n"))
            .group_by(s.items.c.feed_id)
            .subquery()
        )
        query = (
            select(s.feeds, func.coalesce(counts.c.n, 0).label("stored"))
            .outerjoin(counts, counts.c.feed_id == s.feeds.c.id)
            .order_by(s.feeds.c.name, s.feeds.c.id)
        )
        with self.begin() as c:
            return [_state(row) for row in c.execute(query)]

    def validators(self) -> dict[str, Validators]:
        with self.begin() as c:
            rows = c.execute(select(s.feeds.c.url, s.feeds.c.etag, s.feeds.c.last_modified))
            return {row.url: Validators(row.etag, row.last_modified) for row in rows}

    def save_fetch(
        self, url: str, update: FeedUpdate, items: Sequence[Item], now: dt.datetime
    ) -> int:
        """Write a fetch's outcome and its items in one transaction; return how many are new."""
        return self.save_fetches([FetchOutcome(url, update, tuple(items))], now)[0]

    def save_fetches(self, outcomes: Sequence[FetchOutcome], now: dt.datetime) -> list[int]:
        """Write many fetches' outcomes and their items in one transaction.

        Returns how many items of each outcome are new. A feed no longer in the database
        (removed while it was fetched) is skipped. The statements are the same for any
        number of feeds: one update of every feed's state, one insert of every new item.
        """
        if not outcomes:
            return []
        with self.begin() as c:
            ids = _ids(c, [outcome.url for outcome in outcomes])
            present = [outcome for outcome in outcomes if outcome.url in ids]
            states = [{"row_id": ids[o.url], **_state_values(o.update)} for o in present]
            if states:
                c.execute(_UPDATE_STATE, states)
            moves = _moves(c, [(ids[o.url], o.update.moved_to) for o in present])
            if moves:
                c.execute(_MOVE, moves)
            ok = [outcome for outcome in present if outcome.update.ok]
            counts = save_items(c, [(ids[o.url], o.items) for o in ok], now)
            new = {outcome.url: count for outcome, count in zip(ok, counts, strict=True)}
        return [new.get(outcome.url, 0) for outcome in outcomes]


_BY_ROW_ID = s.feeds.update().where(s.feeds.c.id == bindparam("row_id"))
_UPDATE_STATE = _BY_ROW_ID
_MOVE = s.feeds.update().where(s.feeds.c.id == bindparam("row_id")).values(url=bindparam("new_url"))
#: URLs looked up in one query: far below any database's limit on bound parameters.
_LOOKUP_CHUNK = 500


def _ids(c: Connection, urls: list[str]) -> dict[str, int]:
    """The ids of the feeds at ``urls``, those that exist."""
    query = select(s.feeds.c.url, s.feeds.c.id).where(
        s.feeds.c.url.in_(bindparam("urls", expanding=True))
    )
    found: dict[str, int] = {}
    for start in range(0, len(urls), _LOOKUP_CHUNK):
        chunk = urls[start : start + _LOOKUP_CHUNK]
        found.update((row.url, row.id) for row in c.execute(query, {"urls": chunk}))
    return found


def _moves(c: Connection, wanted: list[tuple[int, str | None]]) -> list[dict[str, Any]]:
    """The URL changes to make: a feed moves unless another feed already has its new URL."""
    targets = [url for _, url in wanted if url is not None]
    if not targets:
        return []
    taken = set(_ids(c, targets))
    moves = []
    for row_id, url in wanted:
        if url is not None and url not in taken:
            taken.add(url)
            moves.append({"row_id": row_id, "new_url": url})
    return moves


def _state_values(update: FeedUpdate) -> dict[str, Any]:
    return {
        "last_attempt": naive_utc(update.last_attempt),
        "last_status": update.last_status,
        "last_error": update.last_error,
        "consecutive_failures": update.consecutive_failures,
        "fetch_count": update.fetch_count,
        "mean_response_ms": update.mean_response_ms,
        "last_success": maybe_naive_utc(update.last_success),
        "last_item_count": update.last_item_count,
        "next_attempt": maybe_naive_utc(update.next_attempt),
        "gone_at": maybe_naive_utc(update.gone_at),
        "etag": update.validators.etag,
        "last_modified": update.validators.last_modified,
    }


#: The columns of a feed that its configuration decides.
_CONFIGURED = ("name", "section", "weight", "is_primary", "active")


def _configured_values(source: FeedSource) -> dict[str, Any]:
    """The columns of an active feed that its configuration decides."""
    return {
        "name": source.name,
        "section": source.section.value,
        "weight": source.weight,
        "is_primary": source.primary,
        "active": True,
    }


def _source(row: Any) -> FeedSource:
    return FeedSource(row.name, row.url, Section(row.section), row.weight, row.is_primary)


def _state(row: Any) -> FeedState:
    return FeedState(
        source=_source(row),
        active=row.active,
        origin=Origin(row.origin),
        validators=Validators(row.etag, row.last_modified),
        last_attempt=aware(row.last_attempt),
        last_success=aware(row.last_success),
        last_status=row.last_status,
        last_error=row.last_error,
        consecutive_failures=row.consecutive_failures,
        last_item_count=row.last_item_count,
        next_attempt=aware(row.next_attempt),
        gone_at=aware(row.gone_at),
        fetch_count=row.fetch_count,
        mean_response_ms=row.mean_response_ms,
        stored_items=row.stored,
    )
