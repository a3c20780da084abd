"""The whole line, top to bottom: fetch → parse → store → cluster → rank → render → send.

Each function here composes the pure stages with the edges (network, database, SMTP) and
returns a report value; the CLI and the scheduler only call these.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, replace
from email.utils import parseaddr

from .config import Settings
from .errors import ConfigError, EditionError, MessageRefusedError
from .fetch import FetchPolicy, fetch_all, make_user_agent
from .models import Delivery, Digest, Email, FetchResult
from .outbox import outbox_server
from .parse import parse_feed
from .rank import HISTORY, build_digest, edition_window, personalise
from .render import Links, make_environment, render_digest
from .send import (
    DkimKey,
    Mailer,
    compose,
    list_id,
    make_message_id,
    make_token,
    to_bytes,
    unsubscribe_headers,
    unsubscribe_mailto,
    unsubscribe_url,
)
from .store import PendingDelivery, Store


@dataclass(frozen=True, slots=True)
class FeedReport:
    """What one feed gave in a fetch, or why it was not fetched this time."""

    name: str
    url: str
    status: int | None
    items: int
    new_items: int
    error: str | None
    #: Set when the feed was not due: it is backing off or the server asked us to wait.
    postponed_until: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class SendReport:
    date: dt.date
    deliveries: tuple[Delivery, ...]
    already_sent: int
    #: Where the messages went: the outbox folder or the SMTP server.
    destination: str

    @property
    def sent(self) -> int:
        return sum(1 for delivery in self.deliveries if delivery.sent)

    @property
    def failed(self) -> int:
        return sum(1 for delivery in self.deliveries if not delivery.sent)


def today(settings: Settings, now: dt.datetime) -> dt.date:
    """The date of the next edition to go out, in the edition's time zone."""
    return now.astimezone(settings.edition.timezone).date()


def make_policy(settings: Settings) -> FetchPolicy:
    return FetchPolicy(
        user_agent=make_user_agent(settings.edition.site_url),
        allow_private_hosts=settings.allow_private_hosts,
    )


def fetch_feeds(
    settings: Settings, store: Store, now: dt.datetime, policy: FetchPolicy | None = None
) -> list[FeedReport]:
    """Fetch every feed that is due, store new items and each feed's health.

    Feeds that are backing off after failures, or that a server asked to wait, are listed
    with the time they are due again.
    """
    store.sync_feeds(settings.feeds)
    due = store.feed_sources(now)
    due_urls = {source.url for source in due}
    postponed = [
        FeedReport(feed.name, feed.url, feed.last_status, 0, 0, None, feed.next_attempt)
        for feed in store.feed_health()
        if feed.active and feed.gone_at is None and feed.url not in due_urls
    ]
    results = asyncio.run(fetch_all(due, store.validators(), policy or make_policy(settings)))
    return [_store_result(store, result, now) for result in results] + postponed


def _store_result(store: Store, result: FetchResult, now: dt.datetime) -> FeedReport:
    items = []
    error = result.error
    if result.ok and result.body is not None:
        items = parse_feed(result.body, result.source, now, result.content_type)
        if not items:
            error = "no entries found: not a feed, or an empty one"
    if error is not None and result.ok:
        result = replace(result, error=error, body=None)
    new = store.record_fetch(result, items, now)
    return FeedReport(result.source.name, result.source.url, result.status, len(items), new, error)


def build_edition(settings: Settings, store: Store, date: dt.date) -> Digest:
    """Build and store the edition of ``date`` from stored items.

    Once its sending has started an edition is frozen: building again returns it unchanged,
    so every subscriber of one date gets the same stories.
    """
    if store.edition_is_planned(date):
        frozen = store.load_edition(date)
        if frozen is not None:
            return frozen
    edition = settings.edition
    window = edition_window(date, edition.send_at, edition.timezone)
    digest = build_digest(
        store.items_between(window[0] - HISTORY, window[1]),
        date=date,
        title=edition.title,
        tagline=edition.tagline,
        window=window,
        max_stories=edition.max_stories,
        clustering=edition.clustering,
    )
    store.save_edition(digest, now=window[1])
    return digest


def signing_key(settings: Settings, store: Store) -> str:
    return settings.secret_key or store.signing_key()


def make_links(settings: Settings, key: str, date: dt.date, email: str) -> Links:
    site = settings.edition.site_url
    return Links(
        site_url=site,
        unsubscribe=unsubscribe_url(site, key, email),
        view_in_browser=f"{site}/archive/{date.isoformat()}?t={make_token(key, email)}",
        preferences=f"{site}/preferences?t={make_token(key, email)}",
    )


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


def send_edition(settings: Settings, store: Store, date: dt.date, now: dt.datetime) -> SendReport:
    """Send the stored edition of ``date`` to every active subscriber who has not had it.

    Deliveries are planned in one transaction before the first message goes out and each is
    marked as the server accepts it, so a crash loses nothing and a rerun sends only the rest.
    """
    digest = store.load_edition(date)
    if digest is None:
        raise EditionError(f"no edition for {date}: run 'digest build --date {date}' first")
    sender = settings.edition.sender
    store.plan_deliveries(date, lambda email: make_message_id(date, email, sender))
    pending = store.pending_deliveries(date)
    already = store.delivery_counts(date).get("sent", 0)
    if settings.smtp_url is not None:
        deliveries = _deliver(settings, store, digest, pending, settings.smtp_url, now)
        destination = Mailer(settings.smtp_url).where
    else:
        folder = settings.outbox / date.isoformat()
        with outbox_server(folder) as url:
            deliveries = _deliver(settings, store, digest, pending, url, now)
        destination = str(folder)
    return SendReport(date, tuple(deliveries), already, destination)


def _deliver(
    settings: Settings,
    store: Store,
    digest: Digest,
    pending: list[PendingDelivery],
    smtp_url: str,
    now: dt.datetime,
) -> list[Delivery]:
    key = signing_key(settings, store)
    environment = make_environment()
    identifier = list_id(settings.edition.title, settings.edition.sender)
    signer = dkim_key(settings)
    mailer = Mailer(smtp_url)
    deliveries = []
    try:
        for delivery in pending:
            subscriber = delivery.subscriber
            links = make_links(settings, key, digest.date, subscriber.email)
            watched, rest = personalise(digest, subscriber.watchlist)
            rendered = render_digest(
                rest,
                links,
                subscriber.name,
                environment,
                postal_address=settings.edition.postal_address,
                watchlist=watched,
            )
            email = Email(
                recipient=subscriber.email,
                subject=rendered.subject,
                html=rendered.html,
                text=rendered.text,
                message_id=delivery.message_id,
                headers=unsubscribe_headers(
                    links.unsubscribe,
                    unsubscribe_mailto(settings.edition.sender, key, subscriber.email),
                    identifier,
                ),
            )
            message = to_bytes(compose(email, settings.edition.sender, now), signer)
            try:
                mailer.send(message, settings.edition.sender, subscriber.email)
            except MessageRefusedError as exc:
                store.mark_delivery(digest.date, subscriber.email, now, error=str(exc))
                deliveries.append(Delivery(subscriber.email, digest.date, False, str(exc)))
                continue
            store.mark_delivery(digest.date, subscriber.email, now)
            deliveries.append(Delivery(subscriber.email, digest.date, True))
    finally:
        mailer.close()
    return deliveries
