"""Subscriber lists in and out: addresses checked once, watchlists, CSV files.

The CSV has an ``email`` column and optionally ``name``, ``status`` and ``watch`` (symbols
separated by commas); ``write_subscribers`` writes what ``read_subscribers`` reads. The status
is a lifecycle state (``digest.lifecycle.State``). A row whose status is ``unsubscribed``,
``bounced`` or ``complained`` stays so when imported: an export carried into another database
must not subscribe again the people who left.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from .addresses import normalize_address
from .enrolment import Entry
from .errors import AddressError, ConfigError
from .lifecycle import State, SubscriberRecord
from .models import Subscriber
from .tickers import symbol_table

CSV_COLUMNS = ("email", "name", "status", "watch")
#: The ``status`` column's values: a state, or none.
STATUSES: dict[str, State | None] = {"": None, **{state.value: state for state in State}}


def parse_watchlist(raw: str) -> tuple[str, ...]:
    """Symbols from "NVDA, btc"; an unknown one is an error naming it."""
    symbols = tuple(dict.fromkeys(part.strip().upper() for part in raw.split(",") if part.strip()))
    known = symbol_table().symbols
    unknown = [symbol for symbol in symbols if symbol not in known]
    if unknown:
        raise ConfigError(f"--watch: unknown ticker or coin {unknown[0]!r}")
    return symbols


def read_subscribers(file: Path) -> list[Entry]:
    """Every row of ``file`` as an entry to enrol; the error names the first bad line."""
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read: {exc}") from None
    reader = csv.DictReader(io.StringIO(text))
    fields = [name.strip().lower() for name in reader.fieldnames or []]
    if "email" not in fields:
        raise ConfigError(f"{file}: line 1: expected a header with an 'email' column")
    reader.fieldnames = fields
    people = []
    for row in reader:
        try:
            address = normalize_address(row.get("email") or "")
        except AddressError as exc:
            raise AddressError(f"{file}:{reader.line_num}: {exc}") from None
        try:
            watchlist = parse_watchlist(row.get("watch") or "")
        except ConfigError as exc:
            raise ConfigError(f"{file}:{reader.line_num}: {exc}") from None
        status = (row.get("status") or "").strip().lower()
        if status not in STATUSES:
            expected = ", ".join(repr(state.value) for state in State)
            raise ConfigError(
                f"{file}:{reader.line_num}: status {status!r}: expected one of {expected}"
            )
        name = (row.get("name") or "").strip()
        listed = STATUSES[status]
        person = Subscriber(address, name, listed in (None, State.ACTIVE), watchlist)
        people.append(Entry(person, listed))
    return people


def write_subscribers(records: Iterable[SubscriberRecord], out: TextIO) -> None:
    """``records`` as CSV, one row each, with their state as the status."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for record in records:
        person = record.subscriber
        writer.writerow([person.email, person.name, record.state, ",".join(person.watchlist)])
