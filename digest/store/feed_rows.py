"""The feeds and items SQL of a fetch, in the database driver's own words.

A fetch reads every feed's state, brings the configured feeds into the table and writes each
fetch's outcome and new items. These statements are written once, here, and run on either
kind of connection: one of the full store (SQLAlchemy's, inside its transaction) or the one
``digest fetch`` opens on its own (``light.py``), which so starts without loading SQLAlchemy
(0.3 s of a 1.2 s fetch in which every feed answers "not modified").

Parameters are written ``?``; a driver that takes ``%s`` gets those. Times are stored as
naive UTC, as SQLAlchemy stores them: on SQLite as text, on PostgreSQL as ``timestamp``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

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
from .times import aware, maybe_naive_utc

T = TypeVar("T")

#: Values looked up in one query: far below any database's limit on bound parameters.
LOOKUP_CHUNK = 500


class Rows(Protocol):
    """A connection inside a transaction, taking the statements of this module."""

    #: "sqlite" or "postgresql".
    dialect: str

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        """Run one statement; the rows it returns, if any."""

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once for each of ``rows``."""


class Conflict(Exception):
    """A row another writer stored first broke a unique constraint: the transaction is
    over, and running it again finds that row."""


class FeedRecords:
    """What a fetch reads and writes, on any connection that gives ``Rows``."""

    def rows_in_transaction(self) -> AbstractContextManager[Rows]:
        """One transaction: all of it is written, or none of it."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def sync_feeds(self, sources: Iterable[FeedSource]) -> None:
        """Make the configured feeds match ``sources`` (``sync_feeds``)."""
        sources = list(sources)
        try:
            with self.rows_in_transaction() as rows:
                sync_feeds(rows, sources)
        except Conflict:
            # Processes started together (workers on PostgreSQL) may add the same feed at
            # once: the one whose insert lost reads the rows written and has nothing to add.
            with self.rows_in_transaction() as rows:
                sync_feeds(rows, sources)

    def feed_states(self) -> list[FeedState]:
        """Every feed with its health and how many items it has stored, by name."""
        with self.rows_in_transaction() as rows:
            return feed_states(rows)

    def save_fetches(self, outcomes: Sequence[FetchOutcome], now: dt.datetime) -> list[int]:
        """Write many fetches' outcomes and their items in one transaction; how many items
        of each are new (``save_fetches``)."""
        if not outcomes:
            return []
        with self.rows_in_transaction() as rows:
            return save_fetches(rows, outcomes, now)


_DRIVER_SQL: dict[str, str] = {}


def driver_sql(sql: str, dialect: str) -> str:
    """``sql`` with the driver's placeholders: ``?`` for SQLite's, ``%s`` for the others'."""
    if dialect == "sqlite":
        return sql
    found = _DRIVER_SQL.get(sql)
    if found is None:
        found = _DRIVER_SQL[sql] = sql.replace("?", "%s")
    return found


def stored_time(moment: dt.datetime | None, dialect: str) -> Any:
    """``moment`` as the database keeps it: naive UTC, as text on SQLite in SQLAlchemy's
    format (its DateTime columns and queries read these rows too)."""
    naive = maybe_naive_utc(moment)
    if naive is None or dialect != "sqlite":
        return naive
    return naive.isoformat(" ", "microseconds")


def read_time(value: Any) -> dt.datetime | None:
    """A stored time, aware again."""
    return aware(dt.datetime.fromisoformat(value) if isinstance(value, str) else value)


_STATE_COLUMNS = (
    "f.name, f.url, f.section, f.weight, f.is_primary, f.active, f.origin, f.etag, "
    "f.last_modified, f.last_attempt, f.last_success, f.last_status, f.last_error, "
    "f.consecutive_failures, f.last_item_count, f.next_attempt, f.gone_at, f.fetch_count, "
    "f.mean_response_ms"
)
_FEED_STATES = (
    f"SELECT {_STATE_COLUMNS}, COALESCE(n.stored, 0) FROM feeds f LEFT OUTER JOIN "
    "(SELECT feed_id, count(*) AS stored FROM items GROUP BY feed_id) n ON n.feed_id = f.id "
    "ORDER BY f.name, f.id"
)


def feed_states(rows: Rows) -> list[FeedState]:
    """Every feed with its health and how many items it has stored, by name."""
    return [_state(row) for row in rows.run(_FEED_STATES)]


