"""The ``digest`` group and what every command shares: settings, the store, dates, output.

Each command parses its options, calls the library and prints a short result. A
``DigestError`` becomes one line on stderr and exit status 1, never a traceback.
Commands import the library where they run it, so ``digest --help`` and a mistyped
option answer at once instead of after loading the network, database and email stacks.

Text from feeds and people (titles, names, addresses, a server's error) is printed as a
``rich.text.Text``, never as a string Rich would read as markup or emoji codes: a reason
phrase such as "[/oops]" must not crash ``digest feeds``.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib
import io
import json
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..config import DEFAULT_CONFIG, Settings, load_settings
from ..errors import DigestError, PartialError
from ..window import edition_date as date_in

if TYPE_CHECKING:
    from ..store import Store

F = TypeVar("F", bound=Callable[..., Any])
#: Every command, by the module of this package that defines it.
COMMANDS = {
    "build": "edition",
    "cluster": "headlines",
    "demo": "edition",
    "feeds": "feeds",
    "fetch": "edition",
    "inbound": "inbound",
    "migrate": "database",
    "preview": "edition",
    "run": "edition",
    "send": "edition",
    "sends": "edition",
    "serve": "service",
    "status": "service",
    "subscribers": "subscribers",
    "tickers": "headlines",
}
console = Console(highlight=False, soft_wrap=True)


class _Partial(click.ClickException):
    """A run that did its work with some failures, each already reported."""

    exit_code = PartialError.exit_code


class _Group(click.Group):
    """Turns every DigestError into one clear line and a non-zero exit.

    A command's module is loaded when the command is run or listed (``COMMANDS``), so a
    fetch does not load the subscriber, feed-list and server commands' modules.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(f"{__package__}.{COMMANDS[cmd_name]}")  # registers it
        return self.commands.get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PartialError as exc:
            raise _Partial(str(exc)) from None
        except DigestError as exc:
            raise click.ClickException(str(exc)) from None


class Context:
    """The configuration file, read when a command first needs it, and the store."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config)
        return self._settings

    @contextmanager
    def store(self) -> Iterator[Store]:
        """The store, with the configured feeds synced into it."""
        from ..intake import open_store

        store = open_store(self.settings)
        try:
            yield store
        finally:
            store.close()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def date_option(function: F) -> F:
    return click.option(
        "--date",
        "date",
        type=click.DateTime(formats=["%Y-%m-%d"]),
        metavar="YYYY-MM-DD",
        help="Edition date (default: today in the edition's time zone).",
    )(function)


def edition_date(context: Context, raw: dt.datetime | None) -> dt.date:
    return raw.date() if raw is not None else date_in(now(), context.settings.edition.timezone)


def when(moment: dt.datetime | None) -> str:
    return "never" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


#: How the list commands print: the table for a person at a terminal, the others for programs.
FORMATS = ("table", "plain", "json", "csv")
FORMAT_HELP = (
    "table: boxed, long values wrapped (default on a terminal); "
    "plain: one tab-separated line per row, no header, nothing cut (default when piped); "
    "json: a list of objects; csv: a header line, then the rows."
)
#: A value in a row of ``print_records``; a list is a few words, such as a watchlist.
Cell = str | int | None | list[str]


def format_option(function: F) -> F:
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(FORMATS),
        help=FORMAT_HELP,
    )(function)


def chosen_format(output_format: str | None) -> str:
    """``--format`` as given, or the default: a table on a terminal, plain rows when piped."""
    if output_format is not None:
        return output_format
    return "table" if sys.stdout.isatty() else "plain"


def print_records(
    output_format: str, keys: Sequence[str], rows: Sequence[Mapping[str, Cell]]
) -> None:
    """``rows`` as json, csv or plain lines on standard output, every value in full.

    Nothing in a value is read as markup. In csv a list is joined with commas (as
    ``subscribers import`` reads a watchlist), in plain with spaces; in plain, tabs, line
    breaks and other control characters in a value become spaces, so each row is one line.
    """
    if output_format == "json":
        records = [{key: row[key] for key in keys} for row in rows]
        click.echo(json.dumps(records, ensure_ascii=False, indent=2))
    elif output_format == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(keys)
        for row in rows:
            writer.writerow([_joined(row[key], ",") for key in keys])
        click.echo(out.getvalue(), nl=False)
    elif output_format == "plain":
        for row in rows:
            click.echo("\t".join(_one_line(_joined(row[key], " ")) for key in keys))
    else:
        raise ValueError(f"not a record format: {output_format!r}")


def _joined(value: Cell, separator: str) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return separator.join(value)
    return str(value)


def _one_line(text: str) -> str:
    return "".join(" " if unicodedata.category(char) == "Cc" else char for char in text)


def say(line: str) -> None:
    """Print ``line`` as it is: brackets and colons in it are not markup or emoji codes."""
    console.print(Text(line))


def print_table(headers: Sequence[str], rows: Iterable[Sequence[str | Text]]) -> None:
    """A table; a string cell is shown as it is, a ``Text`` cell carries its own style.

    A value too long for its column wraps inside it: nothing is cut.
    """
    table = Table(*headers)
    for column in table.columns:
        column.overflow = "fold"
    for row in rows:
        table.add_row(*(cell if isinstance(cell, Text) else Text(cell) for cell in row))
    console.print(table)


ENVIRONMENT_HELP = """\b
Environment (secrets go here, never in the YAML file):
  DIGEST_DB             database URL (default: digest.db beside the config)
  DIGEST_OUTBOX         where the embedded SMTP server writes mail (./outbox)
  DIGEST_SMTP_URL       a real SMTP server: smtp[s]://user:pass@host:port
  DIGEST_SECRET_KEY     signs personal links (default: kept in the database);
                        NEW,OLD: signs with NEW, accepts both (key rotation)
  DIGEST_DKIM_KEY       PEM private key to sign every message with DKIM
  DIGEST_DKIM_SELECTOR  that key's selector (set both or neither)
  DIGEST_STATUS_TOKEN   opens /status to who sends it (unset: /status is off)

\b
Exit status:
  0  done
  1  an error, told in one line on stderr
  2  a wrong command or option
  3  partial: some feeds or messages failed, the rest was done
"""


@click.group(cls=_Group, epilog=ENVIRONMENT_HELP)
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_CONFIG,
    show_default=True,
    help="The edition and feeds file.",
)
@click.version_option(package_name="market-digest")
@click.pass_context
def main(ctx: click.Context, config: Path) -> None:
    """Daily stocks & crypto headlines, free to your inbox.

    Settings come from the --config file and the DIGEST_* variables below.
    """
    ctx.obj = Context(config)


pass_context = click.make_pass_decorator(Context)
