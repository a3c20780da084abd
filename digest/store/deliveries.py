"""The deliveries table, the send ledger: who is due a message of which edition, and how each
went (the rules are ``digest.ledger``'s; this module only reads and writes them).

Writes are batched: a sending run claims a batch of rows in one transaction (``sending``),
hands them over one by one, noting each in its journal (``digest.journal``), and records the
batch's answers in one more. ``recover`` turns what a dead run left claimed into the truth.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, and_, bindparam, func, or_, select

from ..addresses import address_key
from ..ledger import Status, has_bounced
from ..lifecycle import State
from ..models import Subscriber
from . import schema as s
from ._database import Database
from .subscribers import leave_in, subscriber_of
from .times import aware, maybe_naive_utc, naive_utc

d = s.deliveries.c


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery a sending run has claimed: it is ``sending`` until its answer is recorded."""

    id: int
    subscriber_id: int
    subscriber: Subscriber
    message_id: str
    attempts: int
    first_attempt: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Answer:
    """How one claimed delivery went: its new status, and when to try a deferred one again."""

    id: int
    status: Status
    at: dt.datetime
    #: The server's reply code, when it answered.
    code: int | None = None
    #: Why it did not go, in words.
    error: str | None = None
    next_attempt: dt.datetime | None = None
    #: False for a delivery that was not tried (cancelled, or given back to the queue).
    tried: bool = True


@dataclass(frozen=True, slots=True)
class ReportedBounce:
    """What a bounce report changed: the edition whose delivery bounced, and whether the
    address has now bounced enough editions in a row to get no more mail."""

    date: dt.date
    dropped: bool


#: Subscribers read and queued at a time when an edition's deliveries are planned.
_PLAN_CHUNK = 5_000


