"""The whole line, top to bottom: fetch → parse → store → cluster → rank → render → send.

Each function here composes the pure stages with the edges (network, database, SMTP) and
returns a report value; the CLI, the scheduler and the demo only call these.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from .config import Settings
from .dispatch import SendPolicy, dispatch
from .errors import (
    ConfigError,
    EditionError,
    MessageRefusedError,
    SendError,
)
from .fetch import fetch_all
from .floor import why_not_send
from .health import EMPTY_ERROR

# Where the scheduler, the CLI and the public API have always found them.
from .intake import FeedReport as FeedReport
from .intake import fetch_feeds as fetch_feeds
from .intake import make_policy as make_policy
from .intake import open_store as open_store
from .ledger import Status
from .lifecycle import Mail, Notice
from .message import (
    DkimKey,
    Publisher,
    compose,
    make_message_id,
    make_publisher,
    to_bytes,
)
from .models import (
    Delivery,
    Digest,
    FeedSource,
    FetchResult,
    Item,
    Method,
    Section,
)
from .outbox import outbox_server
from .parse import parse_feed
from .send import Mailer
from .site import Site
from .store import Store
from .timetable import sections_on, with_market_note
from .window import edition_date, edition_window

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
from .wire import EditionMessages


@dataclass(frozen=True, slots=True)
class SendReport:
    """What one send of an edition did."""

    date: dt.date
    #: How many deliveries ended in each ledger status in this run.
    counts: dict[str, int]
    #: Each message that did not go out in this run: recipient, status and why.
    problems: tuple[Delivery, ...]
    already_sent: int
    #: Where the messages went: the outbox folder or the SMTP server.
    destination: str
    #: Messages an earlier run left without an answer, now reported unknown.
    recovered_unknown: int = 0
    #: Addresses dropped in this run because they kept bouncing.
    bounced_for_good: tuple[str, ...] = ()
    #: Why the run ended early: the SMTP server went away (the rest stays queued).
    server_gone: str | None = None
    elapsed: float = 0.0
    #: Why a worker stopped early: its lease lapsed and another worker took its messages.
    lease_lost: str | None = None

    @property
    def sent(self) -> int:
        return self.counts.get(Status.SENT, 0)

    @property
    def failed(self) -> int:
        """Messages of this run that did not go out (deferred, failed, bounced, unknown)."""
        return len(self.problems)

    @property
    def rate(self) -> float:
        """Messages handed over per second."""
        return self.sent / self.elapsed if self.elapsed else 0.0


@dataclass(frozen=True, slots=True)
class EditionReport:
    """One run of the daily job: what was fetched, the edition built, and what was sent."""

    fetched: tuple[FeedReport, ...]
    digest: Digest
    #: None for a dry run.
    sent: SendReport | None
    #: Active subscribers when the run was dry (what a real run would have sent to).
    would_send: int = 0


def today(settings: Settings, now: dt.datetime) -> dt.date:
    """The date of the next edition to go out, in the edition's time zone."""
    return edition_date(now, settings.edition.timezone)


def _describe(exc: BaseException) -> str:
    """An unexpected error in one line: its type and the first line of its message."""
    detail = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def build_edition(settings: Settings, store: Store, date: dt.date) -> Digest:
    """Build and store the edition of ``date`` from stored items.

    Once its first message has gone out an edition is frozen: building again returns it
    unchanged, so every subscriber of one date gets the same stories. Until then it is built
    afresh, so an edition that was held back (too few stories) picks up the feeds' return.
    """
    # Clustering needs numpy and scipy; fetching and sending do not pay for them.
    from .rank import HISTORY, build_digest

    if store.edition_is_sent(date):
        frozen = store.load_edition(date)
        if frozen is not None:
            return with_market_note(frozen, settings.edition.timetable)
    edition = settings.edition
    window = edition_window(date, edition.send_at, edition.timezone)
    # calendar: nyse leaves the Stocks section out on a day the exchange is closed.
    sections = sections_on(date, edition.timetable)
    items = [
        item
        for item in store.items_between(window[0] - HISTORY, window[1])
        if item.section in sections
    ]
    vectors = None
    if edition.clustering is Method.EMBEDDING:
        vectors = title_vectors(store, [item.title for item in items])
    digest = build_digest(
        items,
        date=date,
        title=edition.title,
        tagline=edition.tagline,
        window=window,
        max_stories=edition.max_stories,
        clustering=edition.clustering,
        vectors=vectors,
    )
    store.save_edition(digest, now=window[1])
    return with_market_note(digest, edition.timetable)


