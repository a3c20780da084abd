"""The connection every table family shares: engine, transactions, errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from ..errors import StoreError
from . import schema
from .feed_rows import Conflict, Rows, driver_sql
from .light import SQLITE_PRAGMAS

T = TypeVar("T")


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # The driver opens a transaction only before INSERT, UPDATE or DELETE, so a migration's
    # ALTER TABLE ran outside it and survived a rollback: transactions are begun explicitly
    # instead (_sqlite_begin), with the driver's own handling off.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # IMMEDIATE takes the write lock at the start, waiting for it (busy_timeout): a plain
    # BEGIN that reads first and writes later fails at once ("database is locked") when
    # another connection wrote in between, which several sending connections do all the time.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


#: Server settings for every PostgreSQL connection, unless the URL gives its own ``options``:
#: no statement runs for ever, and a transaction a dead client left open is ended soon.
POSTGRES_OPTIONS = "-c statement_timeout=30s -c idle_in_transaction_session_timeout=60s"


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        connect_args: dict[str, Any] = {"connect_timeout": 10}
        if "options" not in parsed.query:
            connect_args["options"] = POSTGRES_OPTIONS
        # A few connections per process (the sending threads, the web server, the scheduler),
        # renewed every half hour. No ping before each use: a sending worker takes a
        # connection for every message, and a round trip each would halve its rate.
        return create_engine(
            url, pool_size=8, max_overflow=8, pool_recycle=1800, connect_args=connect_args
        )
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def reason(exc: SQLAlchemyError) -> str:
    """The driver's message on one line: PostgreSQL's run over several ("server closed the
    connection unexpectedly\n\tThis probably means...")."""
    original = getattr(exc, "orig", None)
    text = str(original) if original is not None else str(exc).splitlines()[0]
    return " ".join(text.split())


#: SQLSTATEs with which PostgreSQL ends one transaction so that another can go on (a
#: deadlock, a serialisation conflict): it wrote nothing, so it may simply run again.
RUN_AGAIN = frozenset({"40P01", "40001"})
#: Tries of such a transaction before its error is the answer.
TRIES = 3


def may_run_again(exc: OperationalError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in RUN_AGAIN


#: Databases by SQLAlchemy backend name, as errors name them.
NAMES = {"postgresql": "PostgreSQL", "mysql": "MySQL", "sqlite": "SQLite"}
#: What installs the driver a URL asks for, where market-digest has an extra for it.
EXTRAS = {
    "postgresql": "pip install 'market-digest[postgres]'",
    "postgresql+psycopg": "pip install 'market-digest[postgres]'",
}


_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def shown(url: str) -> str:
    """``url`` as errors show it: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (SQLAlchemyError, ValueError):
        return _PASSWORD.sub(r"\1***@", url)


def _missing_driver(url: str, exc: ImportError) -> StoreError:
    parsed, module = make_url(url), exc.name or str(exc)
    name = NAMES.get(parsed.get_backend_name(), parsed.get_backend_name())
    install = EXTRAS.get(parsed.drivername, f"install the {module} module")
    return StoreError(f"{shown(url)}: the {name} driver is not installed ({module}): {install}")


class _ConnectionRows:
    """``feed_rows``'s statements on a connection of the store, in its transaction: the
    store's errors and retries apply to them as to its own statements."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.dialect = connection.dialect.name

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        try:
            result = self.connection.exec_driver_sql(driver_sql(sql, self.dialect), tuple(params))
        except IntegrityError as exc:
            raise Conflict(reason(exc)) from exc
        return list(result.all()) if result.returns_rows else []

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self.connection.exec_driver_sql(driver_sql(sql, self.dialect), list(rows))
        except IntegrityError as exc:
            raise Conflict(reason(exc)) from exc


def driver_rows(connection: Connection) -> Rows:
    return _ConnectionRows(connection)


class Database:
    """An open, migrated database; the table families below add their reads and writes."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = make_engine(url)
        except SQLAlchemyError as exc:
            raise StoreError(f"{shown(url)}: cannot open the database: {reason(exc)}") from None
        except ImportError as exc:
            # SQLAlchemy imports the driver here; without it there is nothing to open.
            raise _missing_driver(url, exc) from None
        try:
            with self.engine.begin() as connection:
                schema.migrate(connection)
        except SQLAlchemyError as exc:
            self.engine.dispose()
            raise StoreError(f"{shown(url)}: cannot open the database: {reason(exc)}") from None
        except BaseException:
            self.engine.dispose()
            raise

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction: all of it is written, or none of it."""
        try:
            with self.engine.begin() as connection:
                yield connection
        except OperationalError as exc:
            raise StoreError(f"{shown(self.url)}: {reason(exc)}") from None

    def transaction(self, work: Callable[[Connection], T]) -> T:
        """``work`` in one transaction, run again when PostgreSQL ended it to break a deadlock
        or a serialisation conflict. Only for work that does nothing but read and write the
        database, so that a second run is as if the first had never been: never around
        anything that leaves the process, such as a message handed to a server."""
        return self._run_again(self.engine.begin, work)

    def statement(self, work: Callable[[Connection], T]) -> T:
        """``work``, one statement, committed on its own (on PostgreSQL that saves the BEGIN
        and COMMIT round trips) and run again as ``transaction`` is."""
        if self.engine.dialect.name != "postgresql":
            return self.transaction(work)
        return self._run_again(
            lambda: self.engine.connect().execution_options(isolation_level="AUTOCOMMIT"), work
        )

    def _run_again(
        self,
        connect: Callable[[], AbstractContextManager[Connection]],
        work: Callable[[Connection], T],
    ) -> T:
        for attempt in range(1, TRIES + 1):
            try:
                with connect() as connection:
                    return work(connection)
            except OperationalError as exc:
                if attempt < TRIES and may_run_again(exc):
                    continue
                raise StoreError(f"{shown(self.url)}: {reason(exc)}") from None
        raise AssertionError("unreachable")  # the loop returns or raises

    @contextmanager
    def each_on_its_own(self) -> Iterator[Connection]:
        """Statements that need no transaction around them, each committed as it runs: on
        PostgreSQL that saves the BEGIN and COMMIT round trips (SQLite gets a transaction)."""
        if self.engine.dialect.name != "postgresql":
            with self.begin() as connection:
                yield connection
            return
        try:
            with self.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            ) as connection:
                yield connection
        except OperationalError as exc:
            raise StoreError(f"{shown(self.url)}: {reason(exc)}") from None