def _state(row: Sequence[Any]) -> FeedState:
    (name, url, section, weight, primary, active, origin, etag, last_modified) = row[:9]
    (attempt, success, status, error, failures, item_count, next_attempt, gone_at) = row[9:17]
    fetch_count, mean_ms, stored = row[17:]
    return FeedState(
        source=FeedSource(name, url, Section(section), weight, bool(primary)),
        active=bool(active),
        origin=Origin(origin),
        validators=Validators(etag, last_modified),
        last_attempt=read_time(attempt),
        last_success=read_time(success),
        last_status=status,
        last_error=error,
        consecutive_failures=failures,
        last_item_count=item_count,
        next_attempt=read_time(next_attempt),
        gone_at=read_time(gone_at),
        fetch_count=fetch_count,
        mean_response_ms=mean_ms,
        stored_items=stored,
    )


#: The columns of a feed that its configuration decides, in this order in the statements.
CONFIGURED = ("name", "section", "weight", "is_primary", "active")
_SETCONFIGURED = ", ".join(f"{column} = ?" for column in CONFIGURED)


def configured_values(source: FeedSource) -> tuple[Any, ...]:
    return (source.name, source.section.value, source.weight, source.primary, True)


def sync_feeds(rows: Rows, sources: Iterable[FeedSource]) -> None:
    """Make the configured feeds match ``sources``, keeping each feed's history.

    A configured feed is known by the URL in the configuration, even after a permanent
    redirect moved the URL it is fetched from. Feeds added from the CLI are left alone. A
    configured feed another process added at the same moment raises ``Conflict``.
    """
    sources = list(sources)
    known: dict[str, Sequence[Any]] = {}
    taken: dict[str, int] = {}
    for row_id, url, origin, config_url, *decided in rows.run(
        f"SELECT id, url, origin, config_url, {', '.join(CONFIGURED)} FROM feeds"
    ):
        taken[url] = row_id
        if origin == Origin.CONFIG.value:
            known[config_url] = (row_id, *decided)
    changed, adopted, added = [], [], []
    for source in sources:
        values = configured_values(source)
        if source.url in known:
            row_id, *stored = known[source.url]
            if tuple(stored) != values:
                changed.append((*values, row_id))
        elif source.url in taken:
            # Added from the CLI first, listed in the configuration now.
            adopted.append((*values, source.url, taken[source.url]))
        else:
            added.append((source.url, source.url, *values))
    if changed:
        rows.run_many(f"UPDATE feeds SET {_SETCONFIGURED} WHERE id = ?", changed)
    if adopted:
        rows.run_many(
            f"UPDATE feeds SET {_SETCONFIGURED}, config_url = ?, origin = 'config' WHERE id = ?",
            adopted,
        )
    if added:
        # Every NOT NULL column is given: SQLAlchemy's column defaults are not the database's.
        rows.run_many(
            f"INSERT INTO feeds (url, config_url, {', '.join(CONFIGURED)}, origin, "
            "consecutive_failures, last_item_count, fetch_count) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'config', 0, 0, 0)",
            added,
        )
    configured = {source.url for source in sources}
    gone = [(False, url) for url in known if url not in configured]
    if gone:
        rows.run_many("UPDATE feeds SET active = ? WHERE config_url = ?", gone)


_SET_STATE = (
    "UPDATE feeds SET last_attempt = ?, last_status = ?, last_error = ?, "
    "consecutive_failures = ?, fetch_count = ?, mean_response_ms = ?, last_success = ?, "
    "last_item_count = ?, next_attempt = ?, gone_at = ?, etag = ?, last_modified = ? "
    "WHERE id = ?"
)


def save_fetches(rows: Rows, outcomes: Sequence[FetchOutcome], now: dt.datetime) -> list[int]:
    """Write many fetches' outcomes and their items in the caller's transaction.

    Returns how many items of each outcome are new. A feed no longer in the database
    (removed while it was fetched) is skipped. The statements are the same for any number
    of feeds: one update of every feed's state, one insert of every new item.
    """
    if not outcomes:
        return []
    ids = _ids(rows, [outcome.url for outcome in outcomes])
    present = [outcome for outcome in outcomes if outcome.url in ids]
    if present:
        rows.run_many(
            _SET_STATE, [(*_state_values(o.update, rows.dialect), ids[o.url]) for o in present]
        )
    moves = _moves(rows, [(ids[o.url], o.update.moved_to) for o in present])
    if moves:
        rows.run_many("UPDATE feeds SET url = ? WHERE id = ?", moves)
    ok = [outcome for outcome in present if outcome.update.ok]
    counts = save_items(rows, [(ids[o.url], o.items) for o in ok], now)
    new = {outcome.url: count for outcome, count in zip(ok, counts, strict=True)}
    return [new.get(outcome.url, 0) for outcome in outcomes]


