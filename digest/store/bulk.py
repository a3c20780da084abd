"""Many rows through one statement, handed to the database driver as they are.

``Connection.execute(statement, rows)`` builds and converts each row's parameters in Python
(about 20 µs a row, more than the database spends storing it). Here the statement is
compiled once per database dialect and the rows go to the driver's ``executemany`` as plain
tuples or dicts, with only the conversions the dialect needs (dates on SQLite), so the same
code runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
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
    order, convert = prepared.order, prepared.convert
    converted = [
        tuple(convert[key](row[key]) if key in convert else row[key] for key in order)
        for row in rows
    ]
    names = prepared.names
    if names is None:
        c.exec_driver_sql(prepared.sql, converted)
    else:
        c.exec_driver_sql(prepared.sql, [dict(zip(names, row, strict=True)) for row in converted])
