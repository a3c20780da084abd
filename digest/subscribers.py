"""Subscriber lists in and out: addresses checked once, watchlists, CSV files.

The CSV has an ``email`` column and optionally ``name``, ``status`` and ``watch`` (symbols
separated by commas); ``write_subscribers`` writes what ``read_subscribers`` reads. A row whose
status is ``unsubscribed`` stays so when imported: an export carried into another database
must not subscribe again the people who left.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from .addresses import normalize_address
from .errors import AddressError, ConfigError
from .models import Subscriber
from .tickers import symbol_table

CSV_COLUMNS = ("email", "name", "status", "watch")
#: The ``status`` column's values, and whether each means the address gets mail.
STATUSES = {"active": True, "unsubscribed": False, "": True}


def parse_watchlist(raw: str) -> tuple[str, ...]:
    """Symbols from "NVDA, btc"; an unknown one is an error naming it."""
    symbols = tuple(dict.fromkeys(part.strip().upper() for part in raw.split(",") if part.strip()))
    known = symbol_table().symbols
    unknown = [symbol for symbol in symbols if symbol not in known]
    if unknown:
        raise ConfigError(f"--watch: unknown ticker or coin {unknown[0]!r}")
    return symbols


def read_subscribers(file: Path) -> list[Subscriber]:
    """Every row of ``file`` as a subscriber; the error names the first bad line."""
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
            raise ConfigError(
                f"{file}:{reader.line_num}: status {status!r}: expected 'active' or 'unsubscribed'"
            )
        name = (row.get("name") or "").strip()
        people.append(Subscriber(address, name, STATUSES[status], watchlist))
    return people


def write_subscribers(people: Iterable[Subscriber], out: TextIO) -> None:
    """``people`` as CSV, one row each, with their status."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for person in people:
        status = "active" if person.active else "unsubscribed"
        writer.writerow([person.email, person.name, status, ",".join(person.watchlist)])
