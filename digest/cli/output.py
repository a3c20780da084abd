"""How the daily job's reports read in a terminal."""

from __future__ import annotations

from ..errors import DigestError
from ..models import Digest
from ..pipeline import FeedReport, SendReport, Step
from ._app import console, when

# Imported by the commands that run the pipeline, never at start-up.


def print_fetch(reports: list[FeedReport] | tuple[FeedReport, ...]) -> None:
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
            f"  postponed {report.name} ({report.url}) until {when(report.postponed_until)}"
        )


def print_build(digest: Digest) -> None:
    stories = [*digest.top, *(story for _, stories in digest.sections for story in stories)]
    shared = sum(1 for story in stories if len(story.outlets) > 1)
    console.print(
        f"Built the edition of {digest.date}: {len(stories)} stories, "
        f"{shared} covered by two or more outlets."
    )


def print_send(report: SendReport) -> None:
    """The send's summary; refused messages make it an error (exit 1)."""
    console.print(
        f"Sent the edition of {report.date} to {report.sent} subscribers"
        f" ({report.already_sent} had it already) via {report.destination}."
    )
    for delivery in report.deliveries:
        if not delivery.sent:
            console.print(f"  [red]not sent[/red] {delivery.recipient}: {delivery.error}")
    if report.failed:
        raise DigestError(f"{report.failed} messages were refused; 'digest send' retries them")


def print_step(step: Step) -> None:
    """One step of ``run_edition`` as it finishes."""
    if isinstance(step, Digest):
        print_build(step)
    elif isinstance(step, SendReport):
        print_send(step)
    else:
        print_fetch(step)
