"""What the operator sees of the service: ``/healthz``, ``/status`` and ``digest status``.

Read from the database alone (feeds' health, the send ledger, the sender lease) and the
timetable, so the web page and the terminal show the same thing whether or not this is the
process that sends.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from .config import Settings
from .ledger import Status
from .models import FeedState
from .store import Store
from .timetable import describe, next_send

#: ``/status`` and ``digest status`` show this many of the latest editions.
EDITIONS_SHOWN = 7
_ORDER = [status.value for status in Status]


@dataclass(frozen=True, slots=True)
class EditionLedger:
    """One edition and how many of its deliveries are in each ledger status."""

    date: dt.date
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    now: dt.datetime
    schedule: str
    next_edition: dt.datetime
    timezone: dt.tzinfo
    #: Who holds the sender lease (None: nobody sends now) and until when.
    sender: tuple[str, dt.datetime] | None
    last_fetch: dt.datetime | None
    feeds: tuple[FeedState, ...]
    editions: tuple[EditionLedger, ...]

    @property
    def last_edition(self) -> dt.date | None:
        """The latest edition that went out to someone."""
        sent = [edition.date for edition in self.editions if edition.counts.get(Status.SENT)]
        return max(sent, default=None)


def read_status(
    settings: Settings, store: Store, now: dt.datetime, editions: int = EDITIONS_SHOWN
) -> ServiceStatus:
    from .schedule import SENDER_LEASE

    timetable = settings.edition.timetable
    feeds = tuple(feed for feed in store.feed_states() if feed.active)
    attempts = [feed.last_attempt for feed in feeds if feed.last_attempt is not None]
    dates = store.edition_dates()[:editions]
    return ServiceStatus(
        now=now,
        schedule=describe(timetable),
        next_edition=next_send(now, timetable),
        timezone=timetable.timezone,
        sender=store.lease_holder(SENDER_LEASE, now),
        last_fetch=max(attempts, default=None),
        feeds=feeds,
        editions=tuple(EditionLedger(date, store.delivery_counts(date)) for date in dates),
    )


def _when(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def health_json(
    status: ServiceStatus, scheduler_running: bool, role: str | None = None
) -> dict[str, Any]:
    """``/healthz``'s answer: no addresses, no feed names, nothing an outsider should see.
    ``role`` says whether this process is the one that sends ("sender") or waits for the
    sender lease ("standby"), so a load balancer's check tells the two apart."""
    last = status.last_edition
    return {
        "ok": scheduler_running,
        "scheduler": "running" if scheduler_running else "stopped",
        **({} if role is None else {"role": role}),
        "database": "ok",
        "last_fetch": _when(status.last_fetch),
        "last_edition": None if last is None else last.isoformat(),
        "next_edition": _when(status.next_edition.astimezone(status.timezone)),
    }


def status_json(status: ServiceStatus) -> dict[str, Any]:
    """``/status``'s answer (and ``digest status --json``)."""
    return {
        "now": _when(status.now),
        "schedule": status.schedule,
        "next_edition": _when(status.next_edition.astimezone(status.timezone)),
        "sender": None
        if status.sender is None
        else {"holder": status.sender[0], "until": _when(status.sender[1])},
        "last_fetch": _when(status.last_fetch),
        "feeds": [
            {
                "name": feed.name,
                "url": feed.url,
                "last_success": _when(feed.last_success),
                "consecutive_failures": feed.consecutive_failures,
                "last_error": feed.last_error,
                "next_attempt": _when(feed.next_attempt),
            }
            for feed in status.feeds
        ],
        "editions": [
            {"date": edition.date.isoformat(), "deliveries": edition.counts}
            for edition in status.editions
        ],
    }


def status_lines(status: ServiceStatus) -> list[str]:
    """``digest status`` in the terminal."""
    local = status.next_edition.astimezone(status.timezone)
    lines = [f"Next edition: {local:%Y-%m-%d %H:%M %Z} ({status.schedule})."]
    if status.sender is None:
        lines.append("Sender: no digest serve holds the sender lease now.")
    else:
        lines.append(f"Sender: {status.sender[0]} (lease until {status.sender[1]:%H:%M:%S} UTC).")
    last = "never" if status.last_fetch is None else f"{status.last_fetch:%Y-%m-%d %H:%M} UTC"
    failing = [feed for feed in status.feeds if feed.consecutive_failures]
    lines.append(f"Last fetch: {last}; {len(status.feeds)} feeds, {len(failing)} failing.")
    for feed in failing:
        lines.append(
            f"  failing x{feed.consecutive_failures} {feed.name} ({feed.url}): {feed.last_error}"
        )
    lines.append("Editions:" if status.editions else "Editions: none yet.")
    for edition in status.editions:
        counts = ", ".join(
            f"{edition.counts[name]} {name}" for name in _ORDER if edition.counts.get(name)
        )
        lines.append(f"  {edition.date}: {counts or 'not sent'}")
    return lines
