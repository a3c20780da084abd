"""Fetch, parse and store the due feeds, the three at once.

Bodies are parsed as they arrive, a batch at a time in a worker thread, while the other feeds
are still downloading; each parsed batch is written in one transaction. At most one batch is
being parsed and one is filling, so the work waiting for the parser stays bounded. A feed
that cannot be parsed or stored keeps its error to itself: the rest of its batch is written
all the same.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from .config import Settings
from .errors import FeedError, StoreError
from .fetch import FetchPolicy, fetch_each, make_user_agent
from .health import decide, is_due
from .models import FeedState, FetchOutcome, FetchResult, Item
from .store import Store

#: Feeds parsed together and written in one transaction.
BATCH = 50


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
    #: Seconds it waited for a free connection to its host (fetch.per_host at a time).
    waited: float = 0.0


@dataclass(frozen=True, slots=True)
class _Parsed:
    """One fetch, parsed, and the feed state the health rules gave it."""

    result: FetchResult
    feed: FeedState
    outcome: FetchOutcome


def make_policy(settings: Settings) -> FetchPolicy:
    return FetchPolicy(
        user_agent=make_user_agent(settings.edition.site_url),
        allow_private_hosts=settings.allow_private_hosts,
        per_host=settings.per_host,
    )


def open_store(settings: Settings) -> Store:
    """The store of ``settings``, its configured feeds in step with the configuration."""
    store = Store(settings.db_url)
    try:
        store.sync_feeds(settings.feeds)
    except BaseException:
        store.close()
        raise
    return store


def fetch_feeds(
    settings: Settings,
    store: Store,
    now: dt.datetime,
    policy: FetchPolicy | None = None,
    *,
    force: bool = False,
    only: Sequence[str] = (),
) -> list[FeedReport]:
    """Fetch every feed that is due, store new items and each feed's health.

    Feeds that are backing off after failures, or that a server asked to wait, are listed
    with the time they are due again; ``force`` fetches them all the same. ``only`` limits
    the run to those feed URLs.
    """
    store.sync_feeds(settings.feeds)
    feeds = [feed for feed in store.feed_states() if feed.active and feed.gone_at is None]
    if only:
        known = {feed.url for feed in feeds}
        unknown = [url for url in only if url not in known]
        if unknown:
            raise FeedError(unknown[0], "not an active feed (see 'digest feeds')")
        feeds = [feed for feed in feeds if feed.url in only]
    due = {feed.url: feed for feed in feeds if force or is_due(feed, now)}
    postponed = [
        FeedReport(feed.name, feed.url, feed.last_status, 0, 0, None, feed.next_attempt)
        for feed in feeds
        if feed.url not in due
    ]
    fetched = asyncio.run(take_in(store, due, policy or make_policy(settings), now))
    return fetched + postponed


async def take_in(
    store: Store, due: Mapping[str, FeedState], policy: FetchPolicy, now: dt.datetime
) -> list[FeedReport]:
    """Fetch every feed of ``due`` (by URL), store what each gave; reports in ``due``'s order."""
    reports: list[FeedReport] = []
    filling: list[FetchResult] = []
    parsing: asyncio.Future[list[_Parsed]] | None = None
    validators = {url: feed.validators for url, feed in due.items()}
    async for result in fetch_each([feed.source for feed in due.values()], validators, policy):
        filling.append(result)
        if len(filling) >= BATCH:
            if parsing is not None:
                reports += _store(store, await parsing, now)
            parsing = asyncio.ensure_future(asyncio.to_thread(parse_batch, filling, due, now))
            filling = []
    if parsing is not None:
        reports += _store(store, await parsing, now)
    reports += _store(store, parse_batch(filling, due, now), now)
    order = {url: index for index, url in enumerate(due)}
    return sorted(reports, key=lambda report: order[report.url])


def parse_batch(
    results: Iterable[FetchResult], due: Mapping[str, FeedState], now: dt.datetime
) -> list[_Parsed]:
    """Parse each result and decide its feed's new state; touches no database."""
    return [_parse(result, due[result.source.url], now) for result in results]


def _parse(result: FetchResult, feed: FeedState, now: dt.datetime) -> _Parsed:
    items: list[Item] = []
    try:
        if result.ok and result.body is not None:
            # Loaded with the first body: a run where every feed answers 304 never needs it.
            from .parse import parse_feed

            items = parse_feed(result.body, result.source, now, result.content_type)
    except Exception as exc:  # a feed no rule foresaw: recorded on it, with backoff
        return _failed(result, feed, now, exc)
    update = decide(result, len(items), feed, now)
    return _Parsed(result, feed, FetchOutcome(feed.url, update, tuple(items)))


def _failed(result: FetchResult, feed: FeedState, now: dt.datetime, exc: Exception) -> _Parsed:
    result = replace(result, error=f"could not read or store it: {_describe(exc)}", body=None)
    return _Parsed(result, feed, FetchOutcome(feed.url, decide(result, 0, feed, now)))


def _store(store: Store, batch: list[_Parsed], now: dt.datetime) -> list[FeedReport]:
    """Write a batch in one transaction; if that fails, each feed alone, so a feed that
    cannot be stored fails by itself."""
    if not batch:
        return []
    try:
        new = store.save_fetches([parsed.outcome for parsed in batch], now)
    except StoreError:
        raise  # the database itself is in trouble: no other feed would fare better
    except Exception:
        return [_store_alone(store, parsed, now) for parsed in batch]
    return [_report(parsed, count) for parsed, count in zip(batch, new, strict=True)]


def _store_alone(store: Store, parsed: _Parsed, now: dt.datetime) -> FeedReport:
    try:
        (new,) = store.save_fetches([parsed.outcome], now)
    except StoreError:
        raise
    except Exception as exc:
        parsed = _failed(parsed.result, parsed.feed, now, exc)
        store.save_fetches([parsed.outcome], now)
        new = 0
    return _report(parsed, new)


def _report(parsed: _Parsed, new: int) -> FeedReport:
    result, update = parsed.result, parsed.outcome.update
    return FeedReport(
        parsed.feed.name,
        parsed.feed.url,
        result.status,
        len(parsed.outcome.items) if update.ok else 0,
        new,
        result.error or update.last_error,
        waited=result.waited,
    )


def _describe(exc: BaseException) -> str:
    """An unexpected error in one line: its type and the first line of its message."""
    detail = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
