"""Many rows through one statement, handed to the database driver as they are.

``Connection.execute(statement, rows)`` builds and converts each row's parameters in Python
(about 20 µs a row, more than the database spends storing it). Here the statement is
compiled once per database dialect and the rows go to the driver's ``executemany`` as plain
tuples or dicts, with only the conversions the dialect needs (dates on SQLite), so the same
code runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Insert, Table
from sqlalchemy.sql.dml import UpdateBase


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement compiled for one dialect and one set of columns."""

    sql: str
    #: The row keys in the order the driver takes them.
    order: tuple[str, ...]
    #: The parameter names when the driver takes named parameters, else None.
    names: tuple[str, ...] | None
    #: Per key, the dialect's conversion of a value, where it has one.
    convert: Mapping[str, Callable[[Any], Any]]


_PREPARED: dict[tuple[int, str, tuple[str, ...]], Prepared] = {}
_INSERTS: dict[tuple[str, str, tuple[str, ...]], Insert] = {}


def insert_skipping(table: Table, unique: tuple[str, ...], dialect: str) -> Insert:
    """An insert into ``table`` that skips a row whose ``unique`` columns another writer
    stored first (ON CONFLICT DO NOTHING), in this database's words; cached."""
    key = (table.name, dialect, unique)
    if key not in _INSERTS:
        statement: Insert
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            statement = sqlite_insert(table).on_conflict_do_nothing(index_elements=list(unique))
        elif dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            statement = postgresql_insert(table).on_conflict_do_nothing(index_elements=list(unique))
        else:
            statement = table.insert()
        _INSERTS[key] = statement
    return _INSERTS[key]


def prepare(c: Connection, statement: UpdateBase, keys: Sequence[str]) -> Prepared:
    """``statement`` compiled for ``c``'s dialect, taking rows with ``keys``; cached."""
    dialect = c.dialect
    cache_key = (id(statement), dialect.name, tuple(keys))
    found = _PREPARED.get(cache_key)
    if found is not None:
        return found
    # for_executemany: no RETURNING of the new ids, which nobody reads.
    compiled = statement.compile(dialect=dialect, column_keys=list(keys), for_executemany=True)
    bound = dict(compiled.binds)
    names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(bound)
    if set(names) != set(keys):
        raise ValueError(f"the statement's parameters {names} are not the rows' keys {keys}")
    convert: dict[str, Callable[[Any], Any]] = {}
    for name in names:
        processor = bound[name].type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            convert[name] = processor
    prepared = Prepared(compiled.string, names, None if compiled.positional else names, convert)
    _PREPARED[cache_key] = prepared
    return prepared


def execute_many(c: Connection, statement: UpdateBase, rows: Sequence[Mapping[str, Any]]) -> None:
    """Run ``statement`` once for each of ``rows`` (dicts with the same keys)."""
    if not rows:
        return
    prepared = prepare(c, statement, list(rows[0]))
    order = prepared.order
    values = itemgetter(*order) if len(order) > 1 else lambda row: (row[order[0]],)
    converting = [
        (place, _quicker(prepared.convert[key]))
        for place, key in enumerate(order)
        if key in prepared.convert
    ]
    converted: list[tuple[Any, ...]] = []
    for row in rows:
        row_values = values(row)
        if converting:
            listed = list(row_values)
            for place, convert in converting:
                listed[place] = convert(listed[place])
            row_values = tuple(listed)
        converted.append(row_values)
    names = prepared.names
    if names is None:
        c.exec_driver_sql(prepared.sql, converted)
    else:
        c.exec_driver_sql(prepared.sql, [dict(zip(names, row, strict=True)) for row in converted])


def _quicker(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``processor``, or a quicker function that gives the same for every value stored here.

    SQLite keeps a date and time as text that SQLAlchemy formats in Python; ``isoformat``
    writes the same text in C, several times faster. It is used only if it does give the
    same text, checked here on dates with and without a fraction of a second.
    """
    samples = [dt.datetime(2026, 11, 24, 5, 6, 7), dt.datetime(999, 1, 2, 3, 4, 5, 60)]
    try:
        same = all(processor(moment) == moment.isoformat(" ", "microseconds") for moment in samples)
    except (TypeError, ValueError):
        same = False
    if not same:
        return processor

    def quicker(value: Any) -> Any:
        if type(value) is dt.datetime and value.tzinfo is None:
            return value.isoformat(" ", "microseconds")
        return processor(value)

    return quicker
