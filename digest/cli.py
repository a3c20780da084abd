"""The ``digest`` command: a thin click layer over the library.

Each command parses its options, calls one library function and prints a short result.
A ``DigestError`` becomes one line on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click
from rich.console import Console
from rich.table import Table

from .cluster import Method, Text, cluster_texts
from .config import DEFAULT_CONFIG, Settings, load_settings
from .demo import SAMPLES_EDITION_END, serve_samples
from .discover import discover_feeds
from .errors import AddressError, ConfigError, DigestError, FeedError
from .fetch import fetch_all
from .headlines import read_headlines, write_rows
from .health import is_stale
from .models import Digest, FeedSource, Section, Subscriber
from .opml import read_opml, write_opml
from .parse import parse_feed
from .pipeline import (
    FeedReport,
    SendReport,
    build_edition,
    fetch_feeds,
    make_policy,
    send_edition,
    today,
)
from .rank import edition_window
from .send import normalize_address
from .store import FeedHealth, Store
from .tickers import find_tickers, symbol_table

F = TypeVar("F", bound=Callable[..., Any])
console = Console(highlight=False, soft_wrap=True)


class _Group(click.Group):
    """Turns every DigestError into one clear line and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            raise click.ClickException(str(exc)) from None


class _Context:
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
        store = Store(self.settings.db_url)
        try:
            yield store
        finally:
            store.close()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _date_option(function: F) -> F:
    return click.option(
        "--date",
        "date",
        type=click.DateTime(formats=["%Y-%m-%d"]),
        help="Edition date, YYYY-MM-DD (default: today in the edition's time zone).",
    )(function)


def _edition_date(context: _Context, raw: dt.datetime | None) -> dt.date:
    return raw.date() if raw is not None else today(context.settings, _now())


@click.group(cls=_Group)
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

    Data lives in DIGEST_DB (default: digest.db beside the config), sent mail in
    DIGEST_OUTBOX (default: ./outbox) unless DIGEST_SMTP_URL names an SMTP server.
    """
    ctx.obj = _Context(config)


pass_context = click.make_pass_decorator(_Context)


# -- the daily job ---------------------------------------------------------------------------


@main.command()
@_date_option
@click.option("--dry-run", is_flag=True, help="Fetch and build, but send nothing.")
@pass_context
def run(context: _Context, date: dt.datetime | None, dry_run: bool) -> None:
    """Fetch every feed, build the edition and send it."""
    edition_date = _edition_date(context, date)
    with context.store() as store:
        _print_fetch(fetch_feeds(context.settings, store, _now()))
        digest = build_edition(context.settings, store, edition_date)
        _print_build(digest)
        if dry_run:
            count = len(store.subscribers(active_only=True))
            console.print(f"Dry run: would send to {count} active subscribers.")
            return
        _print_send(send_edition(context.settings, store, edition_date, _now()))


@main.command()
@pass_context
def fetch(context: _Context) -> None:
    """Fetch every feed and store new items."""
    with context.store() as store:
        _print_fetch(fetch_feeds(context.settings, store, _now()))


@main.command()
@_date_option
@pass_context
def build(context: _Context, date: dt.datetime | None) -> None:
    """Build the edition from stored items."""
    with context.store() as store:
        _print_build(build_edition(context.settings, store, _edition_date(context, date)))


@main.command()
@_date_option
@pass_context
def send(context: _Context, date: dt.datetime | None) -> None:
    """Send the built edition to every active subscriber who has not had it."""
    with context.store() as store:
        _print_send(send_edition(context.settings, store, _edition_date(context, date), _now()))


@main.command()
@click.option("--port", default=8025, show_default=True, help="Port on 127.0.0.1.")
@pass_context
def preview(context: _Context, port: int) -> None:
    """Serve the latest edition at http://127.0.0.1:PORT/ for a browser."""
    import uvicorn

    from .web import make_app

    with context.store() as store:
        console.print(f"Serving the latest edition at http://127.0.0.1:{port}/ (Ctrl-C stops)")
        uvicorn.run(
            make_app(context.settings, store), host="127.0.0.1", port=port, log_level="warning"
        )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8025, show_default=True, help="Port for the web pages.")
@pass_context
def serve(context: _Context, host: str, port: int) -> None:
    """Run the schedule (fetch every 30 minutes, send at send_at) and the web pages."""
    import logging

    import uvicorn

    from .schedule import make_scheduler
    from .web import make_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with context.store() as store:
        scheduler = make_scheduler(context.settings, store)
        scheduler.start()
        edition = scheduler.get_job("edition")
        console.print(
            f"Next edition at {edition.next_run_time:%Y-%m-%d %H:%M %Z}; "
            f"web pages at http://{host}:{port}/ (Ctrl-C stops)"
        )
        try:
            uvicorn.run(
                make_app(context.settings, store), host=host, port=port, log_level="warning"
            )
        finally:
            scheduler.shutdown(wait=True)


