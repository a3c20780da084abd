"""``digest subscribers``: add, list, remove, import and export the people who get mail.

What ``add`` and ``import`` may do to an address already there is ``digest.enrolment``'s to
decide (an unsubscribed one is never subscribed again); these commands say what it decided.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..addresses import normalize_address
from ..enrolment import Enrolment, Outcome
from ..errors import AddressError
from ..models import Subscriber
from ..subscribers import parse_watchlist, read_subscribers, write_subscribers
from ._app import (
    Cell,
    Context,
    chosen_format,
    console,
    format_option,
    main,
    now,
    pass_context,
    plural,
    print_records,
    print_table,
    say,
)

UPDATE_HELP = "Change the name and watchlist of an address already there (never resubscribes)."


@main.group()
def subscribers() -> None:
    """Add, list, remove, import and export subscribers."""


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="How to greet them.")
@click.option("--watch", default="", help="Tickers and coins to lead their email: NVDA,BTC.")
@click.option("--update", is_flag=True, help=UPDATE_HELP)
@pass_context
def subscribers_add(context: Context, email: str, name: str, watch: str, update: bool) -> None:
    """Subscribe EMAIL; with --update, change the name or watchlist of one already there.

    An address that unsubscribed stays unsubscribed: only its owner can subscribe again.
    """
    address = normalize_address(email)
    watchlist = parse_watchlist(watch)
    with context.store() as store:
        (answer,) = store.enrol(
            [Subscriber(address, name.strip(), True, watchlist)], now(), update=update
        )
    say(_add_result(answer))


def _add_result(answer: Enrolment) -> str:
    if answer.outcome is Outcome.ADDED:
        return f"Subscribed {answer.email}."
    if answer.outcome is Outcome.SKIPPED_UNSUBSCRIBED:
        updated = f"; updated its {_and(answer.changed)}" if answer.changed else ""
        return (
            f"Skipped {answer.email}: {_unsubscribed(answer)}{updated}; "
            "only they can subscribe again."
        )
    if answer.outcome is Outcome.UPDATED:
        return f"{answer.email} is already subscribed; updated its {_and(answer.changed)}."
    hint = f" (pass --update to change its {_and(answer.ignored)})" if answer.ignored else ""
    return f"{answer.email} is already subscribed; nothing changed{hint}."


def _unsubscribed(answer: Enrolment) -> str:
    when = answer.unsubscribed_at
    return "unsubscribed" + (f" on {when:%Y-%m-%d}" if when is not None else "")


def _and(details: tuple[str, ...]) -> str:
    return " and ".join(details)


#: The fields of each subscriber in the json, csv and plain listings: export's columns.
SUBSCRIBER_FIELDS = ("email", "name", "status", "watch")


@subscribers.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include unsubscribed addresses.")
@format_option
@pass_context
def subscribers_list(context: Context, show_all: bool, output_format: str | None) -> None:
    """List subscribers: email, name, status (active or unsubscribed) and watch.

    The csv listing has the columns of 'digest subscribers export'. The count goes below
    the table, and to standard error with the other formats.
    """
    with context.store() as store:
        people = store.subscribers(active_only=not show_all)
    output_format = chosen_format(output_format)
    count = f"{plural(len(people), 'subscriber')}."
    if output_format != "table":
        records: list[dict[str, Cell]] = [
            {
                "email": person.email,
                "name": person.name,
                "status": "active" if person.active else "unsubscribed",
                "watch": list(person.watchlist),
            }
            for person in people
        ]
        print_records(output_format, SUBSCRIBER_FIELDS, records)
        click.echo(count, err=True)
        return
    print_table(
        ("Email", "Name", "Status", "Watchlist"),
        (
            (
                person.email,
                person.name,
                "active" if person.active else "unsubscribed",
                " ".join(person.watchlist),
            )
            for person in people
        ),
    )
    console.print(count)


@subscribers.command("remove")
@click.argument("email")
@pass_context
def subscribers_remove(context: Context, email: str) -> None:
    """Remove EMAIL (in any letter case) and its history."""
    with context.store() as store:
        removed = store.remove_subscriber(email)
    if removed is None:
        raise AddressError(f"{email.strip()}: not a subscriber")
    say(f"Removed {removed}.")


@subscribers.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--update", is_flag=True, help=UPDATE_HELP)
@pass_context
def subscribers_import(context: Context, file: Path, update: bool) -> None:
    """Import subscribers from a CSV file: an 'email' column, optionally 'name', 'status'
    and 'watch', as 'digest subscribers export' writes.

    'watch' holds tickers and coins separated by commas ("NVDA,BTC"), whose stories lead
    that subscriber's email. Every row is checked first; one bad address or symbol imports
    nothing. Addresses already there are left as they are unless --update; an unsubscribed
    one is never subscribed again.
    """
    people = read_subscribers(file)
    with context.store() as store:
        answers = store.enrol(people, now(), update=update)

    def count(*outcomes: Outcome) -> int:
        return sum(1 for answer in answers if answer.outcome in outcomes)

    console.print(
        f"Imported {plural(count(Outcome.ADDED, Outcome.ADDED_UNSUBSCRIBED), 'new subscriber')}."
    )
    if left := count(Outcome.ADDED_UNSUBSCRIBED):
        say(f"  {left} of them unsubscribed, as the file says")
    if count(Outcome.UPDATED):
        say(f"  {count(Outcome.UPDATED)} already subscribed, updated")
    unchanged = [answer for answer in answers if answer.outcome is Outcome.UNCHANGED]
    if unchanged:
        hint = " (pass --update to change them)" if any(a.ignored for a in unchanged) else ""
        say(f"  {len(unchanged)} already subscribed, unchanged{hint}")
    for answer in answers:
        if answer.outcome is Outcome.SKIPPED_UNSUBSCRIBED:
            updated = f"; updated its {_and(answer.changed)}" if answer.changed else ""
            say(f"  skipped {answer.email}: {_unsubscribed(answer)}{updated}")


@subscribers.command("export")
@pass_context
def subscribers_export(context: Context) -> None:
    """Write every subscriber, unsubscribed ones too, as CSV to standard output.

    The columns are email, name, status (active or unsubscribed) and watch.
    """
    with context.store() as store:
        people = store.subscribers()
    write_subscribers(people, sys.stdout)