def _state_values(update: FeedUpdate, dialect: str) -> tuple[Any, ...]:
    return (
        stored_time(update.last_attempt, dialect),
        update.last_status,
        update.last_error,
        update.consecutive_failures,
        update.fetch_count,
        update.mean_response_ms,
        stored_time(update.last_success, dialect),
        update.last_item_count,
        stored_time(update.next_attempt, dialect),
        stored_time(update.gone_at, dialect),
        update.validators.etag,
        update.validators.last_modified,
    )


def _ids(rows: Rows, urls: list[str]) -> dict[str, int]:
    """The ids of the feeds at ``urls``, those that exist."""
    found: dict[str, int] = {}
    for chunk in _chunks(urls, LOOKUP_CHUNK):
        sql = f"SELECT url, id FROM feeds WHERE url IN ({_marks(chunk)})"
        found.update((url, row_id) for url, row_id in rows.run(sql, chunk))
    return found


def _moves(rows: Rows, wanted: list[tuple[int, str | None]]) -> list[tuple[str, int]]:
    """The URL changes to make: a feed moves unless another feed already has its new URL."""
    targets = [url for _, url in wanted if url is not None]
    if not targets:
        return []
    taken = set(_ids(rows, targets))
    moves = []
    for row_id, url in wanted:
        if url is not None and url not in taken:
            taken.add(url)
            moves.append((url, row_id))
    return moves


_REFRESH_ITEM = (
    "UPDATE items SET title = ?, link = ?, summary_text = ?, summary_html = ?, published = ? "
    "WHERE id = ?"
)
#: A row another writer stored first is skipped, not an error.
INSERT_ITEM = (
    "INSERT INTO items (title, link, summary_text, summary_html, published, feed_id, key, "
    "first_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (feed_id, key) DO NOTHING"
)


def save_items(
    rows: Rows, batch: Sequence[tuple[int, Sequence[Item]]], now: dt.datetime
) -> list[int]:
    """Insert new items and refresh known ones of many feeds in the caller's transaction.

    ``batch`` pairs feed ids with their items; returns how many of each feed's are new.
    One lookup per ``LOOKUP_CHUNK`` keys, then one executemany for the new rows and one for
    the known ones, whatever the number of feeds.
    """
    unique: dict[tuple[int, str], Item] = {}
    for feed_id, items in batch:
        for item in items:
            unique[(feed_id, item.key)] = item
    if not unique:
        return [0] * len(batch)
    known = _known(rows, list(unique))
    first_seen = stored_time(now, rows.dialect)
    inserts: list[tuple[Any, ...]] = []
    refreshes: list[tuple[Any, ...]] = []
    new: Counter[int] = Counter()
    for (feed_id, key), item in unique.items():
        values = (
            item.title,
            item.link,
            item.summary_text,
            item.summary_html,
            stored_time(item.published, rows.dialect),
        )
        row_id = known.get((feed_id, key))
        if row_id is None:
            inserts.append((*values, feed_id, key, first_seen))
            new[feed_id] += 1
        else:
            refreshes.append((*values, row_id))
    if refreshes:
        rows.run_many(_REFRESH_ITEM, refreshes)
    if inserts:
        rows.run_many(INSERT_ITEM, inserts)
    return [new[feed_id] for feed_id, _ in batch]


def _known(rows: Rows, pairs: list[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Row ids of the (feed id, key) pairs already stored."""
    wanted = set(pairs)
    found: dict[tuple[int, str], int] = {}
    for chunk in _chunks(pairs, LOOKUP_CHUNK):
        feed_ids = sorted({feed_id for feed_id, _ in chunk})
        keys = sorted({key for _, key in chunk})
        sql = (
            f"SELECT feed_id, key, id FROM items WHERE feed_id IN ({_marks(feed_ids)})"
            f" AND key IN ({_marks(keys)})"
        )
        for feed_id, key, row_id in rows.run(sql, [*feed_ids, *keys]):
            if (feed_id, key) in wanted:
                found[(feed_id, key)] = row_id
    return found


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def _chunks(values: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
