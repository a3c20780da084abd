"""CSV in and out for the evaluation entry points (`digest cluster`, `digest tickers`).

A headline file has the columns ``id,title`` and optionally ``summary,source,published``
(ISO 8601 or epoch milliseconds). A bad row is named by file and line, and nothing is written.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError


@dataclass(frozen=True, slots=True)
class Headline:
    id: str
    title: str
    summary: str = ""
    source: str = ""
    published: dt.datetime | None = None


def read_headlines(path: Path) -> list[Headline]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = {name.strip().lower(): name for name in reader.fieldnames or []}
    if "id" not in columns or "title" not in columns:
        raise ConfigError(f"{path}: line 1: expected a header with 'id' and 'title' columns")
    headlines = []
    for row in reader:
        values = {name: (row.get(original) or "").strip() for name, original in columns.items()}
        where = f"{path}:{reader.line_num}"
        if not values["id"]:
            raise ConfigError(f"{where}: empty id")
        headlines.append(
            Headline(
                id=values["id"],
                title=values["title"],
                summary=values.get("summary", ""),
                source=values.get("source", ""),
                published=_moment(values.get("published", ""), where),
            )
        )
    return headlines


def _moment(raw: str, where: str) -> dt.datetime | None:
    if not raw:
        return None
    if raw.isdigit():
        return dt.datetime.fromtimestamp(int(raw) / 1000, tz=dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{where}: published: expected ISO 8601 or epoch milliseconds, got {raw!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def write_rows(path: Path, header: tuple[str, str], rows: Iterable[tuple[str, str]]) -> None:
    """Write a two-column CSV whole, or not at all."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(buffer.getvalue(), encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror}") from None
