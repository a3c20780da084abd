"""The schedule ``digest serve`` keeps: fetch through the day, send the edition at send time."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .config import Settings
from .errors import DigestError
from .pipeline import FeedReport, SendReport, Step, fetch_feeds, run_edition, today
from .store import Store

log = logging.getLogger("digest.schedule")

#: Feeds are fetched this often between editions, so a slow or flaky feed has many chances.
FETCH_EVERY = dt.timedelta(minutes=30)


def _log_fetch(reports: Sequence[FeedReport]) -> None:
    for report in reports:
        if report.error:
            log.warning("feed %s failed: %s", report.url, report.error)


def fetch_job(settings: Settings, store: Store) -> None:
    _log_fetch(fetch_feeds(settings, store, dt.datetime.now(dt.UTC)))


def edition_job(settings: Settings, store: Store) -> None:
    """Fetch once more, then build and send today's edition."""

    def log_step(step: Step) -> None:
        if isinstance(step, SendReport):
            log.info("sent the edition of %s to %d subscribers", step.date, step.sent)
        elif isinstance(step, tuple):
            _log_fetch(step)

    now = dt.datetime.now(dt.UTC)
    try:
        run_edition(settings, store, today(settings, now), now, on_step=log_step)
    except DigestError as exc:
        log.error("the edition was not sent: %s", exc)


def make_scheduler(settings: Settings, store: Store) -> BackgroundScheduler:
    """A scheduler (not started) with the fetch and edition jobs."""
    scheduler = BackgroundScheduler(timezone=settings.edition.timezone)
    scheduler.add_job(
        fetch_job,
        IntervalTrigger(seconds=FETCH_EVERY.total_seconds()),
        args=(settings, store),
        id="fetch",
        max_instances=1,
        coalesce=True,
    )
    send_at = settings.edition.send_at
    scheduler.add_job(
        edition_job,
        CronTrigger(hour=send_at.hour, minute=send_at.minute, timezone=settings.edition.timezone),
        args=(settings, store),
        id="edition",
        max_instances=1,
        coalesce=True,
        # A machine that was down at send time still sends within the hour.
        misfire_grace_time=3600,
    )
    return scheduler
