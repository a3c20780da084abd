"""Sending one edition over several SMTP connections, with the send ledger.

Each connection is a worker thread with its own run id and journal: it claims a batch of due
deliveries (one transaction), hands them over one by one — the journal notes each message
before it goes and each answer after — and records the batch's answers (one transaction).
Before each message it makes sure the subscriber is still subscribed: a cheap version number
says when anyone left, and only then are the batch's recipients looked up again.

Exactly once: a message whose answer was lost (a crash, a dropped connection after DATA) is
``unknown`` and is not sent again unless asked (``resend_unknown``); ``recover`` settles what a
dead run left claimed. A server that is gone ends the run; nothing is lost, the rest stays
queued for the next one.

With ``SendPolicy.lease`` (``digest send --worker``) the journal's part is played by the
database (``digest.store.claims``), so any number of worker processes on any hosts share one
edition: each row is marked ``sending`` in the ledger before its message goes, and a dead
worker's rows are settled once its lease lapses.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SendError, StoreError
from .journal import Journal, is_live, read_journal
from .ledger import RETRY_WAITS, Reply, Status, next_try, status_of
from .models import Subscriber
from .send import Mailer
from .store import Store
from .store.deliveries import Answer, Claimed

#: Makes a subscriber's message, as bytes for the wire, given its fixed Message-ID.
MessageMaker = Callable[[Subscriber, str], bytes]


@dataclass(frozen=True)
class SendPolicy:
    """How a send behaves; the defaults are ``feeds.yaml``'s ``sending:`` defaults."""

    #: Parallel SMTP connections.
    connections: int = 4
    #: Messages per second over all connections, for relays that demand it; None: no limit.
    rate: float | None = None
    #: Deliveries claimed (and recorded) per transaction.
    batch: int = 50
    #: Editions in a row whose message bounced (550/551/553) before an address is dropped.
    bounce_after: int = 2
    retry_waits: tuple[dt.timedelta, ...] = RETRY_WAITS
    #: Deferred messages due again within this long are waited for by this run.
    wait_within_run: dt.timedelta = dt.timedelta(seconds=60)
    #: Send again the messages whose answer was lost (they may arrive twice).
    resend_unknown: bool = False
    #: Seconds to wait for the server at each step.
    timeout: float = 30.0
    #: Seconds between looks at whether anyone unsubscribed.
    check_every: float = 0.5
    #: None: this is the only sender, its journal on local disk. Set: one of several
    #: workers sharing the ledger, holding what it claims this long (renewed as it works).
    lease: dt.timedelta | None = None


@dataclass
class DispatchReport:
    """What one send did."""

    #: How many deliveries ended in each status in this run.
    counts: Counter[str] = field(default_factory=Counter)
    #: (recipient, status, why) of each message that did not go out in this run.
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    #: Deliveries an earlier, dead run left in flight, now unknown.
    recovered_unknown: int = 0
    #: Addresses dropped because they kept bouncing.
    bounced_for_good: list[str] = field(default_factory=list)
    #: Set when the SMTP server went away and the run ended early.
    server_gone: str | None = None
    #: Set when a worker's lease lapsed and another took its deliveries: the run ended early.
    lease_lost: str | None = None
    elapsed: float = 0.0


def recover(store: Store, date: dt.date, journals: Path, now: dt.datetime) -> int:
    """Settle the deliveries dead runs left ``sending``: answered ones take their answer,
    those handed over without one become unknown, the rest are queued again. Returns how
    many became unknown."""
    unknown = 0
    for claim, ids in store.claims_in_flight(date).items():
        path = journals / f"{claim}.log"
        if claim and is_live(path):
            continue  # another run is sending them right now
        reading = read_journal(path) if claim else None
        answers: list[Answer] = []
        requeue: list[int] = []
        for delivery in ids:
            if reading is None or delivery in reading.in_flight:
                # No journal (a run on another machine, or from before journals): the safe
                # reading is that the message may have gone.
                answers.append(Answer(delivery, Status.UNKNOWN, now, error=_LOST))
            elif delivery in reading.answered:
                code = reading.answered[delivery]
                status = status_of(Reply(code))
                # A deferred one is due at once; the next run's backoff takes over from there.
                answers.append(
                    Answer(delivery, status, now, code, None, now if code and code < 500 else None)
                )
            else:
                requeue.append(delivery)
        unknown += sum(1 for answer in answers if answer.status is Status.UNKNOWN)
        store.record_answers(answers, bounce_after=2)
        store.release(requeue, now)
        if reading is not None:
            path.unlink(missing_ok=True)
    return unknown


_LOST = "sent, but the server's answer was lost: it may have arrived (--resend-unknown)"
#: Seconds between looks at the ledger while other workers hold the rest of an edition.
_POLL = 0.25


