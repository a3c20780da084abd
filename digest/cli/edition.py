"""The daily job, whole or step by step, and the processes that serve it."""

from __future__ import annotations

import datetime as dt
from contextlib import ExitStack
from urllib.parse import urlsplit

import click

from ..errors import DigestError
from ..site import ARCHIVE_PATH
from ..window import edition_window
from ._app import Context, date_option, edition_date, main, now, pass_context, say

_FORCE_HELP = "Fetch feeds that are backing off too, and send even an edition under the floor."


@main.command()
@date_option
@click.option("--dry-run", is_flag=True, help="Fetch and build, but send nothing.")
@click.option("--force", is_flag=True, help=_FORCE_HELP)
@pass_context
def run(context: Context, date: dt.datetime | None, dry_run: bool, force: bool) -> None:
    """Fetch every feed, build the edition and send it.

    Exits 1 when nothing could be done (the edition under the floor is not sent), 3 when
    the edition went out but some feeds or messages failed.
    """
    from ..pipeline import run_edition
    from .output import edition_problem, print_step

    with context.store() as store:
        report = run_edition(
            context.settings,
            store,
            edition_date(context, date),
            now(),
            dry_run=dry_run,
            force=force,
            on_step=print_step,
        )
    if report.sent is None:
        say(f"Dry run: would send to {report.would_send} active subscribers.")
    problem = edition_problem(report)
    if problem is not None:
        raise problem


@main.command()
@click.argument("urls", metavar="[URL]...", nargs=-1)
@click.option("--force", is_flag=True, help="Fetch feeds that are backing off too.")
@pass_context
def fetch(context: Context, urls: tuple[str, ...], force: bool) -> None:
    """Fetch every due feed (or only the feeds at URL...) and store new items.

    Exits 1 when no feed could be fetched, 3 when some failed.
    """
    from ..intake import fetch_feeds, open_feed_records
    from .output import fetch_problem, print_fetch

    records = open_feed_records(context.settings)
    try:
        reports = fetch_feeds(context.settings, records, now(), force=force, only=urls)
    finally:
        records.close()
    print_fetch(reports)
    problem = fetch_problem(reports)
    if problem is not None:
        raise problem


@main.command()
@date_option
@pass_context
def build(context: Context, date: dt.datetime | None) -> None:
    """Build the edition from stored items."""
    from ..pipeline import build_edition
    from .output import print_build

    with context.store() as store:
        print_build(build_edition(context.settings, store, edition_date(context, date)))


@main.command()
@date_option
@click.option("--force", is_flag=True, help="Send even an edition under the floor.")
@click.option(
    "--resend-unknown",
    is_flag=True,
    help="Send again the messages whose answer was lost (they may arrive twice).",
)
@click.option(
    "--worker",
    is_flag=True,
    help="Be one of several senders sharing the edition, on any hosts (PostgreSQL).",
)
@click.option(
    "--lease",
    type=click.FloatRange(min=1),
    default=300,
    show_default=True,
    help="Seconds a worker holds what it claims, renewed as it works; a dead worker's "
    "messages go to the others after this long.",
)
@pass_context
def send(
    context: Context,
    date: dt.datetime | None,
    force: bool,
    resend_unknown: bool,
    worker: bool,
    lease: float,
) -> None:
    """Send the built edition to every active subscriber who has not had it.

    An edition with fewer than edition.min_stories stories, or built while most feeds
    were failing, is not sent without --force. A message whose answer was lost (the
    process was killed, the connection dropped after the message) is reported unknown and
    not sent again unless --resend-unknown. Exits 3 when some messages were not sent.

    With --worker, any number of processes share the edition's send ledger in the
    database: each claims batches under a lease, marks each message in flight in the
    ledger before it goes, and ends when the whole edition is settled.
    """
    from ..pipeline import send_edition
    from .output import print_send, send_problem, sending_progress

    with context.store() as store, sending_progress() as bar:
        report = send_edition(
            context.settings,
            store,
            edition_date(context, date),
            now(),
            force=force,
            resend_unknown=resend_unknown,
            lease=dt.timedelta(seconds=lease) if worker else None,
            on_total=bar.total,
            on_progress=bar.advance,
        )
    print_send(report)
    problem = send_problem(report)
    if problem is not None:
        raise problem