@main.command()
@pass_context
def demo(context: _Context) -> None:
    """Run the whole job on the bundled sample feeds and subscribers.

    Serves the sample feeds on 127.0.0.1 (dated as if fresh), imports the sample
    subscribers, then fetches, builds and sends today's edition into the outbox.
    """
    settings = context.settings
    samples = settings.config_path.resolve().parent
    port = urlsplit(settings.feeds[0].url).port or 80
    edition_date = today(settings, _now())
    end = edition_window(edition_date, settings.edition.send_at, settings.edition.timezone)[1]
    with context.store() as store:
        added = _import_subscribers(store, samples / "subscribers.csv")
        console.print(f"Sample subscribers: {added} added, {len(store.subscribers())} in all.")
        with ExitStack() as stack:
            try:
                stack.enter_context(
                    serve_samples(samples / "feeds", port, offset=end - SAMPLES_EDITION_END)
                )
            except OSError as exc:
                raise DigestError(
                    f"cannot serve the sample feeds on 127.0.0.1:{port}: {exc.strerror}"
                ) from None
            _print_fetch(fetch_feeds(settings, store, _now()))
        digest = build_edition(settings, store, edition_date)
        _print_build(digest)
        report = send_edition(settings, store, edition_date, _now())
        _print_send(report)
    console.print(
        f"\nThe emails: {report.destination}/*.eml (open them with any mail client)."
        f"\nThe web edition: run\n  .venv/bin/digest --config {context.config} preview"
        f"\nthen open {settings.edition.site_url}/ in a browser "
        f"(the archive is at {settings.edition.site_url}/archive/)."
    )


def _csv_files(reads: str, writes: str) -> Callable[[F], F]:
    """The --input and --output options of the headline commands."""

    def decorate(function: F) -> F:
        function = click.option(
            "--output",
            "output_path",
            type=click.Path(path_type=Path, dir_okay=False),
            required=True,
            help=f"CSV to write: {writes}.",
        )(function)
        return click.option(
            "--input",
            "input_path",
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            required=True,
            help=f"CSV with {reads}.",
        )(function)

    return decorate


@main.command()
@_csv_files("id,title and optionally summary,source,published", "id,cluster")
@click.option(
    "--method",
    type=click.Choice([method.value for method in Method]),
    default=Method.LIGHT.value,
    show_default=True,
    help="light: TF-IDF of words and word parts; embedding: blends in a sentence embedding "
    "(needs `make embeddings`).",
)
def cluster(input_path: Path, output_path: Path, method: str) -> None:
    """Group headlines into stories with the clusterer the edition uses."""
    headlines = read_headlines(input_path)
    texts = [Text(headline.title, headline.summary, headline.published) for headline in headlines]
    groups = cluster_texts(texts, Method(method))
    label = {index: number for number, group in enumerate(groups) for index in group}
    write_rows(
        output_path,
        ("id", "cluster"),
        ((headline.id, str(label[index])) for index, headline in enumerate(headlines)),
    )
    console.print(f"{len(headlines)} headlines in {len(groups)} stories: {output_path}")


@main.command()
@_csv_files("id,title and optionally summary", "id,tickers (space-separated, upper case)")
def tickers(input_path: Path, output_path: Path) -> None:
    """Recognise stock tickers and coins in headlines ($NVDA, NYSE: BRK.B, Nvidia, Bitcoin)."""
    headlines = read_headlines(input_path)
    rows = [
        (headline.id, " ".join(find_tickers(f"{headline.title} {headline.summary}")))
        for headline in headlines
    ]
    write_rows(output_path, ("id", "tickers"), rows)
    tagged = sum(1 for _, symbols in rows if symbols)
    console.print(f"{len(rows)} headlines, {tagged} with tickers: {output_path}")


# -- subscribers -----------------------------------------------------------------------------


@main.group()
def subscribers() -> None:
    """Add, list, remove, import and export subscribers."""


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="How to greet them.")
@click.option("--watch", default="", help="Tickers and coins to lead their email: NVDA,BTC.")
@pass_context
def subscribers_add(context: _Context, email: str, name: str, watch: str) -> None:
    """Subscribe EMAIL (or resubscribe it, or change its watchlist)."""
    address = normalize_address(email)
    watchlist = parse_watchlist(watch)
    with context.store() as store:
        added = store.add_subscriber(Subscriber(address, name.strip(), True, watchlist), _now())
    console.print(f"Subscribed {address}." if added else f"{address} is already subscribed.")


