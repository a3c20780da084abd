"""``digest feeds``: each feed's health; add, remove, check, import and export feeds."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import click
from rich.text import Text

from ..config import is_http_url
from ..errors import FeedError
from ..health import Condition, classify
from ..models import FeedSource, FeedState, Origin, Section
from ._app import (
    Cell,
    Context,
    chosen_format,
    format_option,
    iso,
    main,
    now,
    pass_context,
    plural,
    print_records,
    print_table,
    say,
    when,
)

_SECTION_CHOICE = click.Choice([section.value for section in Section])


#: The fields of each feed in the json, csv and plain listings, in their order.
FEED_FIELDS = (
    "name",
    "url",
    "section",
    "status",
    "http_status",
    "failures",
    "items",
    "last_success",
    "next_attempt",
    "avg_ms",
    "error",
)


@main.group(invoke_without_command=True)
@format_option
@click.pass_context
def feeds(ctx: click.Context, output_format: str | None) -> None:
    """Each feed's health, failing and stale feeds first; add, remove, check, import, export.

    Feeds come from the configuration file and from 'digest feeds add'. The json, csv and
    plain listings give each feed's name, url, section, status (failing, gone, never
    fetched, stale, ok or inactive), http_status, failures (in a row), items (stored),
    last_success and next_attempt (ISO 8601, UTC), avg_ms (response time) and error
    (the last one), in that order.
    """
    if ctx.invoked_subcommand is not None:
        if output_format is not None:
            raise click.UsageError("--format is for the list: digest feeds --format FORMAT")
        return
    context = ctx.find_object(Context)
    assert context is not None
    with context.store() as store:
        states = store.feed_states()
    moment = now()
    conditions = {feed.url: classify(feed, moment) for feed in states}
    ordered = sorted(
        states, key=lambda feed: (conditions[feed.url], -feed.consecutive_failures, feed.name)
    )
    output_format = chosen_format(output_format)
    if output_format != "table":
        records = [_record(feed, conditions[feed.url]) for feed in ordered]
        print_records(output_format, FEED_FIELDS, records)
        return
    print_table(
        ("Feed", "Section", "Status", "Fails", "Items", "Last success", "Avg ms", "Error"),
        (
            (
                feed.name,
                feed.source.section,
                _status_text(feed, conditions[feed.url]),
                str(feed.consecutive_failures),
                str(feed.stored_items),
                when(feed.last_success),
                f"{feed.mean_response_ms:.0f}" if feed.mean_response_ms is not None else "",
                feed.last_error or "",
            )
            for feed in ordered
        ),
    )


def _record(feed: FeedState, condition: Condition) -> dict[str, Cell]:
    return {
        "name": feed.name,
        "url": feed.url,
        "section": feed.source.section.value,
        "status": condition.name.lower().replace("_", " "),
        "http_status": feed.last_status,
        "failures": feed.consecutive_failures,
        "items": feed.stored_items,
        "last_success": iso(feed.last_success),
        "next_attempt": iso(feed.next_attempt),
        "avg_ms": round(feed.mean_response_ms) if feed.mean_response_ms is not None else None,
        "error": feed.last_error,
    }


def _status_text(feed: FeedState, condition: Condition) -> Text:
    match condition:
        case Condition.INACTIVE:
            return Text("inactive")
        case Condition.GONE:
            return Text("gone (410)", style="red")
        case Condition.FAILING:
            retry = f", retry {when(feed.next_attempt)}" if feed.next_attempt else ""
            return Text(f"failing ({feed.last_status or 'no response'}){retry}", style="red")
        case Condition.NEVER_FETCHED:
            return Text("never fetched")
        case Condition.STALE:
            return Text("stale", style="yellow")
        case Condition.OK:
            return Text(f"ok ({feed.last_status})")


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
def feeds_add(context: Context, url: str, section: str, name: str, weight: float) -> None:
    """Add the feed at URL, once it has been fetched and read as a feed."""
    from ..pipeline import check_feed

    url = url.strip()
    if not is_http_url(url):
        raise FeedError(url, "expected an http(s) URL")
    problem = check_feed(context.settings, url, now()).problem
    if problem is not None:
        raise FeedError(url, f"not added: {problem}")
    source = FeedSource(name.strip() or urlsplit(url).netloc, url, Section(section), weight)
    with context.store() as store:
        added = store.add_feed(source)
    say(f"Added {source.name} ({source.url})." if added else f"{url} is already a feed.")


@feeds.command("remove")
@click.argument("url")
@pass_context
def feeds_remove(context: Context, url: str) -> None:
    """Remove the feed at URL (one added with 'digest feeds add')."""
    with context.store() as store:
        origin = store.remove_feed(url.strip())
    if origin is None:
        raise FeedError(url, "not a feed (see 'digest feeds')")
    if origin is Origin.CONFIG:
        raise FeedError(url, f"listed in {context.config}: remove it there")
    say(f"Removed {url.strip()}.")


@feeds.command("check")
@click.argument("url")
@pass_context
def feeds_check(context: Context, url: str) -> None:
    """Fetch the feed at URL once and show what it holds (nothing is stored)."""
    from ..pipeline import check_feed

    check = check_feed(context.settings, url, now())
    result = check.result
    say(f"{url}: HTTP {result.status or '-'} in {result.elapsed * 1000:.0f} ms")
    if result.moved_to:
        say(f"  permanently moved to {result.moved_to}")
    if not result.ok or result.body is None:
        raise FeedError(url, result.error or "no body")
    say(
        f"  {len(result.body):,} bytes, {result.content_type or 'no Content-Type'}, "
        f"{len(check.items)} items"
    )
    if not check.items:
        hint = f"; the page links to: {', '.join(check.alternates)}" if check.alternates else ""
        raise FeedError(url, f"no entries found: not a feed, or an empty one{hint}")
    say(f"  newest item {when(max(item.published for item in check.items))}")
    for item in check.items[:5]:
        say(f"  - {item.title}")


@feeds.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--section", type=_SECTION_CHOICE, help="For feeds the file does not place.")
@pass_context
def feeds_import(context: Context, file: Path, section: str | None) -> None:
    """Add every feed of an OPML file (one bad entry imports nothing)."""
    from ..opml import read_opml

    sources = read_opml(file, Section(section) if section else None)
    with context.store() as store:
        added = sum(store.add_feed(source) for source in sources)
    say(f"Imported {plural(added, 'new feed')} of {len(sources)}.")


@feeds.command("export")
@pass_context
def feeds_export(context: Context) -> None:
    """Write every active feed as OPML to standard output."""
    from ..opml import write_opml

    with context.store() as store:
        sources = store.feed_sources()
    click.echo(write_opml(sources, context.settings.edition.title), nl=False)
