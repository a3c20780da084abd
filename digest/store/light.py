"""``digest fetch``'s own connection to a SQLite file, without SQLAlchemy.

A fetch only reads the feeds' state and writes what each feed gave (``feed_rows``). Loading
SQLAlchemy for that took 0.3 s, a quarter of a fetch in which every feed answers "not
modified". So a fetch on a SQLite file whose schema is this version's opens it with the
standard library's driver. Any other database, or a file to create or migrate first, is
opened by the full store instead, which does the same through the same statements.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import StoreError
from .feed_rows import Conflict, FeedRecords

#: The schema version this code reads and writes: as many as ``schema.MIGRATIONS``.
SCHEMA_VERSION = 11

#: Every SQLite connection's settings, the full store's as well: write-ahead logging (readers
#: and one writer at once), foreign keys enforced, waiting up to 10 s for another writer.
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    "PRAGMA synchronous=NORMAL",
)

_URL_PREFIX = "sqlite:///"


def sqlite_file(url: str) -> Path | None:
    """The existing file a plain ``sqlite:///PATH`` URL names; None for any other URL (in
    memory, with options, quoted characters, another database) or a file not there yet."""
    if not url.startswith(_URL_PREFIX) or any(char in url for char in "?%#"):
        return None
    path = url[len(_URL_PREFIX) :]
    if path in ("", ":memory:") or not Path(path).is_file():
        return None
    return Path(path)


class _SqliteRows:
    """``feed_rows``'s statements on the standard library's driver, the database's troubles
    told as the full store tells them."""

    dialect = "sqlite"

    def __init__(self, connection: sqlite3.Connection, url: str) -> None:
        self.connection = connection
        self.url = url

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        with self._told():
            return self.connection.execute(sql, params).fetchall()

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._told():
            self.connection.executemany(sql, rows)

    @contextmanager
    def _told(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.IntegrityError as exc:
            raise Conflict(str(exc)) from exc
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{self.url}: {exc}") from None


class LightFeedStore(FeedRecords):
    """The feeds and items a fetch reads and writes, on a SQLite file at this schema."""

    def __init__(self, url: str, connection: sqlite3.Connection) -> None:
        self.url = url
        self._rows = _SqliteRows(connection, url)

    @classmethod
    def open(cls, url: str) -> LightFeedStore | None:
        """The file ``url`` names, if it is a SQLite file at this version's schema; else
        None, and the full store is the one to open it (and create or migrate it)."""
        path = sqlite_file(url)
        if path is None:
            return None
        # Autocommit: transactions are begun here, explicitly, as the full store begins them.
        connection = sqlite3.connect(path, isolation_level=None, timeout=10)
        try:
            for pragma in SQLITE_PRAGMAS:
                connection.execute(pragma)
            found = connection.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
        except sqlite3.DatabaseError:
            found = None  # not a database of ours, or locked: the full store says which
        if found is None or found[0] != str(SCHEMA_VERSION):
            connection.close()
            return None
        return cls(url, connection)

    def close(self) -> None:
        self._rows.connection.close()

    @contextmanager
    def rows_in_transaction(self) -> Iterator[_SqliteRows]:
        """One transaction, holding the write lock from its start (as the full store's)."""
        self._rows.run("BEGIN IMMEDIATE")
        try:
            yield self._rows
        except BaseException:
            if self._rows.connection.in_transaction:
                self._rows.connection.execute("ROLLBACK")
            raise
        self._rows.run("COMMIT")
