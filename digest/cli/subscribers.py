"""``digest subscribers``: add, list, remove, import and export the people who get mail."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from ..addresses import normalize_address
from ..errors import AddressError
from ..models import Subscriber
from ..subscribers import parse_watchlist, read_subscribers, write_subscribers
from ._app import Context, console, main, now, pass_context, plural


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


@subscribers.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include unsubscribed addresses.")
@pass_context
def subscribers_list(context: Context, show_all: bool) -> None:
    """List subscribers."""
    with context.store() as store:
        people = store.subscribers(active_only=not show_all)
    table = Table("Email", "Name", "Status", "Watchlist")
    for person in people:
        status = "active" if person.active else "unsubscribed"
        table.add_row(person.email, person.name, status, " ".join(person.watchlist))
    console.print(table)
    console.print(f"{plural(len(people), 'subscriber')}.")


@subscribers.command("remove")
@click.argument("email")
@pass_context
def subscribers_remove(context: Context, email: str) -> None:
    """Remove EMAIL (in any letter case) and its history."""
    with context.store() as store:
        removed = store.remove_subscriber(email)
    if removed is None:
        raise AddressError(f"{email.strip()}: not a subscriber")
    console.print(f"Removed {removed}.")


@subscribers.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@pass_context
def subscribers_import(context: Context, file: Path) -> None:
    """Import subscribers from a CSV file with an 'email' column (and optionally 'name').

    Every row is checked first; one bad address imports nothing.
    """
    people = read_subscribers(file)
    with context.store() as store:
        added = sum(store.add_subscriber(person, now()) for person in people)
    console.print(f"Imported {plural(added, 'new subscriber')}.")


@subscribers.command("export")
@pass_context
def subscribers_export(context: Context) -> None:
    """Write every subscriber as CSV to standard output."""
    with context.store() as store:
        people = store.subscribers()
    write_subscribers(people, sys.stdout)
