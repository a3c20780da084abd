"""``digest subscribers``: add, list, remove, import and export the people who get mail."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import AddressError
from ..models import Subscriber
from ..subscribers import normalize_address, parse_watchlist, read_subscribers, write_subscribers
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
)


@main.group()
def subscribers() -> None:
    """Add, list, remove, import and export subscribers."""


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="How to greet them.")
@click.option("--watch", default="", help="Tickers and coins to lead their email: NVDA,BTC.")
@pass_context
def subscribers_add(context: Context, email: str, name: str, watch: str) -> None:
    """Subscribe EMAIL (or resubscribe it, or change its watchlist)."""
    address = normalize_address(email)
    watchlist = parse_watchlist(watch)
    with context.store() as store:
        added = store.add_subscriber(Subscriber(address, name.strip(), True, watchlist), now())
    console.print(f"Subscribed {address}." if added else f"{address} is already subscribed.")


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
    """Remove EMAIL and its history."""
    with context.store() as store:
        removed = store.remove_subscriber(email.strip())
    if not removed:
        raise AddressError(f"{email}: not a subscriber")
    console.print(f"Removed {email.strip()}.")


@subscribers.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@pass_context
def subscribers_import(context: Context, file: Path) -> None:
    """Import subscribers from a CSV file: an 'email' column, optionally 'name' and 'watch'.

    'watch' holds tickers and coins separated by commas ("NVDA,BTC"), whose stories lead
    that subscriber's email. 'digest subscribers export' writes such a file. Every row is
    checked first; one bad address or symbol imports nothing.
    """
    people = read_subscribers(file)
    with context.store() as store:
        added = sum(store.add_subscriber(person, now()) for person in people)
    console.print(f"Imported {plural(added, 'new subscriber')}.")


@subscribers.command("export")
@pass_context
def subscribers_export(context: Context) -> None:
    """Write every subscriber, unsubscribed ones too, as CSV to standard output.

    The columns are email, name, status (active or unsubscribed) and watch.
    """
    with context.store() as store:
        people = store.subscribers()
    write_subscribers(people, sys.stdout)