def title_vectors(store: Store, titles: list[str]) -> npt.NDArray[np.float32]:
    """The titles' embeddings: from the store where it has them, the model for the rest,
    which the store then keeps, so each title is embedded once."""
    return _stored_title_vectors(store, titles)[0]


def _stored_title_vectors(store: Store, titles: list[str]) -> tuple[npt.NDArray[np.float32], int]:
    """``title_vectors``, and how many of them the model had to make."""
    from .embedding import embed_cached, title_digest

    cached = store.title_embeddings([title_digest(title) for title in titles])
    vectors, fresh = embed_cached(titles, cached)
    store.save_title_embeddings(fresh)
    return vectors, len(fresh)


def embed_new_titles(settings: Settings, store: Store, now: dt.datetime) -> int:
    """Embed the titles of recent items the store has no vector for yet, so the edition's
    build at send time finds them cached; how many were new. Nothing without the embedding
    method. ``digest serve`` runs this after each fetch: ``digest fetch`` itself stays free
    of the model."""
    if settings.edition.clustering is not Method.EMBEDDING:
        return 0
    from .rank import HISTORY

    titles = list(dict.fromkeys(item.title for item in store.items_between(now - HISTORY, now)))
    return _stored_title_vectors(store, titles)[1]


def make_site(settings: Settings, store: Store) -> Site:
    """The site, its links signed with DIGEST_SECRET_KEY's first key (any of its keys is
    accepted) or else the store's own key."""
    return Site(settings.edition.site_url, settings.secret_keys or (store.signing_key(),))


def dkim_key(settings: Settings) -> DkimKey | None:
    """The DKIM key from DIGEST_DKIM_KEY, for the sender's domain, or None."""
    if settings.dkim_key_path is None or settings.dkim_selector is None:
        return None
    domain = parseaddr(settings.edition.sender)[1].rpartition("@")[2]
    try:
        private_key = settings.dkim_key_path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"DIGEST_DKIM_KEY: {settings.dkim_key_path}: {exc.strerror}") from None
    return DkimKey(settings.dkim_selector, domain, private_key)


def publisher_of(settings: Settings, store: Store) -> Publisher:
    edition = settings.edition
    return make_publisher(
        make_site(settings, store),
        edition.sender,
        edition.title,
        edition.postal_address,
        dkim_key(settings),
    )


@contextlib.contextmanager
def _mail_destination(settings: Settings, date: dt.date) -> Iterator[tuple[str, str]]:
    """The SMTP URL to send to and where, in words, the mail ends up."""
    if settings.smtp_url is not None:
        yield settings.smtp_url, Mailer(settings.smtp_url).where
        return
    folder = settings.outbox / date.isoformat()
    with outbox_server(folder) as url:
        yield url, str(folder)


