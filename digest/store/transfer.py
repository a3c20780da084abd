"""Copying a whole store from one database to another (``digest migrate``): SQLite to
PostgreSQL when a newsletter outgrows one machine, or back.

Both ends are brought to the current schema first. The target must be empty; every table is
copied in one transaction on the target, rows keeping their ids, and the copy is verified by
counting each table at both ends before it is committed: all of it is copied, or none.
The scheduler's jobs are not copied: ``digest serve`` adds them again when it starts, and a
job's pickled state is no data of the newsletter's.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, Table, TextClause, func, inspect, select, text
from sqlalchemy.exc import SQLAlchemyError

from ..errors import StoreError
from . import schema
from ._database import Database, make_engine, reason, shown

#: Rows read and written at a time.
CHUNK = 5_000


def copy_store(source_url: str, target_url: str) -> dict[str, int]:
    """Copy every row of the store at ``source_url`` into the empty one at ``target_url``;
    returns how many rows each table holds."""
    if source_url == target_url:
        raise StoreError(f"{shown(source_url)}: copying a database onto itself")
    _refuse_non_empty(target_url)
    source, target = Database(source_url), None
    try:
        target = Database(target_url)
        with source.begin() as reading, target.begin() as writing:
            counts = {table.name: _copy(table, reading, writing) for table in _tables()}
            _copy_meta(reading, writing)
            if writing.dialect.name == "postgresql":
                _restart_sequences(writing)
            for table in _tables():
                copied = _count(writing, table)
                if copied != counts[table.name]:
                    raise StoreError(
                        f"{shown(target_url)}: {table.name} has {copied} rows after the copy,"
                        f" {counts[table.name]} in {shown(source_url)}: nothing was copied"
                    )
        return counts
    except SQLAlchemyError as exc:
        raise StoreError(f"{shown(target_url)}: the copy failed: {reason(exc)}") from None
    finally:
        source.close()
        if target is not None:
            target.close()


#: Tables the copy leaves out (``meta`` is copied apart, without its schema version).
_NOT_COPIED = {schema.meta.name, schema.scheduler_jobs.name}


def _tables() -> list[Table]:
    """Every table copied, parents before the tables that point at them."""
    return [table for table in schema.metadata.sorted_tables if table.name not in _NOT_COPIED]


def _refuse_non_empty(url: str) -> None:
    """Refuse a target that holds any row, before anything is written to it."""
    try:
        engine: Engine = make_engine(url)
    except ImportError:
        Database(url)  # raises the one-line error that names the missing driver
        raise
    try:
        with engine.connect() as connection:
            present = set(inspect(connection).get_table_names())
            filled = [
                name for name in sorted(present) if connection.execute(_rows_of(name)).scalar_one()
            ]
    except SQLAlchemyError as exc:
        raise StoreError(f"{shown(url)}: cannot open the database: {reason(exc)}") from None
    finally:
        engine.dispose()
    if filled:
        raise StoreError(
            f"{shown(url)}: the target is not empty ({', '.join(filled)} hold rows):"
            " copy only into a new, empty database"
        )


def _rows_of(name: str) -> TextClause:
    # ``meta`` of a database just created holds its schema version, which is no data.
    if name == "meta":
        return text("SELECT count(*) FROM meta WHERE key <> 'schema_version'")
    return text(f'SELECT count(*) FROM "{name}"')


def _copy(table: Table, reading: Connection, writing: Connection) -> int:
    copied = 0
    result = reading.execution_options(yield_per=CHUNK).execute(
        select(table).order_by(*table.primary_key.columns)
    )
    for rows in result.partitions():
        writing.execute(table.insert(), [row._asdict() for row in rows])
        copied += len(rows)
    return copied


def _copy_meta(reading: Connection, writing: Connection) -> None:
    """The settings ``meta`` keeps (the signing keys...); the target has its own version."""
    rows = reading.execute(select(schema.meta).where(schema.meta.c.key != "schema_version")).all()
    if rows:
        writing.execute(schema.meta.insert(), [row._asdict() for row in rows])


def _count(connection: Connection, table: Table) -> int:
    return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def _restart_sequences(writing: Connection) -> None:
    """Rows came with their ids: each id sequence goes on after the highest one copied."""
    for table in _tables():
        if "id" not in table.c or not table.c.id.primary_key:
            continue
        writing.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'),"
                f" coalesce(max(id), 0) + 1, false) FROM {table.name}"
            )
        )
