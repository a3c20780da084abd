"""The jobs ``digest serve`` runs: fetch all day, send each edition on time, retry what was
deferred, and make sure only one process sends.

When things happen is decided in ``timetable`` (pure); this module only acts on it:

- fetch at start, then every ``fetch.fetch_every`` (jittered; each feed's own backoff and the
  servers' Retry-After still decide which feeds are due);
- send at ``send_at`` in ``timezone`` on the edition days; a send missed while the service
  was down is caught up on return within ``catch_up``, else skipped with a log line. The
  ledger decides what is left to send, so nothing goes twice;
- retry the deferred and unknown deliveries of the last day every ``RETRY_EVERY``;
- hold the sender lease (``leases`` table): a second ``serve`` on the same database sends
  nothing until the first stops renewing it.

The jobs are rows in the same database (``scheduler_jobs``, APScheduler's SQLAlchemy job
store), each naming its function by module path and the lease holder it runs under. Only the
lease holder runs the scheduler over them; a standby only polls the lease. So an edition's
next run time survives a restart or a takeover: the new holder finds a run time that passed
while nobody held the lease, and catches that send up or skips it (``catch_up``).

``Service.shutdown`` stops taking work, lets the message in flight finish and its answer
reach the ledger, and gives the lease back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .config import Settings
from .errors import DigestError
from .ledger import Status
from .models import Timetable
from .pipeline import (
    FeedReport,
    SendReport,
    build_edition,
    embed_new_titles,
    fetch_feeds,
    send_edition,
)
from .store import Store
from .timetable import (
    describe,
    edition_of,
    fetch_jitter,
    missed_edition,
    next_send,
    previous_send,
    send_time,
)

log = logging.getLogger("digest.schedule")

#: The lease that lets one process send.
SENDER_LEASE = "sender"
#: A holder that has not renewed for this long is taken to be gone.
LEASE_TTL = dt.timedelta(seconds=60)
RENEW_EVERY = dt.timedelta(seconds=15)
#: Deferred and unknown deliveries are tried again this often, for editions this recent.
RETRY_EVERY = dt.timedelta(minutes=15)
RETRY_WITHIN = dt.timedelta(hours=24)
#: How long a stop waits for the message in flight (SMTP answers within this or is lost).
STOP_WAIT = 8.0

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SendTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler ships no type hints
    """APScheduler's view of ``timetable.next_send``: each send time in turn."""

    def __init__(self, timetable: Timetable) -> None:
        self.timetable = timetable

    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime:
        return next_send(previous_fire_time or now, self.timetable)

    def __str__(self) -> str:
        return describe(self.timetable)


def summarize_fetch(reports: Sequence[FeedReport], seconds: float) -> str:
    """One line for a fetch cycle."""
    postponed = sum(1 for report in reports if report.postponed_until is not None)
    failed = sum(1 for report in reports if report.error)
    fetched = len(reports) - postponed
    new = sum(report.new_items for report in reports)
    return (
        f"fetched {fetched} feeds in {seconds:.1f} s: {new} new items, {failed} failed, "
        f"{postponed} not due"
    )


def summarize_send(report: SendReport) -> str:
    """One line for a send of an edition."""
    order = (Status.SENT, Status.DEFERRED, Status.FAILED, Status.BOUNCED, Status.UNKNOWN)
    counts = ", ".join(f"{report.counts.get(status, 0)} {status}" for status in order)
    line = (
        f"the edition of {report.date}: {counts} in {report.elapsed:.1f} s "
        f"({report.already_sent} sent before) to {report.destination}"
    )
    if report.server_gone:
        line += f"; stopped: {report.server_gone}"
    return line


def ledger_done(store: Store, date: dt.date) -> bool:
    """Whether the edition of ``date`` has gone out and has nothing queued or in flight."""
    if not store.edition_is_sent(date):
        return False
    counts = store.delivery_counts(date)
    return not counts.get(Status.QUEUED) and not counts.get(Status.SENDING)


