"""The subscribers table and its history: who gets the edition, in which state, since when.

An address is found by its key (``address_key``), so every lookup ignores letter case and
one address is one row; a personal link finds its subscriber by their public id. What an
event may do to a subscriber is decided by ``digest.lifecycle`` (and, for adding and
importing, ``digest.enrolment``); this module only writes the answer, each change of state
with a line of history, in the transaction that read the state it changes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, Integer, String, bindparam, cast, select
from sqlalchemy.exc import IntegrityError

from .. import lifecycle
from ..addresses import address_key
from ..enrolment import Enrolment, Entry, decide_enrolment
from ..lifecycle import (
    Applied,
    Change,
    State,
    SubscriberRecord,
    SubscriberReport,
    Transition,
)
from ..models import DeliveryRecord, Subscriber
from ..tokens import new_public_id
from . import schema as s
from ._database import Database
from .times import aware, naive_utc


class SubscriberStore(Database):
    def enrol(
        self,
        entries: Iterable[Entry | Subscriber],
        now: dt.datetime,
        *,
        update: bool = False,
        confirmed: bool = True,
    ) -> list[Enrolment]:
        """Add ``entries`` as the enrolment rule allows, all in one transaction.

        ``confirmed``: the caller vouches that each new address's owner asked for the edition
        (the CLI's ``--confirmed``); otherwise new addresses are pending, and each answer
        whose ``notice`` is set needs its confirmation mailed (``pipeline.send_notices``).
        Never makes an unsubscribed, bounced or complained address active again; with
        ``update`` the name and watchlist of addresses already there are replaced.
        """
        answers = []
        with self.begin() as c:
            for entry in entries:
                if isinstance(entry, Subscriber):
                    entry = Entry.of(entry)
                key = address_key(entry.subscriber.email)
                row = _row(c, key)
                existing = None if row is None else record_of(row)
                answer = decide_enrolment(existing, entry, now, update=update, confirmed=confirmed)
                person = answer.subscriber
                details = {"name": person.name, "watchlist": " ".join(person.watchlist)}
                if row is None:
                    row = _insert(c, key, entry.subscriber.email, answer.transition, now, details)
                elif answer.changed:
                    _update_details(c, row.id, details)
                _write(c, row, answer.transition, now)
                answers.append(replace(answer, subscriber=_subscriber(c, row.id)))
        return answers

    def add_subscriber(
        self,
        subscriber: Subscriber,
        now: dt.datetime,
        *,
        update: bool = False,
        confirmed: bool = True,
    ) -> bool:
        """Add ``subscriber`` as ``enrol`` does; True when the address is new."""
        (answer,) = self.enrol([subscriber], now, update=update, confirmed=confirmed)
        return answer.new

    def sign_up(self, email: str, now: dt.datetime) -> Applied:
        """Someone asked on the site for the edition at ``email`` (checked and normalised):
        a new address becomes pending. See ``lifecycle.sign_up`` for what to mail."""
        key = address_key(email)
        for attempt in range(2):
            try:
                with self.begin() as c:
                    row = _row(c, key)
                    transition = lifecycle.sign_up(None if row is None else State(row.state))
                    if row is None:
                        row = _insert(c, key, email, transition, now)
                    _write(c, row, transition, now)
                    return Applied(_subscriber(c, row.id), transition)
            except IntegrityError:
                # The same address signed up twice at once: the other request added it.
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def confirm(self, public_id: str, issued: dt.datetime, now: dt.datetime) -> Applied | None:
        """The owner of ``public_id`` followed a confirm link issued at ``issued``; None
        when the rule refuses it (unknown id, or a link older than their last change)."""
        with self.begin() as c:
            row = c.execute(_with_since().where(s.subscribers.c.public_id == public_id)).first()
            if row is None:
                return None
            transition = lifecycle.confirm(State(row.state), aware(row.since), issued)
            if transition.refused:
                return None
            _write(c, row, transition, now)
            return Applied(_subscriber(c, row.id), transition)

    def leave(self, email: str, state: State, now: dt.datetime, why: str) -> bool:
        """``email`` stops getting mail: ``state`` is unsubscribed, bounced or complained.
        True when its state changed (see ``lifecycle.leave``)."""
        with self.begin() as c:
            row = _row(c, address_key(email))
            return row is not None and leave_in(c, row.id, state, now, why) is not None

    def unsubscribe(self, email: str, now: dt.datetime, why: str = "unsubscribed") -> bool:
        """Mark ``email`` unsubscribed, keeping the record; False if unknown or not getting
        mail already."""
        return self.leave(email, State.UNSUBSCRIBED, now, why)

    def remove_subscriber(self, email: str) -> str | None:
        """Delete ``email`` (its deliveries stay in the ledger, without it); the address as
        it was stored, or None."""
        key = address_key(email)
        with self.begin() as c:
            row = _row(c, key)
            if row is None:
                return None
            c.execute(s.subscribers.delete().where(s.subscribers.c.id == row.id))
            bump_version(c)
            return str(row.email)

    def subscribers_version(self) -> int:
        """A number that changes whenever someone stops getting mail: a sending run reads it
        often and looks again at its recipients only when it moved."""
        with self.begin() as c:
            value = c.execute(select(s.meta.c.value).where(s.meta.c.key == _VERSION)).scalar()
        return int(value or 0)

    def subscribers(self, active_only: bool = False) -> list[Subscriber]:
        return [record.subscriber for record in self.records(active_only)]

    def records(self, active_only: bool = False) -> list[SubscriberRecord]:
        """Every subscriber with their state, by address; only active ones if asked."""
        query = _with_since().order_by(s.subscribers.c.email)
        if active_only:
            query = query.where(s.subscribers.c.active)
        with self.begin() as c:
            return [record_of(row) for row in c.execute(query)]

    def subscriber(self, email: str) -> Subscriber | None:
        """The subscriber with ``email``, in any letter case, or None."""
        record = self.record(email)
        return None if record is None else record.subscriber

    def record(self, email: str) -> SubscriberRecord | None:
        """The subscriber with ``email`` and their state, or None."""
        with self.begin() as c:
            row = _row(c, address_key(email))
        return None if row is None else record_of(row)

    def record_by_public_id(self, public_id: str) -> SubscriberRecord | None:
        """The subscriber a personal link names, or None."""
        with self.begin() as c:
            row = c.execute(_with_since().where(s.subscribers.c.public_id == public_id)).first()
        return None if row is None else record_of(row)

    def set_watchlist(self, public_id: str, watchlist: tuple[str, ...]) -> bool:
        """Give the subscriber a personal link names this watchlist; False if there is none."""
        with self.begin() as c:
            changed = c.execute(
                s.subscribers.update()
                .where(s.subscribers.c.public_id == public_id)
                .values(watchlist=" ".join(watchlist))
            )
        return changed.rowcount == 1

    def report(self, email: str) -> SubscriberReport | None:
        """``email``'s state, history and deliveries, or None if not a subscriber."""
        h, d, e = s.subscriber_changes.c, s.deliveries.c, s.editions.c
        with self.begin() as c:
            row = _row(c, address_key(email))
            if row is None:
                return None
            history = c.execute(
                select(h.at, h.state, h.why).where(h.subscriber_id == row.id).order_by(h.id)
            )
            deliveries = c.execute(
                select(e.date, d.status, d.attempts, d.sent_at, d.error)
                .select_from(s.deliveries.join(s.editions))
                .where(d.subscriber_id == row.id)
                .order_by(e.date.desc())
            )
            return SubscriberReport(
                record_of(row),
                tuple(Change(aware(h.at) or h.at, State(h.state), h.why) for h in history),
                tuple(
                    DeliveryRecord(r.date, r.status, r.attempts, aware(r.sent_at), r.error)
                    for r in deliveries
                ),
            )


def _with_since() -> Any:
    """Subscribers with ``since``: when their state last changed, from their history."""
    h = s.subscriber_changes.c
    # The last change written, whatever the clock said when it was.
    since = (
        select(h.at)
        .where(h.subscriber_id == s.subscribers.c.id)
        .order_by(h.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return select(s.subscribers, since.label("since"))


_VERSION = "subscribers_version"


def bump_version(c: Connection) -> None:
    """Say, in the caller's transaction, that someone stopped getting mail."""
    changed = c.execute(
        s.meta.update()
        .where(s.meta.c.key == _VERSION)
        .values(value=cast(cast(s.meta.c.value, Integer) + 1, String))
    )
    if not changed.rowcount:
        c.execute(s.meta.insert().values(key=_VERSION, value="1"))


# The statements written for every subscriber of an import, built once: building one anew
# for each row cost several times what the database took to run it.
_BY_KEY = _with_since().where(s.subscribers.c.email_key == bindparam("key"))
_BY_ID_SINCE = _with_since().where(s.subscribers.c.id == bindparam("row_id"))
_BY_ID = select(s.subscribers).where(s.subscribers.c.id == bindparam("row_id"))
_NEW_STATE = (
    s.subscribers.update()
    .where(s.subscribers.c.id == bindparam("row_id"))
    .values(
        state=bindparam("new_state"),
        active=bindparam("new_active"),
        unsubscribed_at=bindparam("left_at"),
    )
)
_NEW_DETAILS = (
    s.subscribers.update()
    .where(s.subscribers.c.id == bindparam("row_id"))
    .values(name=bindparam("new_name"), watchlist=bindparam("new_watchlist"))
)


def _row(c: Connection, key: str) -> Any:
    return c.execute(_BY_KEY, {"key": key}).first()


def _subscriber(c: Connection, subscriber_id: int) -> Subscriber:
    return subscriber_of(c.execute(_BY_ID, {"row_id": subscriber_id}).one())


def _update_details(c: Connection, subscriber_id: int, details: dict[str, str]) -> None:
    values = {"new_name": details["name"], "new_watchlist": details["watchlist"]}
    c.execute(_NEW_DETAILS, {"row_id": subscriber_id, **values})


def _insert(
    c: Connection,
    key: str,
    email: str,
    transition: Transition,
    now: dt.datetime,
    details: dict[str, Any] | None = None,
) -> Any:
    """A new subscriber's row, in the state ``transition`` enters (``_write`` records it)."""
    state = transition.state
    assert state is not None, "a refused event adds nobody"
    c.execute(
        s.subscribers.insert(),
        {
            "email": email,
            "email_key": key,
            "public_id": new_public_id(),
            "state": state,
            "active": state.gets_mail,
            "created_at": naive_utc(now),
            "unsubscribed_at": naive_utc(now) if state.suppressed else None,
            **(details or {"name": "", "watchlist": ""}),
        },
    )
    return c.execute(_BY_KEY, {"key": key}).one()


def leave_in(
    c: Connection, subscriber_id: int, state: State, now: dt.datetime, why: str
) -> str | None:
    """In the caller's transaction: subscriber ``subscriber_id`` stops getting mail
    (``lifecycle.leave``); their address when their state changed, else None."""
    row = c.execute(_BY_ID_SINCE, {"row_id": subscriber_id}).first()
    if row is None:
        return None
    transition = lifecycle.leave(State(row.state), state, why)
    if transition.why is None:
        return None
    _write(c, row, transition, now)
    return str(row.email)


def _write(c: Connection, row: Any, transition: Transition, now: dt.datetime) -> None:
    """Write the state ``transition`` enters, with its line of history; nothing if it
    changes nothing. Leaving the mailing list moves the version a sending run watches."""
    state = transition.state
    if state is None or transition.why is None:
        return
    if not state.gets_mail and row.active:
        bump_version(c)
    left_at = naive_utc(now) if state.suppressed else None
    c.execute(
        _NEW_STATE,
        {"row_id": row.id, "new_state": state, "new_active": state.gets_mail, "left_at": left_at},
    )
    c.execute(
        s.subscriber_changes.insert(),
        {"subscriber_id": row.id, "at": naive_utc(now), "state": state, "why": transition.why},
    )


def subscriber_of(row: Any) -> Subscriber:
    return Subscriber(
        row.email,
        row.name,
        row.state == State.ACTIVE,
        tuple(row.watchlist.split()),
        public_id=row.public_id,
    )


def record_of(row: Any) -> SubscriberRecord:
    return SubscriberRecord(subscriber_of(row), State(row.state), aware(row.since))