class _LeaseLost(Exception):
    """A worker's lease on a delivery lapsed and another worker took it."""

    def __init__(self, delivery: int) -> None:
        super().__init__(delivery)
        self.delivery = delivery


@dataclass
class _Answers:
    """The answers of one batch, and how many of them are in the ledger already."""

    answers: list[Answer] = field(default_factory=list)
    written: int = 0
    #: Addresses dropped for bouncing by the answers written so far.
    gone: list[str] = field(default_factory=list)


class _Pacer:
    """Spaces messages ``1 / rate`` seconds apart across all connections."""

    def __init__(self, rate: float | None) -> None:
        self._gap = 1.0 / rate if rate else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self._gap:
            return
        with self._lock:
            slot = max(self._next, time.monotonic())
            self._next = slot + self._gap
        time.sleep(max(0.0, slot - time.monotonic()))


def dispatch(
    store: Store,
    date: dt.date,
    make_message: MessageMaker,
    smtp_url: str,
    sender: str,
    journals: Path,
    policy: SendPolicy = SendPolicy(),
    *,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    on_progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> DispatchReport:
    """Send every due delivery of ``date`` (planned beforehand) and report the run."""
    started = time.monotonic()
    report = DispatchReport(recovered_unknown=recover(store, date, journals, clock()))
    run = _Run(
        store,
        date,
        make_message,
        smtp_url,
        sender,
        journals,
        policy,
        clock,
        report,
        on_progress,
        stop or threading.Event(),
    )
    workers = [threading.Thread(target=run.work, daemon=True) for _ in range(policy.connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    report.elapsed = time.monotonic() - started
    if run.database_error is not None:
        # Raised here, in the caller's thread, so it ends as the one line any store error
        # does; what the ledger could not record, the next run settles (journal or lease).
        raise run.database_error
    return report


@dataclass
class _Run:
    """What the connections of one send share."""

    store: Store
    date: dt.date
    make_message: MessageMaker
    smtp_url: str
    sender: str
    journals: Path
    policy: SendPolicy
    clock: Callable[[], dt.datetime]
    report: DispatchReport
    on_progress: Callable[[int], None] | None
    stop: threading.Event
    lock: threading.Lock = field(default_factory=threading.Lock)
    pacer: _Pacer = field(init=False)
    #: The subscribers' version when the departed were last cancelled.
    cancelled_at: int | None = None
    #: The first database error a connection met; it stops the run.
    database_error: StoreError | None = None

    def __post_init__(self) -> None:
        self.pacer = _Pacer(self.policy.rate)

    def work(self) -> None:
        """One connection: claim a batch, send it, record it, until nothing is due."""
        claim = uuid.uuid4().hex
        lease = self.policy.lease
        journal = None if lease is not None else Journal(self.journals / f"{claim}.log")
        mailer = Mailer(self.smtp_url, timeout=self.policy.timeout)
        recorded = True
        try:
            while not self.stop.is_set():
                self._lapse_leases()
                self._cancel_departed()
                batch = self.store.claim(
                    self.date,
                    claim,
                    self.policy.batch,
                    self.clock(),
                    resend_unknown=self.policy.resend_unknown,
                    lease=lease,
                )
                if batch:
                    self._send_and_record(batch, claim, journal, mailer)
                elif not self._wait_for_others() and not self._wait_for_deferred():
                    return
        except SendError as exc:
            with self.lock:
                self.report.server_gone = self.report.server_gone or str(exc)
            self.stop.set()
        except StoreError as exc:
            with self.lock:
                self.database_error = self.database_error or exc
            self.stop.set()
            # The database failed before it had every answer: the next run reads them back
            # from the journal instead of calling them unknown.
            recorded = False
        except _LeaseLost as exc:
            # Too slow for its lease (a loaded host, a stalled network): another worker has
            # this one's deliveries, so it stops, having written only what it still held.
            why = (
                f"the lease on delivery {exc.delivery} lapsed and another worker took it;"
                " a longer --lease keeps a slow worker's messages"
            )
            with self.lock:
                self.report.lease_lost = self.report.lease_lost or why
            self.stop.set()
        finally:
            mailer.close()
            if journal is not None:
                journal.close()
                if recorded:
                    # Every answer is in the ledger now: the journal has nothing left to tell.
                    journal.path.unlink(missing_ok=True)

    def _lapse_leases(self) -> None:
        unknown = self.store.lapse_leases(self.date, self.clock())
        if unknown:
            with self.lock:
                self.report.recovered_unknown += unknown

    def _wait_for_others(self) -> bool:
        """A worker waits while other workers hold deliveries: they may die, leaving them to
        it. False: nobody holds any."""
        if self.policy.lease is None:
            return False
        until = self.store.held_until(self.date)
        if until is None:
            return False
        wait = (until - self.clock()).total_seconds()
        self.stop.wait(min(_POLL, max(0.01, wait)))
        return True

    def _cancel_departed(self) -> None:
        # One look over the whole edition's queue, so only when someone left since the last:
        # before each batch, it made a send slower the longer its list.
        version = self.store.subscribers_version()
        with self.lock:
            if version == self.cancelled_at:
                return
            self.cancelled_at = version
        cancelled = self.store.cancel_departed(self.date, self.clock())
        if cancelled:
            with self.lock:
                self.report.counts[Status.CANCELLED] += cancelled

    def _wait_for_deferred(self) -> bool:
        """Wait for the next deferred message if it is due soon; False: nothing left to do."""
        due = self.store.next_deferred(self.date)
        if due is None:
            return False
        wait = (due - self.clock()).total_seconds()
        if wait > self.policy.wait_within_run.total_seconds():
            return False
        self.stop.wait(max(0.05, wait))
        return True

    def _send_and_record(
        self, batch: list[Claimed], claim: str, journal: Journal | None, mailer: Mailer
    ) -> None:
        done = _Answers()
        try:
            self._send(batch, claim, journal, mailer, done)
        finally:
            # Whatever ended the batch, the ledger learns what happened to each message, and
            # those never handed over go back to the queue.
            answers = done.answers
            answered = {answer.id for answer in answers}
            unsent = [row.id for row in batch if row.id not in answered]
            self.store.release(unsent, self.clock(), claim)
            rest = answers[done.written :]
            gone = done.gone + self.store.record_answers(rest, self.policy.bounce_after, claim)
            recipients = {row.id: row.subscriber.email for row in batch}
            with self.lock:
                for answer in answers:
                    self.report.counts[answer.status] += 1
                    if answer.status not in (Status.SENT, Status.CANCELLED):
                        why = answer.error or ""
                        self.report.problems.append((recipients[answer.id], answer.status, why))
                self.report.bounced_for_good.extend(gone)

    def _send(
        self,
        batch: list[Claimed],
        claim: str,
        journal: Journal | None,
        mailer: Mailer,
        done: _Answers,
    ) -> None:
        answers = done.answers
        version = self.store.subscribers_version()
        looked = renewed = time.monotonic()
        active: set[int] | None = None
        for index, row in enumerate(batch):
            if self.stop.is_set():
                return  # the rest go back to the queue
            if time.monotonic() - looked > self.policy.check_every:
                looked = time.monotonic()
                latest = self.store.subscribers_version()
                if latest != version:
                    version = latest
                    rest = [later.subscriber_id for later in batch[index:]]
                    active = self.store.still_active(rest)
            lease = self.policy.lease
            if lease is not None and time.monotonic() - renewed > lease.total_seconds() / 3:
                renewed = time.monotonic()
                self.store.renew_lease(claim, self.clock() + lease)
            if active is not None and row.subscriber_id not in active:
                answers.append(Answer(row.id, Status.CANCELLED, self.clock(), tried=False))
                continue
            answers.append(self._deliver(row, claim, journal, mailer, done))
            if self.on_progress is not None:
                self.on_progress(1)

    def _deliver(
        self, row: Claimed, claim: str, journal: Journal | None, mailer: Mailer, done: _Answers
    ) -> Answer:
        try:
            message = self.make_message(row.subscriber, row.message_id)
        except Exception as exc:  # one subscriber's message, not the whole send
            why = f"the message could not be made: {type(exc).__name__}: {exc}"
            return Answer(row.id, Status.FAILED, self.clock(), None, why)
        self.pacer.wait()
        lease = self.policy.lease

        def handing_over() -> None:
            # The in-flight mark, before the data goes: in the journal, or under a lease in
            # the ledger itself (where the row must still be this worker's), with the answers
            # before it, so that a worker that dies leaves only this one in doubt.
            if journal is not None:
                journal.started(row.id)
            elif lease is not None:
                pending = done.answers[done.written :]
                held, gone = self.store.mark_sending(
                    row.id, claim, self.clock() + lease, pending, self.policy.bounce_after
                )
                done.written += len(pending)
                done.gone.extend(gone)
                if not held:
                    raise _LeaseLost(row.id)

        reply = mailer.deliver(message, self.sender, row.subscriber.email, handing_over)
        if journal is not None:
            journal.answered(row.id, reply.code)
        now = self.clock()
        status = status_of(reply)
        error = None if status is Status.SENT else reply.described
        if status is Status.UNKNOWN:
            error = f"{_LOST}: {reply.text}"
        next_attempt = None
        if status is Status.DEFERRED:
            first = row.first_attempt or now
            next_attempt = next_try(first, row.attempts + 1, now, self.policy.retry_waits)
            if next_attempt is None:
                status, error = Status.FAILED, f"deferred for a day, given up: {error}"
        return Answer(row.id, status, now, reply.code, error, next_attempt)