def make_holder() -> str:
    """This process's name in the leases table."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


#: The jobs' functions, by module path: the job store keeps them by this name, not by object.
FETCH_JOB = "digest.schedule:fetch_job"
EDITION_JOB = "digest.schedule:edition_job"
RETRY_JOB = "digest.schedule:retry_job"
CATCH_UP_JOB = "digest.schedule:catch_up_job"

#: The services of this process that hold the sender lease, by holder name: a job row names
#: its holder, and runs only in the process (and Service) that holds the lease under it.
_HOLDERS: dict[str, Service] = {}


def _holding(holder: str) -> Service | None:
    service = _HOLDERS.get(holder)
    if service is None or not service.sender or service.stop.is_set():
        return None
    return service


def fetch_job(holder: str) -> None:
    """The fetch job: fetch the due feeds."""
    if (service := _holding(holder)) is not None:
        service.fetch()


def edition_job(holder: str) -> None:
    """The edition job: send the edition whose send time has come."""
    if (service := _holding(holder)) is not None:
        service.send_due()


def retry_job(holder: str) -> None:
    """The retry job: deferred and unknown deliveries of the last day."""
    if (service := _holding(holder)) is not None:
        service.retry()


def catch_up_job(holder: str, date: dt.date) -> None:
    """The catch-up job: the edition of ``date``, missed while the service was down."""
    if (service := _holding(holder)) is not None:
        service.send(date)


class Service:
    """The scheduler and its jobs, over one store.

    Every process renews (or waits for) the sender lease in a thread of its own. Only the
    holder runs the scheduler, over the jobs in the database: a standby polls the lease and
    starts the scheduler when it takes the lease over; a holder that loses it stops.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        holder: str | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.store = store
        self.holder = holder or make_holder()
        self.clock = clock
        self.timetable = settings.edition.timetable
        self.stop = threading.Event()
        self.sender = False
        self._told_other: str | None = None
        #: One send at a time: the edition, a catch-up and a retry never overlap.
        self._sending = threading.Lock()
        self._fetching = threading.Lock()
        #: Taking and giving up the lease, with the scheduler that goes with it.
        self._leasing = threading.Lock()
        self._started = False
        self._renewing: threading.Thread | None = None
        #: The scheduler over the database's jobs, while this process holds the lease.
        self.scheduler: BackgroundScheduler | None = None
        #: The edition's run time the job store held, when it had passed at the takeover.
        self.missed_run: dt.datetime | None = None

    # -- starting and stopping -------------------------------------------------------------

    def start(self) -> None:
        """Take the lease if free (then start the jobs: the first fetch begins now), and keep
        renewing or polling it."""
        self._started = True
        self.renew_lease()
        self._renewing = threading.Thread(target=self._renew, name="lease", daemon=True)
        self._renewing.start()

    def shutdown(self) -> None:
        """Stop taking work, let the message in flight finish, give the lease back."""
        self.stop.set()
        if self._renewing is not None:
            self._renewing.join(timeout=STOP_WAIT)
        with self._leasing:
            self._stop_jobs()
        finished = self._sending.acquire(timeout=STOP_WAIT)
        if finished:
            self._sending.release()
        else:
            log.warning("a send did not finish within %.0f s: its messages are unknown", STOP_WAIT)
        if self.sender:
            self.store.release_lease(SENDER_LEASE, self.holder)
            self.sender = False

    def next_edition(self) -> dt.datetime:
        return next_send(self.clock(), self.timetable)

    @property
    def running(self) -> bool:
        """Whether the service runs: the holder's scheduler, or a standby's lease polling."""
        if self.stop.is_set() or not self._started:
            return False
        if self.sender:
            return self.scheduler is not None and bool(self.scheduler.running)
        return self._renewing is not None and self._renewing.is_alive()

    def _renew(self) -> None:
        while not self.stop.wait(RENEW_EVERY.total_seconds()):
            try:
                self.renew_lease()
            except Exception as exc:  # a database blip must not end the renewals for good
                log.error("cannot check the sender lease: %s", exc)

    def _start_jobs(self) -> None:
        """Run the scheduler over the database's jobs, re-added under this holder. The
        edition job keeps the run time the database holds; one that passed while no process
        held the lease is a missed send, which ``catch_up`` decides on."""
        now = self.clock()
        scheduler = BackgroundScheduler(
            timezone=dt.UTC,
            jobstores={"default": self.store.make_job_store()},
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        scheduler.start(paused=True)
        _HOLDERS[self.holder] = self
        self.scheduler = scheduler
        edition = _stored_job(scheduler, "edition")
        stored: dt.datetime | None = None
        if edition is not None and getattr(edition.trigger, "timetable", None) == self.timetable:
            stored = edition.next_run_time
        self.missed_run = stored if stored is not None and stored <= now else None
        kept = stored is not None and stored > now
        scheduler.add_job(
            EDITION_JOB,
            SendTrigger(self.timetable),
            args=(self.holder,),
            id="edition",
            replace_existing=True,
            next_run_time=stored if kept else next_send(now, self.timetable),
            misfire_grace_time=max(1, int(self.timetable.catch_up.total_seconds())),
        )
        every = self.settings.fetch_every
        scheduler.add_job(
            FETCH_JOB,
            IntervalTrigger(
                seconds=every.total_seconds(), jitter=fetch_jitter(every).total_seconds()
            ),
            args=(self.holder,),
            id="fetch",
            replace_existing=True,
            next_run_time=now,
            misfire_grace_time=None,  # the first fetch runs however slow the start was
        )
        scheduler.add_job(
            RETRY_JOB,
            IntervalTrigger(seconds=RETRY_EVERY.total_seconds()),
            args=(self.holder,),
            id="retry",
            replace_existing=True,
        )
        with contextlib.suppress(JobLookupError):  # the last holder's: decided again below
            scheduler.remove_job("catch-up")
        self.catch_up()
        scheduler.resume()

    def _stop_jobs(self) -> None:
        """Stop this process's scheduler; the jobs stay in the database for the next holder."""
        if _HOLDERS.get(self.holder) is self:
            del _HOLDERS[self.holder]
        if self.scheduler is not None:
            if self.scheduler.running:
                # Paused first, and a look at the jobs (which waits for the scheduler's
                # own pass over them to end): a shutdown in the middle of that pass makes
                # it fail to remove a finished catch-up job.
                self.scheduler.pause()
                self.scheduler.get_jobs()
                self.scheduler.shutdown(wait=False)
            self.scheduler = None

    # -- the jobs --------------------------------------------------------------------------

    def renew_lease(self) -> None:
        """Take or renew the sender lease, starting or stopping the jobs with it; say when
        this process starts or stops sending."""
        with self._leasing:
            if self.stop.is_set():
                return
            now = self.clock()
            try:
                held = self.store.take_lease(SENDER_LEASE, self.holder, now, LEASE_TTL)
            except DigestError as exc:
                log.error("cannot renew the sender lease: %s", exc)
                held = False
            if held and not self.sender:
                self.sender = True
                self._told_other = None
                log.info("this process sends the editions (%s)", self.holder)
                if self._started:
                    self._start_jobs()
            elif not held:
                if self.sender:
                    log.warning("lost the sender lease: this process no longer sends")
                    self._stop_jobs()
                self.sender = False
                other = self.store.lease_holder(SENDER_LEASE, now)
                name = other[0] if other else "another process"
                if name != self._told_other:
                    self._told_other = name
                    log.warning(
                        "not sending: %s holds the sender lease on this database; "
                        "this process serves the web pages only",
                        name,
                    )

    def catch_up(self) -> None:
        """Send now the edition the service missed while down, if it is within catch_up.

        It was due when the job store's run time for it has passed, or, for a database whose
        jobs were never stored, when an earlier edition shows the service had run before."""
        if not self.sender or self.scheduler is None:
            return
        now = self.clock()
        missed = missed_edition(now, self.timetable, lambda date: ledger_done(self.store, date))
        if missed is None or (self.missed_run is None and not self.store.edition_dates()):
            return  # nothing missed, or a new database: nothing was ever to be sent
        late = _hours(missed.late)
        if missed.catch_up:
            log.info("catching up the edition of %s, due %s ago", missed.date, late)
            self.scheduler.add_job(
                CATCH_UP_JOB,
                args=(self.holder, missed.date),
                id="catch-up",
                replace_existing=True,
                misfire_grace_time=None,  # it is run now, however slow the start was
            )
        else:
            log.warning(
                "skipped the edition of %s: it was due %s ago, longer than catch_up (%s)",
                missed.date,
                late,
                _hours(self.timetable.catch_up),
            )

    def send_due(self) -> None:
        """The edition job: send the edition whose send time has just come."""
        due = previous_send(self.clock(), self.timetable)
        if due is not None:
            self.send(edition_of(due, self.timetable))

    def fetch(self) -> list[FeedReport] | None:
        """Fetch the due feeds and log one line; None when stopped (or already fetching)."""
        if not self._fetching.acquire(blocking=False):
            return None
        try:
            started = time.monotonic()
            reports: list[FeedReport] | None = self._until_stopped(
                lambda: fetch_feeds(self.settings, self.store, self.clock())
            )
            if reports is None:
                return None
            for report in reports:
                if report.error and report.postponed_until is None:
                    log.warning("feed %s failed: %s", report.url, report.error)
            log.info("%s", summarize_fetch(reports, time.monotonic() - started))
            # Still inside the fetch: a send waiting for it then finds every vector cached.
            self._embed_new_titles()
            return reports
        except DigestError as exc:
            log.error("the fetch failed: %s", exc)
            return None
        finally:
            self._fetching.release()

    def _embed_new_titles(self) -> None:
        """Embed the new headlines now, so the send at 07:00 finds them cached."""
        started = time.monotonic()
        try:
            count = embed_new_titles(self.settings, self.store, self.clock())
        except DigestError as exc:
            log.error("cannot embed the new headlines: %s", exc)
            return
        if count:
            log.info("embedded %d new headlines in %.1f s", count, time.monotonic() - started)

    def send(self, date: dt.date) -> SendReport | None:
        """Fetch once more, build the edition of ``date`` and send what the ledger has left."""
        if not self.sender:
            log.info("not sending the edition of %s: this process does not hold the lease", date)
            return None
        with self._sending:
            if self.stop.is_set():
                return None
            if not self._still_sender():
                return None
            if ledger_done(self.store, date):
                log.info("the edition of %s has gone out already", date)
                return None
            self._wait_for_fetch()
            if self.stop.is_set():
                return None
            try:
                digest = build_edition(self.settings, self.store, date)
                log.info("built the edition of %s: %d stories", date, digest.story_count)
                report = send_edition(self.settings, self.store, date, self.clock(), stop=self.stop)
            except DigestError as exc:
                told = str(exc)
                if not told.startswith(f"the edition of {date}"):
                    told = f"the edition of {date} was not sent: {told}"
                log.error("%s", told)
                return None
            log.info("%s", summarize_send(report))
            return report

    def retry(self) -> None:
        """Try again the deferred and unknown deliveries of the last day's editions."""
        if not self.sender or self.stop.is_set():
            return
        now = self.clock()
        today = now.astimezone(self.timetable.timezone).date()
        for date in (today - dt.timedelta(days=1), today):
            if send_time(date, self.timetable) < now - RETRY_WITHIN:
                continue
            counts = self.store.delivery_counts(date)
            if not counts.get(Status.DEFERRED) and not counts.get(Status.UNKNOWN):
                continue
            with self._sending:
                if self.stop.is_set() or not self._still_sender():
                    return
                try:
                    report = send_edition(
                        self.settings,
                        self.store,
                        date,
                        self.clock(),
                        resend_unknown=True,
                        replan=False,
                        stop=self.stop,
                    )
                except DigestError as exc:
                    log.error("the retry of the edition of %s failed: %s", date, exc)
                    continue
            log.info("retried %s", summarize_send(report))

    # -- helpers ---------------------------------------------------------------------------

    def _still_sender(self) -> bool:
        """Renew the lease now: a holder held up past it (a paused machine) learns here
        that another has taken over, before it sends anything."""
        self.renew_lease()
        return self.sender

    def _wait_for_fetch(self) -> None:
        """Fetch before building; if a fetch is running, wait for it instead."""
        if self._fetching.locked():
            while self._fetching.locked() and not self.stop.wait(0.1):
                pass
            return
        self.fetch()

    def _until_stopped(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` in a daemon thread and return its result, or None once stopped: a
        stop does not wait for a feed's 30-second deadline."""
        outcome: list[Any] = []

        def run() -> None:
            try:
                outcome.append((True, work()))
            except BaseException as exc:
                outcome.append((False, exc))

        worker = threading.Thread(target=run, name="fetch", daemon=True)
        worker.start()
        while worker.is_alive() and not self.stop.is_set():
            worker.join(0.1)
        if not outcome:
            return None
        ok, value = outcome[0]
        if not ok:
            raise value
        return value


def _stored_job(scheduler: BackgroundScheduler, job_id: str) -> Any:
    """The job ``job_id`` as the database holds it, or None when there is none or it cannot
    be read back (a row another version of market-digest wrote): it is then added afresh."""
    try:
        return scheduler.get_job(job_id)
    except Exception as exc:  # unpickling runs whatever the row names: any error can come
        log.warning("the stored %s job cannot be read (%s): it is added again", job_id, exc)
        return None


def _hours(span: dt.timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