class DeliveryStore(Database):
    def plan_deliveries(
        self, date: dt.date, message_id: Callable[[str], str], chunk: int = _PLAN_CHUNK
    ) -> int:
        """Queue one delivery per active subscriber not yet planned; return how many.

        ``message_id(email)`` gives each message its id, fixed here so that any later try
        carries the same one. Subscribers are read ``chunk`` at a time.
        """
        planned_now = 0
        with self.begin() as c:
            postgres = c.dialect.name == "postgresql"
            if postgres:
                # Another worker may be planning a long list: waiting for it is this
                # worker's work, however long the statement timeout meant for queries.
                c.exec_driver_sql("SET LOCAL statement_timeout = 0")
            # Locked, so that workers planning the same edition at once plan it once.
            edition_id = _edition_id(c, date, lock=True)
            if postgres:
                c.exec_driver_sql("SET LOCAL statement_timeout TO DEFAULT")
            planned = select(d.subscriber_id).where(
                d.edition_id == edition_id, d.subscriber_id.is_not(None)
            )
            after = 0
            # A chunk at a time, so memory stays flat however long the list.
            while rows := c.execute(
                select(s.subscribers.c.id, s.subscribers.c.email)
                .where(
                    s.subscribers.c.active,
                    s.subscribers.c.id > after,
                    s.subscribers.c.id.not_in(planned),
                )
                .order_by(s.subscribers.c.id)
                .limit(chunk)
            ).all():
                c.execute(
                    s.deliveries.insert(),
                    [
                        {
                            "edition_id": edition_id,
                            "subscriber_id": row.id,
                            "recipient": row.email,
                            "status": Status.QUEUED,
                            "message_id": message_id(row.email),
                            "attempts": 0,
                        }
                        for row in rows
                    ],
                )
                planned_now += len(rows)
                after = rows[-1].id
        return planned_now

    def claim(
        self,
        date: dt.date,
        claim: str,
        limit: int,
        now: dt.datetime,
        *,
        resend_unknown: bool = False,
        lease: dt.timedelta | None = None,
    ) -> list[Claimed]:
        """Claim up to ``limit`` deliveries that are due (queued, deferred and due, claimed by a
        worker whose lease lapsed, and unknown when asked) for run ``claim``.

        Without ``lease`` they become ``sending`` at once (the run's journal tells which went);
        with one they become ``claimed`` until ``now + lease``, and each is marked ``sending``
        just before it is handed over (``mark_sending``). Rows another run is claiming at
        the same moment are skipped, not waited for (PostgreSQL's ``FOR UPDATE SKIP
        LOCKED``; SQLite's ``BEGIN IMMEDIATE`` lets one claim run at a time).
        """
        # One query per kind of due row, each read in id order straight off the
        # (edition, status) index: one query over all of them sorted the edition's whole
        # queue for every batch, which made a long list's send slower with every message.
        moment = naive_utc(now)
        due = [d.status == Status.QUEUED]
        due.append(and_(d.status == Status.DEFERRED, d.next_attempt <= moment))
        due.append(and_(d.status == Status.CLAIMED, d.next_attempt <= moment))
        if resend_unknown:
            due.append(d.status == Status.UNKNOWN)
        # Nothing but the ledger is touched here, so a try PostgreSQL ended in a deadlock
        # may run again.
        rows = self.transaction(lambda c: _claim_rows(c, date, due, claim, limit, moment, lease))
        return [
            Claimed(
                row.id,
                row.subscriber_id,
                subscriber_of(row),
                row.message_id,
                row.attempts,
                aware(row.first_attempt),
            )
            for row in rows
        ]

    def cancel_departed(self, date: dt.date, now: dt.datetime) -> int:
        """Cancel the waiting deliveries of ``date`` whose subscriber left; return how many."""
        with self.begin() as c:
            active = select(s.subscribers.c.id).where(s.subscribers.c.active)
            result = c.execute(
                s.deliveries.update()
                .where(
                    d.edition_id == _edition_id(c, date),
                    d.status.in_([Status.QUEUED, Status.DEFERRED]),
                    or_(d.subscriber_id.is_(None), d.subscriber_id.not_in(active)),
                )
                .values(status=Status.CANCELLED, updated_at=naive_utc(now), claim=None)
            )
            return int(result.rowcount)

    def record_answers(
        self, answers: Sequence[Answer], bounce_after: int, claim: str | None = None
    ) -> list[str]:
        """Write the answers of a batch in one transaction; the addresses that bounced for
        good with it (their last ``bounce_after`` editions all bounced) are made inactive and
        returned. With ``claim``, only rows that run still holds are written."""
        if not answers:
            return []
        return self.transaction(lambda c: write_answers(c, answers, bounce_after, claim))

    def release(self, ids: Sequence[int], now: dt.datetime, claim: str | None = None) -> None:
        """Give claimed deliveries that were never handed over back to the queue (with
        ``claim``, only those that run still holds)."""
        if ids:
            held = and_(d.id.in_(list(ids)), d.status.in_([Status.SENDING, Status.CLAIMED]))
            if claim is not None:
                held = and_(held, d.claim == claim)
            requeue = (
                s.deliveries.update()
                .where(held)
                .values(
                    status=Status.QUEUED, claim=None, next_attempt=None, updated_at=naive_utc(now)
                )
            )
            self.transaction(lambda c: c.execute(requeue))

    def claims_in_flight(self, date: dt.date) -> dict[str, list[int]]:
        """The runs with deliveries of ``date`` still ``sending`` by the journal's rule (not
        under a worker's lease: ``lapse_leases`` settles those), and those deliveries."""
        with self.begin() as c:
            rows = c.execute(
                select(d.id, d.claim)
                .join(s.editions, s.editions.c.id == d.edition_id)
                .where(
                    s.editions.c.date == date,
                    d.status == Status.SENDING,
                    d.next_attempt.is_(None),
                )
            ).all()
        claims: dict[str, list[int]] = {}
        for row in rows:
            claims.setdefault(row.claim or "", []).append(row.id)
        return claims

    def next_deferred(self, date: dt.date) -> dt.datetime | None:
        """When the earliest deferred delivery of ``date`` is due again, if any is."""
        with self.begin() as c:
            due = c.execute(
                select(func.min(d.next_attempt))
                .join(s.editions, s.editions.c.id == d.edition_id)
                .where(s.editions.c.date == date, d.status == Status.DEFERRED)
            ).scalar()
        return aware(due)

    def still_active(self, subscriber_ids: Sequence[int]) -> set[int]:
        """Which of ``subscriber_ids`` are still active subscribers."""
        with self.begin() as c:
            rows = c.execute(
                select(s.subscribers.c.id).where(
                    s.subscribers.c.id.in_(list(subscriber_ids)), s.subscribers.c.active
                )
            )
            return {row.id for row in rows}

    def delivery_counts(self, date: dt.date) -> dict[str, int]:
        """How many deliveries of ``date``'s edition are in each status."""
        with self.begin() as c:
            rows = c.execute(
                select(d.status, func.count())
                .select_from(s.deliveries.join(s.editions))
                .where(s.editions.c.date == date)
                .group_by(d.status)
            )
            return {status: count for status, count in rows}

    def problem_deliveries(self, date: dt.date) -> list[tuple[str, str, str]]:
        """(recipient, status, error) of every delivery of ``date`` that did not go out."""
        with self.begin() as c:
            rows = c.execute(
                select(d.recipient, d.status, d.error)
                .join(s.editions, s.editions.c.id == d.edition_id)
                .where(
                    s.editions.c.date == date,
                    d.status.not_in([Status.SENT, Status.QUEUED, Status.CLAIMED, Status.CANCELLED]),
                )
                .order_by(d.recipient)
            )
            return [(row.recipient, row.status, row.error or "") for row in rows]

    def mark_delivery(
        self, date: dt.date, email: str, now: dt.datetime, error: str | None = None
    ) -> None:
        """Record by hand that a message was accepted (``error`` None) or refused."""
        with self.begin() as c:
            subscriber_id = (
                select(s.subscribers.c.id)
                .where(s.subscribers.c.email_key == address_key(email))
                .scalar_subquery()
            )
            values: dict[str, Any] = {"attempts": d.attempts + 1, "error": error}
            if error is None:
                values.update(status=Status.SENT, sent_at=naive_utc(now))
            else:
                values["status"] = Status.FAILED
            c.execute(
                s.deliveries.update()
                .where(d.edition_id == _edition_id(c, date), d.subscriber_id == subscriber_id)
                .values(**values)
            )

    def record_bounce_report(
        self,
        recipient: str,
        message_id: str | None,
        error: str,
        now: dt.datetime,
        bounce_after: int,
    ) -> ReportedBounce | None:
        """Mark bounced the delivery a bounce report names: the one to ``recipient`` (in
        any letter case) whose Message-ID is ``message_id``, else the latest one that went
        out to them; the address is dropped as ``record`` drops it. None: no such delivery
        is waiting for a bounce."""
        with self.begin() as c:
            subscriber_id = (
                select(s.subscribers.c.id)
                .where(s.subscribers.c.email_key == address_key(recipient))
                .scalar_subquery()
            )
            rows = c.execute(
                select(d.id, d.message_id, d.status, s.editions.c.date)
                .join(s.editions, s.editions.c.id == d.edition_id)
                .where(d.subscriber_id == subscriber_id)
                .order_by(s.editions.c.date.desc())
            ).all()
            wanted = _bare_id(message_id)
            named = [row for row in rows if wanted and _bare_id(row.message_id) == wanted]
            # A report on a message already marked bounced (the same report twice) changes
            # nothing: it must not fall on a later edition's delivery instead.
            candidates = named or rows
            row = next((row for row in candidates if row.status in _HANDED_OVER), None)
            if row is None:
                return None
            c.execute(
                s.deliveries.update()
                .where(d.id == row.id)
                .values(status=Status.BOUNCED, error=error, updated_at=naive_utc(now))
            )
            dropped = _bounce(c, [row.id], bounce_after, now)
            return ReportedBounce(row.date, bool(dropped))


