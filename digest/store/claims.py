"""Claims on the send ledger under a lease, for ``digest send --worker``: the in-flight rule
kept in the database, so that workers on any number of hosts share one edition's deliveries.

A worker claims rows (``claimed``, ``DeliveryStore.claim`` with a lease), marks each one
``sending`` in its own transaction just before the message goes, and records the answers. Its
lease (``next_attempt`` of the rows it holds) is renewed while it works. When a worker dies,
its lease lapses: rows it had only claimed are claimed again by anyone, rows it had marked
``sending`` may have arrived and become ``unknown`` (never sent again unless asked).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from sqlalchemy import Connection, func, select

from ..ledger import Status
from . import schema as s
from ._database import Database
from .deliveries import Answer, write_answers
from .times import aware, naive_utc

d = s.deliveries.c

#: Why a delivery a dead worker was sending is unknown.
LAPSED = (
    "sent by a worker that stopped before its answer was recorded: it may have arrived"
    " (--resend-unknown)"
)


class ClaimStore(Database):
    def mark_sending(
        self,
        delivery: int,
        claim: str,
        until: dt.datetime,
        answers: Sequence[Answer] = (),
        bounce_after: int = 2,
    ) -> tuple[bool, list[str]]:
        """Mark a claimed delivery ``sending`` (about to be handed over), held until
        ``until``, recording first the ``answers`` of the messages before it (so that a
        worker that dies leaves at most the one in flight unknown).

        Returns whether run ``claim`` still held the delivery (False: its lease lapsed and
        another worker took it), and the addresses that bounced for good with the answers.
        """
        # No transaction needed: the answers are true whatever follows, and a mark written
        # without them only leaves those rows to be settled as unknown, never sent twice. A
        # bounce changes the subscriber in several steps, which do need one.
        bounced = any(answer.status is Status.BOUNCED for answer in answers)
        if not bounced and self.engine.dialect.name == "postgresql":
            return self._mark_in_one_go(delivery, claim, until, answers), []
        with self.begin() if bounced else self.each_on_its_own() as c:
            gone = write_answers(c, answers, bounce_after, claim)
            result = c.execute(
                s.deliveries.update()
                .where(d.id == delivery, d.claim == claim, d.status == Status.CLAIMED)
                .values(status=Status.SENDING, next_attempt=naive_utc(until))
            )
            return bool(result.rowcount), gone

    def _mark_in_one_go(
        self, delivery: int, claim: str, until: dt.datetime, answers: Sequence[Answer]
    ) -> bool:
        """``mark_sending`` on PostgreSQL: one statement, so one round trip a message. One
        statement is one transaction, ended as a whole in a deadlock, so it may run again."""
        params = {
            "answers": json.dumps([_answer_record(answer) for answer in answers]),
            # The ids again, as an array: they let the rows be found by their key, not by
            # a scan of the whole ledger joined to the answers.
            "ids": [answer.id for answer in answers],
            "claim": claim,
            "delivery": delivery,
            "until": naive_utc(until),
        }

        def mark(c: Connection) -> bool:
            return bool(c.exec_driver_sql(_MARK_SQL, params).scalar_one())

        return self.statement(mark)

    def renew_lease(self, claim: str, until: dt.datetime) -> int:
        """Hold every delivery run ``claim`` holds until ``until``; returns how many."""
        renew = (
            s.deliveries.update()
            .where(d.claim == claim, d.status.in_([Status.CLAIMED, Status.SENDING]))
            .values(next_attempt=naive_utc(until))
        )
        return self.transaction(lambda c: int(c.execute(renew).rowcount))

    def lapse_leases(self, date: dt.date, now: dt.datetime) -> int:
        """Make unknown the deliveries of ``date`` a worker was sending when its lease lapsed;
        returns how many. (Rows it had only claimed need nothing: ``claim`` takes them.)"""
        edition = select(s.editions.c.id).where(s.editions.c.date == date)
        lapsed = (
            d.edition_id == edition.scalar_subquery(),
            d.status == Status.SENDING,
            d.next_attempt.is_not(None),
            d.next_attempt <= naive_utc(now),
        )
        # Rows another transaction holds are skipped, not waited for (a later look settles
        # them): like ``claim``, this never waits on anyone, so no two workers' transactions
        # can wait on each other in a circle.
        free = select(d.id).where(*lapsed).order_by(d.id).with_for_update(skip_locked=True)
        settle = (
            s.deliveries.update()
            .where(d.id.in_(free.scalar_subquery()), *lapsed)
            .values(
                status=Status.UNKNOWN,
                error=LAPSED,
                claim=None,
                next_attempt=None,
                updated_at=naive_utc(now),
            )
        )
        return self.transaction(lambda c: int(c.execute(settle).rowcount))

    def held_until(self, date: dt.date) -> dt.datetime | None:
        """When the last lease on a delivery of ``date`` lapses, while workers hold some."""
        with self.begin() as c:
            until = c.execute(
                select(func.max(d.next_attempt))
                .join(s.editions, s.editions.c.id == d.edition_id)
                .where(
                    s.editions.c.date == date,
                    d.status.in_([Status.CLAIMED, Status.SENDING]),
                    d.next_attempt.is_not(None),
                )
            ).scalar()
        return aware(until)


def _answer_record(answer: Answer) -> dict[str, object]:
    """One answer as ``_MARK_SQL`` reads it from JSON."""
    return {
        "id": answer.id,
        "status": str(answer.status),
        "smtp_code": answer.code,
        "error": answer.error,
        "sent_at": naive_utc(answer.at).isoformat() if answer.status is Status.SENT else None,
        "attempted": naive_utc(answer.at).isoformat(),
        "next_attempt": None
        if answer.next_attempt is None
        else naive_utc(answer.next_attempt).isoformat(),
        "tried": int(answer.tried),
    }


#: ``write_answers`` for the rows run ``claim`` still holds and the next one's in-flight mark,
#: in one statement (PostgreSQL): the count says whether the run held the next row.
_MARK_SQL = f"""
WITH answered AS (
    UPDATE deliveries AS d
    SET status = a.status, smtp_code = a.smtp_code, error = a.error, sent_at = a.sent_at,
        next_attempt = a.next_attempt, updated_at = a.attempted,
        first_attempt = coalesce(d.first_attempt, a.attempted),
        attempts = d.attempts + a.tried, claim = NULL
    FROM jsonb_to_recordset(%(answers)s::jsonb) AS a(
        id integer, status varchar, smtp_code integer, error text, sent_at timestamp,
        attempted timestamp, next_attempt timestamp, tried integer)
    WHERE d.id = ANY(%(ids)s::integer[]) AND d.id = a.id AND d.claim = %(claim)s
), marked AS (
    UPDATE deliveries SET status = '{Status.SENDING}', next_attempt = %(until)s
    WHERE id = %(delivery)s AND claim = %(claim)s AND status = '{Status.CLAIMED}'
    RETURNING id
)
SELECT count(*) FROM marked
"""
