"""How the daily job's reports read in a terminal, and what its exit status says.

Feed text (titles, names, servers' error lines) is printed as it is, never read as markup.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from ..errors import DigestError, PartialError
from ..models import Digest
from ..pipeline import EditionReport, FeedReport, SendReport, Step
from ._app import console, plural, say, when

# Imported by the commands that run the pipeline, never at start-up.


def print_fetch(reports: Sequence[FeedReport]) -> None:
    postponed = [report for report in reports if report.postponed_until is not None]
    fetched = [report for report in reports if report.postponed_until is None]
    failed = [report for report in fetched if report.error]
    items = sum(report.items for report in fetched)
    new = sum(report.new_items for report in fetched)
    console.print(
        f"Fetched {len(fetched) - len(failed)}/{len(fetched)} feeds: {items} items, {new} new."
    )
    for report in failed:
        console.print(
            Text.assemble("  ", ("failed", "red"), f" {report.name} ({report.url}): {report.error}")
        )
    for report in postponed:
        say(
            f"  postponed {report.name} ({report.url}) until "
            f"{when(report.postponed_until)} (--force fetches it now)"
        )


def print_build(digest: Digest) -> None:
    stories = [*digest.top, *(story for _, stories in digest.sections for story in stories)]
    shared = sum(1 for story in stories if len(story.outlets) > 1)
    console.print(
        f"Built the edition of {digest.date}: {len(stories)} stories, "
        f"{shared} covered by two or more outlets."
    )


def print_send(report: SendReport) -> None:
    say(
        f"Sent the edition of {report.date} to {report.sent} subscribers"
        f" ({report.already_sent} had it already) via {report.destination}."
    )
    for delivery in report.deliveries:
        if not delivery.sent:
            line = f" {delivery.recipient}: {delivery.error}"
            console.print(Text.assemble("  ", ("not sent", "red"), line))


def print_step(step: Step) -> None:
    """One step of ``run_edition`` as it finishes."""
    if isinstance(step, Digest):
        print_build(step)
    elif isinstance(step, SendReport):
        print_send(step)
    else:
        print_fetch(step)


def fetch_problem(reports: Sequence[FeedReport]) -> DigestError | None:
    """What a fetch's exit status says: nothing fetched (1), some feeds failed (3), or None."""
    fetched = [report for report in reports if report.postponed_until is None]
    failed = [report for report in fetched if report.error]
    if fetched and len(failed) == len(fetched):
        return DigestError(f"no feed could be fetched ({plural(len(failed), 'failure')})")
    if failed:
        return PartialError(f"partial: {len(failed)} of {len(fetched)} feeds failed")
    return None


def send_problem(report: SendReport) -> DigestError | None:
    """What a send's exit status says: every message refused (1), some (3), or None."""
    if not report.failed:
        return None
    retry = "'digest send' retries them"
    if not report.sent:
        return DigestError(f"{plural(report.failed, 'message')} not sent; {retry}")
    return PartialError(
        f"partial: {report.failed} of {report.failed + report.sent} messages not sent; {retry}"
    )


def edition_problem(report: EditionReport) -> DigestError | None:
    """The daily job's exit status: partial when any feed or message failed."""
    problems = [fetch_problem(report.fetched)]
    if report.sent is not None:
        problems.append(send_problem(report.sent))
    found = [problem for problem in problems if problem is not None]
    if not found:
        return None
    if report.sent is not None and report.sent.sent:
        # The edition went out: whatever failed on the way, the run is partly done.
        said = (str(problem).removeprefix("partial: ") for problem in found)
        return PartialError("partial: " + "; ".join(said))
    return found[-1]
