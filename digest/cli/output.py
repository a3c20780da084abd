"""How the daily job's reports read in a terminal, and what its exit status says.

Feed text (titles, names, servers' error lines) is printed as it is, never read as markup.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from rich.text import Text

from ..errors import DigestError, PartialError
from ..intake import FeedReport
from ..models import Digest

if TYPE_CHECKING:
    # Only names here: loading the pipeline loads the whole send stack, which a fetch
    # does not need.
    from ..pipeline import EditionReport, SendReport, Step
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
    waited = max((report.waited for report in fetched), default=0.0)
    if waited >= 1:
        say(
            f"  waited up to {waited:.1f} s for a free connection to a busy host"
            " (fetch.per_host at a time)"
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
    shown = [status for status in _SUMMARY if report.counts.get(status)]
    if shown or report.sent:
        summary = ", ".join(f"{report.counts.get(status, 0)} {status}" for status in _SUMMARY)
        say(f"  {summary}; {report.rate:,.0f} messages a second")
    if report.recovered_unknown:
        say(
            f"  {plural(report.recovered_unknown, 'message')} of an earlier run that stopped"
            " mid-send may have arrived: unknown, not sent again (--resend-unknown sends them)"
        )
    for address in report.bounced_for_good:
        say(f"  {address} keeps bouncing: no more mail to it")
    for delivery in report.problems:
        line = f" {delivery.recipient}: {delivery.error}"
        console.print(Text.assemble("  ", ("not sent", "red"), line))


_SUMMARY = ("sent", "deferred", "failed", "bounced", "unknown", "cancelled")


def print_step(step: Step) -> None:
    """One step of ``run_edition`` as it finishes."""
    from ..pipeline import SendReport

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
    """What a send's exit status says: every message refused, the server gone or a worker's
    lease lost (1), some messages not sent (3), or None."""
    if report.server_gone:
        return DigestError(
            f"{report.server_gone}: the send stopped after {plural(report.sent, 'message')};"
            " the rest is queued: 'digest send' goes on"
        )
    if report.lease_lost:
        return DigestError(
            f"{report.lease_lost}: this worker stopped after {plural(report.sent, 'message')};"
            " the other workers send the rest"
        )
    if not report.failed:
        return None
    kinds = ", ".join(
        f"{report.counts[status]} {status}"
        for status in _SUMMARY[1:]
        if report.counts.get(status) and status != "cancelled"
    )
    retry = "; a later 'digest send' tries the deferred again" if "deferred" in kinds else ""
    if not report.sent:
        return DigestError(f"{plural(report.failed, 'message')} not sent ({kinds}){retry}")
    total = report.failed + report.sent
    return PartialError(f"partial: {report.failed} of {total} messages not sent ({kinds}){retry}")


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


class SendBar:
    """What a send tells its progress bar: how many messages are due, then each one done."""

    def __init__(self, total: Callable[[int], None], advance: Callable[[int], None]) -> None:
        self.total = total
        self.advance = advance


@contextlib.contextmanager
def sending_progress() -> Iterator[SendBar]:
    """A progress bar for a send on a terminal (nothing when piped)."""
    if not console.is_terminal:
        yield SendBar(lambda total: None, lambda count: None)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TimeRemainingColumn,
    )

    columns = (BarColumn(), MofNCompleteColumn(), TaskProgressColumn(), TimeRemainingColumn())
    with Progress("Sending", *columns, console=console, transient=True) as progress:
        task = progress.add_task("send", total=None)
        yield SendBar(
            lambda total: progress.update(task, total=total),
            lambda count: progress.advance(task, count),
        )