@main.command()
@click.argument("date", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD")
@pass_context
def sends(context: Context, date: dt.datetime) -> None:
    """The send ledger of the edition of DATE: how many messages are queued, sending, sent,
    deferred, failed, bounced or unknown, and each one that did not go out."""
    with context.store() as store:
        counts = store.delivery_counts(date.date())
        problems = store.problem_deliveries(date.date())
    if not counts:
        say(f"Nothing was sent or planned for the edition of {date:%Y-%m-%d}.")
        return
    order: tuple[str, ...] = (
        "queued",
        "claimed",
        "sending",
        "sent",
        "deferred",
        "failed",
        "bounced",
        "unknown",
    )
    order += ("cancelled",)
    # Only a send by workers has claimed messages, and only while it runs.
    shown = [status for status in order if status != "claimed" or counts.get(status)]
    summary = ", ".join(f"{counts.get(status, 0)} {status}" for status in shown)
    say(f"The edition of {date:%Y-%m-%d}: {summary}.")
    for recipient, status, error in problems:
        say(f"  {status} {recipient}: {error}" if error else f"  {status} {recipient}")


@main.command()
@click.option("--port", default=8025, show_default=True, help="Port on 127.0.0.1.")
@pass_context
def preview(context: Context, port: int) -> None:
    """Serve the latest edition at http://127.0.0.1:PORT/ for a browser."""
    import uvicorn

    from ..web import make_app

    with context.store() as store:
        say(f"Serving the latest edition at http://127.0.0.1:{port}/ (Ctrl-C stops)")
        uvicorn.run(
            make_app(context.settings, store), host="127.0.0.1", port=port, log_level="warning"
        )


@main.command()
@pass_context
def demo(context: Context) -> None:
    """Run the whole job on the bundled sample feeds and subscribers.

    Serves the sample feeds on 127.0.0.1 (dated as if fresh), imports the sample
    subscribers, then fetches, builds and sends today's edition into the outbox.
    """
    from ..demo import SAMPLES_EDITION_END, serve_samples
    from ..pipeline import run_edition
    from ..subscribers import read_subscribers
    from .output import edition_problem, print_step

    settings = context.settings
    samples = settings.config_path.resolve().parent
    port = urlsplit(settings.feeds[0].url).port or 80
    date = edition_date(context, None)
    end = edition_window(date, settings.edition.send_at, settings.edition.timezone)[1]
    with context.store() as store:
        people = read_subscribers(samples / "subscribers.csv")
        # Sample addresses: there is nobody to confirm them, and the demo mails them.
        answers = store.enrol(people, now(), confirmed=True)
        added = sum(1 for answer in answers if answer.new)
        say(f"Sample subscribers: {added} added, {len(store.subscribers())} in all.")
        with ExitStack() as stack:
            try:
                stack.enter_context(
                    serve_samples(samples / "feeds", port, offset=end - SAMPLES_EDITION_END)
                )
            except OSError as exc:
                raise DigestError(
                    f"cannot serve the sample feeds on 127.0.0.1:{port}: {exc.strerror}"
                ) from None
            # The demo serves the samples itself: a feed backing off from an earlier run
            # (samples not served then) is up now.
            report = run_edition(settings, store, date, now(), refetch=True, on_step=print_step)
    problem = edition_problem(report)
    if problem is not None:
        raise problem
    destination = report.sent.destination if report.sent else settings.outbox
    say(
        f"\nThe emails: {destination}/*.eml (open them with any mail client)."
        f"\nThe web edition: run\n  .venv/bin/digest --config {context.config} preview"
        f"\nthen open {settings.edition.site_url}/ in a browser "
        f"(the archive is at {settings.edition.site_url}{ARCHIVE_PATH})."
    )