#: Deliveries a bounce report can be about: those handed to a server (``unknown`` ones may
#: have been). A queued, deferred or refused message was never accepted, so nothing bounces.
_HANDED_OVER = (Status.SENT, Status.UNKNOWN)


def write_answers(
    c: Connection, answers: Sequence[Answer], bounce_after: int, claim: str | None
) -> list[str]:
    """``record_answers`` in the caller's transaction."""
    if not answers:
        return []
    rows = [
        {
            "row_id": answer.id,
            "status": answer.status,
            "smtp_code": answer.code,
            "error": answer.error,
            "sent_at": naive_utc(answer.at) if answer.status is Status.SENT else None,
            "attempted": naive_utc(answer.at),
            "next_attempt": maybe_naive_utc(answer.next_attempt),
            "tried": int(answer.tried),
        }
        for answer in answers
    ]
    held = d.id == bindparam("row_id")
    if claim is not None:
        held = and_(held, d.claim == claim)
    c.execute(
        s.deliveries.update()
        .where(held)
        .values(
            status=bindparam("status"),
            smtp_code=bindparam("smtp_code"),
            error=bindparam("error"),
            sent_at=bindparam("sent_at"),
            next_attempt=bindparam("next_attempt"),
            updated_at=bindparam("attempted"),
            first_attempt=func.coalesce(d.first_attempt, bindparam("attempted")),
            attempts=d.attempts + bindparam("tried"),
            claim=None,
        ),
        rows,
    )
    bounced = [answer.id for answer in answers if answer.status is Status.BOUNCED]
    return _bounce(c, bounced, bounce_after, answers[0].at) if bounced else []