@subscribers.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include unsubscribed addresses.")
@pass_context
def subscribers_list(context: _Context, show_all: bool) -> None:
    """List subscribers."""
    with context.store() as store:
        people = store.subscribers(active_only=not show_all)
    table = Table("Email", "Name", "Status", "Watchlist")
    for person in people:
        status = "active" if person.active else "unsubscribed"
        table.add_row(person.email, person.name, status, " ".join(person.watchlist))
    console.print(table)
    console.print(f"{len(people)} subscriber{'s' if len(people) != 1 else ''}.")


@subscribers.command("remove")
@click.argument("email")
@pass_context
def subscribers_remove(context: _Context, email: str) -> None:
    """Remove EMAIL and its history."""
    with context.store() as store:
        removed = store.remove_subscriber(email.strip())
    if not removed:
        raise AddressError(f"{email}: not a subscriber")
    console.print(f"Removed {email.strip()}.")


@subscribers.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@pass_context
def subscribers_import(context: _Context, file: Path) -> None:
    """Import subscribers from a CSV file with an 'email' column (and optionally 'name').

    Every row is checked first; one bad address imports nothing.
    """
    with context.store() as store:
        added = _import_subscribers(store, file)
    console.print(f"Imported {added} new subscriber{'s' if added != 1 else ''}.")


def read_subscribers_csv(file: Path) -> list[Subscriber]:
    """Every row of ``file`` as a subscriber; ``AddressError`` names the first bad line."""
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
        people.append(Subscriber(address, (row.get("name") or "").strip(), True, watchlist))
    return people


def parse_watchlist(raw: str) -> tuple[str, ...]:
    """Symbols from "NVDA, btc"; an unknown one is an error naming it."""
    symbols = tuple(dict.fromkeys(part.strip().upper() for part in raw.split(",") if part.strip()))
    known = symbol_table().symbols
    unknown = [symbol for symbol in symbols if symbol not in known]
    if unknown:
        raise ConfigError(f"--watch: unknown ticker or coin {unknown[0]!r}")
    return symbols


def _import_subscribers(store: Store, file: Path) -> int:
    people = read_subscribers_csv(file)
    return sum(store.add_subscriber(person, _now()) for person in people)


@subscribers.command("export")
@pass_context
def subscribers_export(context: _Context) -> None:
    """Write every subscriber as CSV to standard output."""
    with context.store() as store:
        people = store.subscribers()
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["email", "name", "status", "watch"])
    for person in people:
        status = "active" if person.active else "unsubscribed"
        writer.writerow([person.email, person.name, status, ",".join(person.watchlist)])


# -- feeds -----------------------------------------------------------------------------------


@main.group(invoke_without_command=True)
@click.pass_context
def feeds(ctx: click.Context) -> None:
    """Each feed's health, failing and stale feeds first; add, remove, check, import, export.

    Feeds come from the configuration file and from 'digest feeds add'.
    """
    if ctx.invoked_subcommand is not None:
        return
    context = ctx.find_object(_Context)
    assert context is not None
    with context.store() as store:
        store.sync_feeds(context.settings.feeds)
        health = store.feed_health()
    now = _now()

    def urgency(feed: FeedHealth) -> tuple[int, int, str]:
        if not feed.active:
            rank = 4
        elif feed.gone_at is not None:
            rank = 1
        elif feed.consecutive_failures:
            rank = 0
        elif is_stale(feed.last_success, now):
            rank = 2
        else:
            rank = 3
        return rank, -feed.consecutive_failures, feed.name

    table = Table("Feed", "Section", "Status", "Fails", "Items", "Last success", "Avg ms", "Error")
    for feed in sorted(health, key=urgency):
        table.add_row(
            feed.name,
            feed.section,
            _status_text(feed, now),
            str(feed.consecutive_failures),
            str(feed.stored_items),
            _when(feed.last_success),
            f"{feed.mean_response_ms:.0f}" if feed.mean_response_ms is not None else "",
            feed.last_error or "",
        )
    console.print(table)


def _status_text(feed: FeedHealth, now: dt.datetime) -> str:
    if not feed.active:
        return "inactive"
    if feed.gone_at is not None:
        return "[red]gone (410)[/red]"
    if feed.consecutive_failures:
        retry = f", retry {_when(feed.next_attempt)}" if feed.next_attempt else ""
        return f"[red]failing ({feed.last_status or 'no response'}){retry}[/red]"
    if feed.last_attempt is None:
        return "never fetched"
    if is_stale(feed.last_success, now):
        return "[yellow]stale[/yellow]"
    return f"ok ({feed.last_status})"


def _when(moment: dt.datetime | None) -> str:
    return "never" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


_SECTION_CHOICE = click.Choice([section.value for section in Section])


