"""``digest fetch``'s own connection to a SQLite file, without SQLAlchemy.

A fetch only reads the feeds' state and writes what each feed gave (``feed_rows``). Loading
SQLAlchemy for that took 0.3 s, a quarter of a fetch in which every feed answers "not
modified". So a fetch on a SQLite file whose schema is this version's opens it with the
standard library's driver, and a fetch into a file not there yet creates it with the schema
the migrations would have made (``digest/data/sqlite-schema.sql``). Any other database, or a
file to migrate first, is opened by the full store instead, which does the same through the
same statements.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

from ..errors import StoreError
from .feed_rows import Conflict, FeedRecords

#: The schema version this code reads and writes: as many as ``schema.MIGRATIONS``.
SCHEMA_VERSION = 11
#: A new file's schema at that version: the statements sqlite3's ``iterdump`` gives for a file
#: the migrations made. tests/test_light_store.py holds the two equal (and, with
#: DIGEST_WRITE_SQLITE_SCHEMA=1, writes the file anew after a migration is added).
SCHEMA_FILE = "sqlite-schema.sql"

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
    """The file a plain ``sqlite:///PATH`` URL names, there or to be made in a folder that
    is; None for any other URL (in memory, with options, quoted characters, another
    database)."""
    if not url.startswith(_URL_PREFIX) or any(char in url for char in "?%#"):
        return None
    path = Path(url[len(_URL_PREFIX) :])
    if str(path) in ("", ".", ":memory:") or path.is_dir() or not path.parent.is_dir():
        return None
    return path


def _is_empty(connection: sqlite3.Connection) -> bool:
    tables: int = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    return tables == 0


def _create(connection: sqlite3.Connection) -> None:
    """This version's schema in a new file, in one transaction. Another process creating or
    migrating the same file at once holds the write lock first: it made the tables, and
    this transaction, finding them there, ends having changed nothing."""
    schema = files("digest").joinpath("data", SCHEMA_FILE).read_text(encoding="utf-8")
    try:
        connection.executescript(f"BEGIN IMMEDIATE;\n{schema}COMMIT;\n")
    except sqlite3.OperationalError:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        if _is_empty(connection):
            raise


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
        """The file ``url`` names, if it is a SQLite file at this version's schema or not
        there yet (then made at it); else None, and the full store is the one to open it,
        migrate it, or say what is wrong with it."""
        path = sqlite_file(url)
        if path is None:
            return None
        try:
            # Autocommit: transactions are begun here, explicitly, as the full store's are.
            connection = sqlite3.connect(path, isolation_level=None, timeout=10)
        except sqlite3.DatabaseError:
            return None
        try:
            for pragma in SQLITE_PRAGMAS:
                connection.execute(pragma)
            if _is_empty(connection):
                _create(connection)
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