def _claim_rows(
    c: Connection,
    date: dt.date,
    due: list[ColumnElement[bool]],
    claim: str,
    limit: int,
    moment: dt.datetime,
    lease: dt.timedelta | None,
) -> Sequence[Row[Any]]:
    """``DeliveryStore.claim`` in the caller's transaction: the rows claimed, with their
    subscribers, in id order."""
    edition_id = _edition_id(c, date)
    ids: list[int] = []
    for condition in due:
        if len(ids) >= limit:
            break
        ids += c.execute(
            select(d.id)
            .where(d.edition_id == edition_id, condition)
            .order_by(d.id)
            .limit(limit - len(ids))
            .with_for_update(skip_locked=True)
        ).scalars()
    if not ids:
        return []
    c.execute(
        s.deliveries.update()
        .where(d.id.in_(ids))
        .values(
            status=Status.SENDING if lease is None else Status.CLAIMED,
            claim=claim,
            updated_at=moment,
            next_attempt=None if lease is None else moment + lease,
        )
    )
    return c.execute(
        select(s.deliveries, s.subscribers)
        .join(s.subscribers, s.subscribers.c.id == d.subscriber_id)
        .where(d.id.in_(ids))
        .order_by(d.id)
    ).all()


def _bare_id(message_id: str | None) -> str:
    return (message_id or "").strip().strip("<>").strip()


def _edition_id(c: Connection, date: dt.date, *, lock: bool = False) -> int:
    query = select(s.editions.c.id).where(s.editions.c.date == date)
    if lock:
        query = query.with_for_update()
    return int(c.execute(query).scalar_one())


def _bounce(
    c: Connection, delivery_ids: list[int], bounce_after: int, now: dt.datetime
) -> list[str]:
    subscriber_ids = {
        row.subscriber_id
        for row in c.execute(select(d.subscriber_id).where(d.id.in_(delivery_ids)))
        if row.subscriber_id is not None
    }
    gone = []
    for subscriber_id in subscriber_ids:
        recent = [
            Status(row.status)
            for row in c.execute(
                select(d.status)
                .join(s.editions, s.editions.c.id == d.edition_id)
                .where(d.subscriber_id == subscriber_id)
                .order_by(s.editions.c.date.desc())
                .limit(bounce_after)
            )
        ]
        if has_bounced(recent, bounce_after):
            # No more mail to an address that keeps bouncing (lifecycle: bounced).
            why = f"bounced {bounce_after} editions in a row"
            email = leave_in(c, subscriber_id, State.BOUNCED, now, why)
            if email is not None:
                gone.append(email)
    return gone