@feeds.command("add")
@click.argument("url")
@click.option("--section", type=_SECTION_CHOICE, required=True, help="Where its stories go.")
@click.option("--name", default="", help="The outlet's name (default: the host).")
@click.option(
    "--weight",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="How much its stories count.",
)
@pass_context
def feeds_add(context: _Context, url: str, section: str, name: str, weight: float) -> None:
    """Add the feed at URL."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FeedError(url, "expected an http(s) URL")
    source = FeedSource(name.strip() or parts.netloc, url.strip(), Section(section), weight)
    with context.store() as store:
        store.sync_feeds(context.settings.feeds)
        added = store.add_feed(source)
    console.print(f"Added {source.name} ({source.url})." if added else f"{url} is already a feed.")


@feeds.command("remove")
@click.argument("url")
@pass_context
def feeds_remove(context: _Context, url: str) -> None:
    """Remove the feed at URL (one added with 'digest feeds add')."""
    with context.store() as store:
        store.sync_feeds(context.settings.feeds)
        origin = store.remove_feed(url.strip())
    if origin is None:
        raise FeedError(url, "not a feed (see 'digest feeds')")
    if origin == "config":
        raise FeedError(url, f"listed in {context.config}: remove it there")
    console.print(f"Removed {url.strip()}.")


@feeds.command("check")
@click.argument("url")
@pass_context
def feeds_check(context: _Context, url: str) -> None:
    """Fetch the feed at URL once and show what it holds (nothing is stored)."""
    source = FeedSource(urlsplit(url).netloc or url, url, Section.STOCKS)
    (result,) = asyncio.run(fetch_all([source], None, make_policy(context.settings)))
    console.print(f"{url}: HTTP {result.status or '-'} in {result.elapsed * 1000:.0f} ms")
    if result.moved_to:
        console.print(f"  permanently moved to {result.moved_to}")
    if not result.ok or result.body is None:
        raise FeedError(url, result.error or "no body")
    items = parse_feed(result.body, source, _now(), result.content_type)
    console.print(
        f"  {len(result.body):,} bytes, {result.content_type or 'no Content-Type'}, "
        f"{len(items)} items"
    )
    if not items:
        alternates = discover_feeds(result.body, url)
        hint = f"; the page links to: {', '.join(alternates)}" if alternates else ""
        raise FeedError(url, f"no entries found: not a feed, or an empty one{hint}")
    newest = max(item.published for item in items)
    console.print(f"  newest item {_when(newest)}")
    for item in items[:5]:
        console.print(f"  - {item.title}")


@feeds.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--section", type=_SECTION_CHOICE, help="For feeds the file does not place.")
@pass_context
def feeds_import(context: _Context, file: Path, section: str | None) -> None:
    """Add every feed of an OPML file (one bad entry imports nothing)."""
    sources = read_opml(file, Section(section) if section else None)
    with context.store() as store:
        store.sync_feeds(context.settings.feeds)
        added = sum(store.add_feed(source) for source in sources)
    console.print(f"Imported {added} new feed{'s' if added != 1 else ''} of {len(sources)}.")


@feeds.command("export")
@pass_context
def feeds_export(context: _Context) -> None:
    """Write every active feed as OPML to standard output."""
    with context.store() as store:
        store.sync_feeds(context.settings.feeds)
        sources = store.feed_sources()
    click.echo(write_opml(sources, context.settings.edition.title), nl=False)


# -- output ------------------------------------------------------------------------------------


def _print_fetch(reports: list[FeedReport]) -> None:
    postponed = [report for report in reports if report.postponed_until is not None]
    fetched = [report for report in reports if report.postponed_until is None]
    failed = [report for report in fetched if report.error]
    items = sum(report.items for report in fetched)
    new = sum(report.new_items for report in fetched)
    console.print(
        f"Fetched {len(fetched) - len(failed)}/{len(fetched)} feeds: {items} items, {new} new."
    )
    for report in failed:
        console.print(f"  [red]failed[/red] {report.name} ({report.url}): {report.error}")
    for report in postponed:
        console.print(
            f"  postponed {report.name} ({report.url}) until {_when(report.postponed_until)}"
        )


def _print_build(digest: Digest) -> None:
    stories = [*digest.top, *(story for _, stories in digest.sections for story in stories)]
    shared = sum(1 for story in stories if len(story.outlets) > 1)
    console.print(
        f"Built the edition of {digest.date}: {len(stories)} stories, "
        f"{shared} covered by two or more outlets."
    )


def _print_send(report: SendReport) -> None:
    console.print(
        f"Sent the edition of {report.date} to {report.sent} subscribers"
        f" ({report.already_sent} had it already) via {report.destination}."
    )
    for delivery in report.deliveries:
        if not delivery.sent:
            console.print(f"  [red]not sent[/red] {delivery.recipient}: {delivery.error}")
    if report.failed:
        raise DigestError(f"{report.failed} messages were refused; 'digest send' retries them")
