"""``digest subscribers``: add, list, show, remove, import and export the people who get mail.

What ``add`` and ``import`` may do to an address is ``digest.enrolment``'s to decide (a new one
is pending until its owner confirms, unless ``--confirmed``; an unsubscribed, bounced or
complained one is never subscribed again); these commands say what it decided and mail the
confirmations it asks for.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..addresses import normalize_address
from ..enrolment import Enrolment, Entry, Outcome
from ..errors import AddressError, PartialError
from ..lifecycle import State
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
    when,
)

if TYPE_CHECKING:
    from ..store import Store

UPDATE_HELP = "Change the name and watchlist of an address already there (never resubscribes)."
CONFIRMED_HELP = (
    "Add new addresses as active: you vouch that their owners asked for the edition. Without "
    "it they are pending, and get editions once they follow the confirmation link mailed now."
)


@main.group()
def subscribers() -> None:
    """Add, list, show, remove, import and export subscribers."""


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="How to greet them.")
@click.option("--watch", default="", help="Tickers and coins to lead their email: NVDA,BTC.")
@click.option("--update", is_flag=True, help=UPDATE_HELP)
@click.option("--confirmed", is_flag=True, help=CONFIRMED_HELP)
@pass_context
def subscribers_add(
    context: Context, email: str, name: str, watch: str, update: bool, confirmed: bool
) -> None:
    """Subscribe EMAIL; with --update, change the name or watchlist of one already there.

    A new address is pending, and is mailed a link to confirm its subscription, unless
    --confirmed. An address that unsubscribed, bounced or complained stays so: only its
    owner can subscribe again.
    """
    address = normalize_address(email)
    watchlist = parse_watchlist(watch)
    with context.store() as store:
        (answer,) = store.enrol(
            [Subscriber(address, name.strip(), True, watchlist)],
            now(),
            update=update,
            confirmed=confirmed,
        )
        say(_add_result(answer))
        _mail_confirmations(context, store, [answer])


def _add_result(answer: Enrolment) -> str:
    updated = f"; updated its {_and(answer.changed)}" if answer.changed else ""
    if answer.outcome is Outcome.ADDED:
        return f"Subscribed {answer.email}."
    if answer.outcome is Outcome.ADDED_PENDING:
        return (
            f"Added {answer.email}, pending: it gets editions once its owner follows the "
            "confirmation link."
        )
    if answer.outcome is Outcome.CONFIRMED:
        return f"Subscribed {answer.email}, which was waiting for its confirmation{updated}."
    if answer.outcome is Outcome.STILL_PENDING:
        return f"{answer.email} is still waiting for its confirmation{updated}."
    if answer.outcome is Outcome.SKIPPED_SUPPRESSED:
        return (
            f"Skipped {answer.email}: {_suppressed(answer)}{updated}; "
            "only they can subscribe again."
        )
    if answer.outcome is Outcome.UPDATED:
        return f"{answer.email} is already subscribed; updated its {_and(answer.changed)}."
    hint = f" (pass --update to change its {_and(answer.ignored)})" if answer.ignored else ""
    return f"{answer.email} is already subscribed; nothing changed{hint}."


def _suppressed(answer: Enrolment) -> str:
    since = answer.since
    return str(answer.state) + (f" on {since:%Y-%m-%d}" if since is not None else "")


def _and(details: tuple[str, ...]) -> str:
    return " and ".join(details)


def _mail_confirmations(context: Context, store: Store, answers: Sequence[Enrolment]) -> None:
    """Mail the confirmations ``answers`` ask for, and say how it went."""
    notices = [answer.notice for answer in answers if answer.notice is not None]
    if not notices:
        return
    from ..pipeline import send_notices

    report = send_notices(context.settings, store, notices, now())
    if report.sent:
        say(f"Mailed {plural(len(report.sent), 'confirmation link')} via {report.destination}.")
    for _, reason in report.failed:
        say(f"  not sent: {reason}")
    if report.failed:
        raise PartialError(
            f"partial: {len(report.failed)} of {plural(len(notices), 'confirmation link')} "
            "not sent; the same command sends them again"
        )


#: The fields of each subscriber in the json, csv and plain listings: export's columns.
SUBSCRIBER_FIELDS = ("email", "name", "status", "watch")


@subscribers.command("list")
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Include addresses that get no mail: pending, unsubscribed, bounced, complained.",
)
@format_option
@pass_context
def subscribers_list(context: Context, show_all: bool, output_format: str | None) -> None:
    """List subscribers: email, name, status and watch.

    The status is active, pending (waiting for its owner's confirmation), unsubscribed,
    bounced or complained; only active addresses get editions, and only they are listed
    without --all. The csv listing has the columns of 'digest subscribers export'. The count
    goes below the table, and to standard error with the other formats.
    """
    with context.store() as store:
        records = store.records(active_only=not show_all)
    output_format = chosen_format(output_format)
    count = f"{plural(len(records), 'subscriber')}."
    if output_format != "table":
        rows: list[dict[str, Cell]] = [
            {
                "email": record.subscriber.email,
                "name": record.subscriber.name,
                "status": record.state.value,
                "watch": list(record.subscriber.watchlist),
            }
            for record in records
        ]
        print_records(output_format, SUBSCRIBER_FIELDS, rows)
        click.echo(count, err=True)
        return
    print_table(
        ("Email", "Name", "Status", "Watchlist"),
        (
            (
                record.subscriber.email,
                record.subscriber.name,
                record.state.value,
                " ".join(record.subscriber.watchlist),
            )
            for record in records
        ),
    )
    console.print(count)


@subscribers.command("show")
@click.argument("email")
@pass_context
def subscribers_show(context: Context, email: str) -> None:
    """Show EMAIL (in any letter case): its state, the history of its state (when, which,
    why) and its deliveries (edition, status, attempts, when sent, error), newest first."""
    with context.store() as store:
        report = store.report(email)
    if report is None:
        raise AddressError(f"{email.strip()}: not a subscriber")
    record = report.record
    person = record.subscriber
    say(person.email + (f" ({person.name})" if person.name else ""))
    say(f"State: {record.state}" + (f" since {when(record.since)}" if record.since else ""))
    say(f"Watchlist: {' '.join(person.watchlist) or 'none'}")
    say("History:")
    print_table(
        ("When", "State", "Why"),
        ((when(change.at), change.state.value, change.why) for change in report.history),
    )
    if not report.deliveries:
        say("Deliveries: none yet.")
        return
    say("Deliveries:")
    print_table(
        ("Edition", "Status", "Attempts", "Sent", "Error"),
        (
            (
                delivery.edition.isoformat(),
                delivery.status,
                str(delivery.attempts),
                when(delivery.sent_at) if delivery.sent_at else "",
                delivery.error or "",
            )
            for delivery in report.deliveries
        ),
    )


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
@click.option("--confirmed", is_flag=True, help=CONFIRMED_HELP)
@pass_context
def subscribers_import(context: Context, file: Path, update: bool, confirmed: bool) -> None:
    """Import subscribers from a CSV file: an 'email' column, optionally 'name', 'status'
    and 'watch', as 'digest subscribers export' writes.

    'watch' holds tickers and coins separated by commas ("NVDA,BTC"), whose stories lead
    that subscriber's email. Every row is checked first; one bad address or symbol imports
    nothing. New addresses are pending, each mailed a link to confirm, unless --confirmed
    (a 'pending' status stays pending all the same); a status of unsubscribed, bounced or
    complained adds the address so. Addresses already there are left as they are unless
    --update; an unsubscribed, bounced or complained one is never subscribed again.
    """
    entries: list[Entry] = read_subscribers(file)
    with context.store() as store:
        answers = store.enrol(entries, now(), update=update, confirmed=confirmed)
        _print_import(answers)
        _mail_confirmations(context, store, answers)


def _print_import(answers: Sequence[Enrolment]) -> None:
    def count(*outcomes: Outcome) -> int:
        return sum(1 for answer in answers if answer.outcome in outcomes)

    added = [answer for answer in answers if answer.new]
    console.print(f"Imported {plural(len(added), 'new subscriber')}.")
    if pending := count(Outcome.ADDED_PENDING):
        say(f"  {pending} of them pending, until they follow the confirmation link")
    for state in State:
        if left := sum(
            1 for a in added if a.outcome is Outcome.ADDED_SUPPRESSED and a.state is state
        ):
            say(f"  {left} of them {state}, as the file says")
    if confirmed := count(Outcome.CONFIRMED):
        say(f"  {confirmed} waiting for their confirmation, subscribed now")
    if still := count(Outcome.STILL_PENDING):
        say(f"  {still} still waiting for their confirmation")
    if count(Outcome.UPDATED):
        say(f"  {count(Outcome.UPDATED)} already subscribed, updated")
    unchanged = [answer for answer in answers if answer.outcome is Outcome.UNCHANGED]
    if unchanged:
        hint = " (pass --update to change them)" if any(a.ignored for a in unchanged) else ""
        say(f"  {len(unchanged)} already subscribed, unchanged{hint}")
    for answer in answers:
        if answer.outcome is Outcome.SKIPPED_SUPPRESSED:
            updated = f"; updated its {_and(answer.changed)}" if answer.changed else ""
            say(f"  skipped {answer.email}: {_suppressed(answer)}{updated}")


@subscribers.command("export")
@pass_context
def subscribers_export(context: Context) -> None:
    """Write every subscriber, those who get no mail too, as CSV to standard output.

    The columns are email, name, status (active, pending, unsubscribed, bounced or
    complained) and watch.
    """
    with context.store() as store:
        records = store.records()
    write_subscribers(records, sys.stdout)
