"""The send ledger's rules: what an SMTP reply makes of a delivery, when to try again, and
when an address has bounced for good.

One row per (edition, subscriber) goes ``queued → sending → sent | deferred | failed |
bounced | unknown`` (or ``cancelled`` when the subscriber left before their turn). ``sending``
is written before the message is handed over; a crash or a lost reply leaves it, and the
next run reports it ``unknown`` rather than risk a second copy. Pure: the time comes in.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass


class Status(enum.StrEnum):
    QUEUED = "queued"
    #: Taken by a sending worker under a lease (``digest send --worker``), not handed over
    #: yet: queued again for anyone once the lease lapses.
    CLAIMED = "claimed"
    #: Handed to (or about to be handed to) the server; the answer is not recorded yet.
    SENDING = "sending"
    SENT = "sent"
    #: A temporary refusal (4xx): tried again, with backoff, for up to a day.
    DEFERRED = "deferred"
    #: A permanent refusal (5xx), or a message that could not be made.
    FAILED = "failed"
    #: The mailbox does not exist or refuses us (550, 551, 553).
    BOUNCED = "bounced"
    #: Handed over, but the answer was lost (a crash, a dropped connection): maybe received.
    UNKNOWN = "unknown"
    #: The subscriber left before their message went out.
    CANCELLED = "cancelled"


#: Statuses that end a delivery: a later run leaves them alone.
FINAL = frozenset({Status.SENT, Status.FAILED, Status.BOUNCED, Status.CANCELLED})

#: Replies that say the mailbox itself is the problem (RFC 5321 4.2.2): they count toward
#: the subscriber's bounce, a policy or content refusal (554, 552...) does not.
MAILBOX_CODES = frozenset({550, 551, 553})

#: Waits before the next try of a deferred message: the first within the run (a server that
#: is busy for a moment), the rest by later runs; doubling like a mail server's own queue.
RETRY_WAITS = (
    dt.timedelta(seconds=5),
    dt.timedelta(seconds=30),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=15),
    dt.timedelta(hours=1),
    dt.timedelta(hours=2),
    dt.timedelta(hours=4),
)
#: A deferred message is given up (failed) this long after its first try, as mail servers do
#: (RFC 5321 4.5.4.1 suggests 4-5 days; a daily edition is stale after one).
GIVE_UP_AFTER = dt.timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Reply:
    """What the server answered to one message; ``code`` None: the answer was lost after the
    message was handed over."""

    code: int | None
    text: str = ""

    @property
    def described(self) -> str:
        return self.text if self.code is None else f"{self.code} {self.text}".strip()


def status_of(reply: Reply) -> Status:
    """The delivery's status after ``reply``."""
    if reply.code is None:
        return Status.UNKNOWN
    if 200 <= reply.code < 300:
        return Status.SENT
    if 400 <= reply.code < 500:
        return Status.DEFERRED
    if reply.code in MAILBOX_CODES:
        return Status.BOUNCED
    return Status.FAILED


def next_try(
    first_attempt: dt.datetime,
    attempts: int,
    now: dt.datetime,
    waits: Sequence[dt.timedelta] = RETRY_WAITS,
) -> dt.datetime | None:
    """When a message deferred ``attempts`` times is tried again; None: give it up."""
    wait = waits[min(max(attempts, 1), len(waits)) - 1]
    due = now + wait
    return None if due - first_attempt > GIVE_UP_AFTER else due


def has_bounced(recent: Sequence[Status], bounce_after: int) -> bool:
    """Whether an address whose latest editions' deliveries were ``recent`` (newest first)
    has bounced for good: its last ``bounce_after`` editions all bounced."""
    latest = list(recent[:bounce_after])
    return len(latest) == bounce_after and all(status is Status.BOUNCED for status in latest)