def journal_dir(settings: Settings) -> Path:
    """Where sending runs keep their in-flight journals: beside a SQLite database, or else
    beside the configuration."""
    url = make_url(settings.db_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        database = Path(str(url.database))
        return database.with_name(f"{database.name}.sending")
    return settings.config_path.resolve().parent / ".digest-sending"


def send_policy(settings: Settings, **changes: Any) -> SendPolicy:
    sending = settings.sending
    return replace(
        SendPolicy(
            connections=sending.connections, rate=sending.rate, bounce_after=sending.bounce_after
        ),
        **changes,
    )


def send_edition(
    settings: Settings,
    store: Store,
    date: dt.date,
    now: dt.datetime,
    *,
    force: bool = False,
    resend_unknown: bool = False,
    policy: SendPolicy | None = None,
    lease: dt.timedelta | None = None,
    on_total: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
    replan: bool = True,
) -> SendReport:
    """Send the stored edition of ``date`` to every active subscriber who has not had it.

    An edition under the floor (too few stories, most feeds failing) is not sent unless
    ``force``; once its first message is out, the rest always follow. Every subscriber gets
    one row in the send ledger, planned before the first message goes; each message is
    marked in flight before it is handed over and its answer recorded after (see
    ``dispatch``), so a crash loses nothing and sends nothing twice. Without ``replan`` only
    the deliveries already in the ledger are tried (a retry of deferred ones), so someone
    who subscribed since does not get this older edition. With ``lease`` this is one of
    several workers sharing the edition (``SendPolicy.lease``).

    ``on_total`` hears how many messages this run may send, once they are planned;
    ``on_progress`` hears each one handed over.
    """
    digest = store.load_edition(date)
    if digest is None:
        raise EditionError(f"no edition for {date}: run 'digest build --date {date}' first")
    digest = with_market_note(digest, settings.edition.timetable)
    if not force and not store.edition_is_sent(date):
        reason = why_not_send(digest.story_count, store.feed_states(), settings.edition.min_stories)
        if reason is not None:
            raise EditionError(
                f"the edition of {date} was not sent: {reason}; "
                "fix the feeds and run again, or send it anyway with --force"
            )
    publisher = publisher_of(settings, store)
    if replan:
        store.plan_deliveries(date, lambda email: make_message_id(date, email, publisher.sender))
    counts = store.delivery_counts(date)
    already = counts.get(Status.SENT, 0)
    if on_total is not None:
        # What this run may send: the queue, the deferred, what a dead run left in flight.
        due = [Status.QUEUED, Status.DEFERRED, Status.SENDING]
        if resend_unknown:
            due.append(Status.UNKNOWN)
        on_total(sum(counts.get(status, 0) for status in due))

    # Rendered once per variant (watchlist, name), each subscriber's values filled in.
    messages = EditionMessages(digest, publisher, now, publisher.dkim)

    chosen = policy or send_policy(settings)
    if resend_unknown:
        chosen = replace(chosen, resend_unknown=True)
    if lease is not None:
        chosen = replace(chosen, lease=lease)
    with _mail_destination(settings, date) as (url, destination):
        run = dispatch(
            store,
            date,
            messages.bytes_for,
            url,
            publisher.sender,
            journal_dir(settings),
            chosen,
            on_progress=on_progress,
            stop=stop,
        )
    problems = tuple(
        Delivery(recipient, date, False, f"{status}: {why}" if why else status)
        for recipient, status, why in sorted(run.problems)
    )
    return SendReport(
        date,
        dict(run.counts),
        problems,
        already,
        destination,
        run.recovered_unknown,
        tuple(run.bounced_for_good),
        run.server_gone,
        run.elapsed,
        run.lease_lost,
    )


#: What ``run_edition`` has just done: fetched, built, or sent.
Step = tuple[FeedReport, ...] | Digest | SendReport


def run_edition(
    settings: Settings,
    store: Store,
    date: dt.date,
    now: dt.datetime,
    *,
    dry_run: bool = False,
    force: bool = False,
    refetch: bool = False,
    on_step: Callable[[Step], None] | None = None,
) -> EditionReport:
    """The daily job: fetch every due feed, build the edition of ``date``, send it.

    ``force`` fetches feeds that are backing off too and sends an edition under the floor;
    ``refetch`` only fetches them.

    ``on_step`` hears each step's report as soon as it is done, so a failure in a later
    step does not hide what the earlier ones did.
    """

    def done(step: Step) -> None:
        if on_step is not None:
            on_step(step)

    fetched = tuple(fetch_feeds(settings, store, now, force=force or refetch))
    done(fetched)
    digest = build_edition(settings, store, date)
    done(digest)
    if dry_run:
        return EditionReport(fetched, digest, None, len(store.subscribers(active_only=True)))
    sent = send_edition(settings, store, date, now, force=force)
    done(sent)
    return EditionReport(fetched, digest, sent)


@dataclass(frozen=True, slots=True)
class FeedCheck:
    """One fetch of a feed that is not stored: what ``digest feeds check`` shows."""

    result: FetchResult
    items: tuple[Item, ...]
    #: Feeds the page links to, when it was a page rather than a feed.
    alternates: tuple[str, ...] = ()

    @property
    def problem(self) -> str | None:
        """Why this URL is not a usable feed, or None."""
        if not self.result.ok or self.result.body is None:
            return self.result.error or "no body"
        if not self.items:
            hint = f"; the page links to: {', '.join(self.alternates)}" if self.alternates else ""
            return f"{EMPTY_ERROR}{hint}"
        return None


def check_feed(settings: Settings, url: str, now: dt.datetime) -> FeedCheck:
    """Fetch ``url`` once and parse it, storing nothing."""
    source = FeedSource(urlsplit(url).netloc or url, url, Section.STOCKS)
    (result,) = asyncio.run(fetch_all([source], None, make_policy(settings)))
    if not result.ok or result.body is None:
        return FeedCheck(result, ())
    items = tuple(parse_feed(result.body, source, now, result.content_type))
    # bs4 is loaded only here: fetching and sending never need it.
    from .discover import discover_feeds

    alternates = () if items else tuple(discover_feeds(result.body, url))
    return FeedCheck(result, items, alternates)


# -- messages besides the editions ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoticeReport:
    """What ``send_notices`` did: whom it mailed, whom it could not and why, and where to."""

    sent: tuple[Notice, ...]
    #: Each notice not sent, with the reason, which starts with the address.
    failed: tuple[tuple[Notice, str], ...]
    #: Where they went: the SMTP server, or the outbox folders.
    destination: str


def schedule_of(settings: Settings) -> str:
    """When editions come, in words: "every morning at 07:00 (America/New_York)"."""
    edition = settings.edition
    return f"every morning at {edition.send_at:%H:%M} ({edition.timezone})"


def send_notices(
    settings: Settings, store: Store, notices: Sequence[Notice], now: dt.datetime
) -> NoticeReport:
    """Mail each of ``notices`` (confirmations, welcomes) now, through SMTP as editions go.

    Without DIGEST_SMTP_URL they go through the embedded server into ``outbox/<kind>/``.
    A message that cannot be made or is refused is reported with its reason and the others
    go on; when the server cannot be reached, every one left is reported so.
    """
    from .notices import make_notice

    publisher = publisher_of(settings, store)
    schedule = schedule_of(settings)
    sent: list[Notice] = []
    failed: list[tuple[Notice, str]] = []
    destinations: list[str] = []
    for kind in Mail:
        batch = [notice for notice in notices if notice.mail is kind]
        if not batch:
            continue
        with _notice_destination(settings, kind) as (url, destination):
            destinations.append(destination)
            mailer = Mailer(url)
            try:
                for position, notice in enumerate(batch):
                    recipient = notice.subscriber.email
                    try:
                        email = make_notice(notice, publisher, now, schedule)
                        message = to_bytes(compose(email, publisher.sender, now), publisher.dkim)
                        mailer.send(message, publisher.sender, recipient)
                    except MessageRefusedError as exc:
                        failed.append((notice, str(exc)))
                    except SendError as exc:  # the server is gone: so for all the rest
                        failed.extend(
                            (left, f"{left.subscriber.email}: {exc}") for left in batch[position:]
                        )
                        break
                    except Exception as exc:  # one message that could not be made
                        failed.append((notice, f"{recipient}: {_describe(exc)}"))
                    else:
                        sent.append(notice)
            finally:
                mailer.close()
    return NoticeReport(tuple(sent), tuple(failed), " and ".join(dict.fromkeys(destinations)))


@contextlib.contextmanager
def _notice_destination(settings: Settings, kind: Mail) -> Iterator[tuple[str, str]]:
    """Where notices of ``kind`` go: the SMTP URL, and where the mail ends up in words."""
    if settings.smtp_url is not None:
        yield settings.smtp_url, Mailer(settings.smtp_url).where
        return
    folder = settings.outbox / kind.value
    with outbox_server(folder) as url:
        yield url, str(folder)
