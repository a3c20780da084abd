"""Fetch, parse and store the due feeds, the three at once.

Bodies are parsed as they arrive, a batch at a time, while the other feeds are still
downloading; each parsed batch is written in one transaction. At most ``PARSERS`` batches are
being parsed and one is filling, so the work waiting for the parsers stays bounded. A feed
that cannot be parsed or stored keeps its error to itself: the rest of its batch is written
all the same.

Parsing is CPU work, and Python runs one thread's at a time: with ``PARSER_PROCESS_FROM``
feeds or more due, batches are parsed in ``PARSERS`` processes of their own (forked before
the first request, so they start in milliseconds; each loads the parser with its first
batch), on the other cores while this one downloads and stores. Fewer feeds are parsed in a
thread, and a batch with nothing to parse (every feed not modified, or failed) right here.
On 500 feeds (../shared/bench/peers-fetch) two processes took a cold pass from 4.2 s to
3.0-3.3 s on two idle cores; on cores other work keeps busy they gain nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import signal
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .config import Settings
from .errors import FeedError, StoreError
from .fetch import FetchPolicy, fetch_each, make_user_agent
from .health import decide, is_due
from .models import FeedState, FetchOutcome, FetchResult, Item
from .store.feed_rows import FeedRecords

if TYPE_CHECKING:
    from .store import Store

#: Feeds parsed together and written in one transaction.
BATCH = 50
#: Feeds due from which parsing runs in a process of its own: below, forking and sending the
#: bodies across cost more than the core it frees gives back.
PARSER_PROCESS_FROM = 100
#: Parsing processes: one for each core of a small machine.
PARSERS = 2


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
    from .store import Store

    store = Store(settings.db_url)
    try:
        store.sync_feeds(settings.feeds)
    except BaseException:
        store.close()
        raise
    return store


def open_feed_records(settings: Settings) -> FeedRecords:
    """What a fetch reads and writes: a SQLite file at this version's schema (or not there
    yet) opened without SQLAlchemy, else the store, which creates or migrates the database
    first. ``fetch_feeds`` brings the feeds in step with the configuration."""
    from .store.light import LightFeedStore

    return LightFeedStore.open(settings.db_url) or open_store(settings)


def fetch_feeds(
    settings: Settings,
    store: FeedRecords,
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
    store: FeedRecords, due: Mapping[str, FeedState], policy: FetchPolicy, now: dt.datetime
) -> list[FeedReport]:
    """Fetch every feed of ``due`` (by URL), store what each gave; reports in ``due``'s order."""
    reports: list[FeedReport] = []
    filling: list[FetchResult] = []
    parsing: deque[asyncio.Future[list[_Parsed]]] = deque()
    validators = {url: feed.validators for url, feed in due.items()}
    parser, parsers = _parser(len(due))
    try:
        async for result in fetch_each([feed.source for feed in due.values()], validators, policy):
            filling.append(result)
            if len(filling) >= BATCH:
                if not any(result.body for result in filling):
                    # Nothing to parse (not modified, or failed): no process needed.
                    reports += _store(store, parse_batch(filling, due, now), now)
                    filling = []
                    continue
                if len(parsing) >= parsers:
                    reports += _store(store, await parsing.popleft(), now)
                parsing.append(_parse_elsewhere(parser, filling, due, now))
                filling = []
        while parsing:
            reports += _store(store, await parsing.popleft(), now)
        reports += _store(store, parse_batch(filling, due, now), now)
    finally:
        parser.shutdown(wait=True, cancel_futures=True)
    order = {url: index for index, url in enumerate(due)}
    return sorted(reports, key=lambda report: order[report.url])


def _parser(due: int) -> tuple[Executor, int]:
    """Where batches are parsed, and how many at once: forked processes for many feeds,
    else a thread."""
    # Forked only where no other thread runs (the CLI, not the service with its web
    # server), and now, before any request: a fork copies no thread that is mid-work.
    if (
        due < PARSER_PROCESS_FROM
        or threading.active_count() > 1
        or "fork" not in multiprocessing.get_all_start_methods()
    ):
        return ThreadPoolExecutor(max_workers=1), 1
    pool = ProcessPoolExecutor(
        max_workers=PARSERS,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_become_parser,
    )
    for _ in range(PARSERS):
        pool.submit(_started)  # the processes start now, before any thread does
    return pool, PARSERS


def _become_parser() -> None:
    # Ctrl-C is this process's parent's to handle: it stops the run and this process with it.
    # The event loop's signal pipe is the parent's too: nothing here may write to it.
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _started() -> None:
    """Nothing: a task that makes the pool fork its processes now. They load the parser
    with their first batch, so a run whose feeds all answer 304 never loads it."""


def _parse_elsewhere(
    parser: Executor, results: list[FetchResult], due: Mapping[str, FeedState], now: dt.datetime
) -> asyncio.Future[list[_Parsed]]:
    """Parse ``results`` in ``parser``; if its process died, in a thread instead."""
    feeds = {result.source.url: due[result.source.url] for result in results}

    async def parsed() -> list[_Parsed]:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(parser, parse_batch, results, feeds, now)
        except BrokenProcessPool:
            return await asyncio.to_thread(parse_batch, results, feeds, now)

    return asyncio.ensure_future(parsed())


def parse_batch(
    results: Iterable[FetchResult], due: Mapping[str, FeedState], now: dt.datetime
) -> list[_Parsed]:
    """Parse each result and decide its feed's new state; touches no database. The bodies
    are left behind: nothing after parsing reads them."""
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
    result = replace(result, body=None)
    return _Parsed(result, feed, FetchOutcome(feed.url, update, tuple(items)))


def _failed(result: FetchResult, feed: FeedState, now: dt.datetime, exc: Exception) -> _Parsed:
    result = replace(result, error=f"could not read or store it: {_describe(exc)}", body=None)
    return _Parsed(result, feed, FetchOutcome(feed.url, decide(result, 0, feed, now)))


def _store(store: FeedRecords, batch: list[_Parsed], now: dt.datetime) -> list[FeedReport]:
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


def _store_alone(store: FeedRecords, parsed: _Parsed, now: dt.datetime) -> FeedReport:
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
