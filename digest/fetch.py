"""Fetch many feeds at once over HTTP, politely and safely, each to a result value.

One aiohttp session with keep-alive and compression, a global and a per-host limit, a
conditional GET on every request, and limits on everything a server controls: connect time,
the whole response's time, its size after decompression, and redirects (each hop checked by
the address guard). A feed that fails yields a ``FetchResult`` with its error in words; it
never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import aiohttp

from . import __version__
from .guard import BlockedAddressError, check_host, make_resolver
from .models import FeedSource, FetchResult, Validators

_PERMANENT = {301, 308}
_REDIRECTS = {301, 302, 303, 307, 308}
_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """Limits on every request."""

    #: Requests in flight at once (half the usual limit of 1,024 open files), and to one
    #: host: a publisher sees at most two of ours.
    concurrency: int = 512
    per_host: int = 2
    connect_timeout: float = 10.0
    #: The whole response, redirects and last byte included, must arrive within this.
    deadline: float = 30.0
    #: Largest body accepted, counted after decompression, so a gzip bomb stops here.
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    user_agent: str = f"market-digest/{__version__}"
    allow_private_hosts: bool = False


def make_user_agent(site_url: str) -> str:
    """A User-Agent that names the project and where its operator can be found."""
    return f"market-digest/{__version__} (+{site_url})"


def make_session(policy: FetchPolicy) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=policy.concurrency,
        limit_per_host=policy.per_host,
        ttl_dns_cache=300,
        resolver=make_resolver(policy.allow_private_hosts),
    )
    headers = {"User-Agent": policy.user_agent, "Accept": _ACCEPT}
    return aiohttp.ClientSession(connector=connector, headers=headers)


class Slots:
    """Our own queue for connections, so that time spent waiting for a free one is not
    counted against the server: at most ``concurrency`` requests, ``per_host`` to one host."""

    def __init__(self, policy: FetchPolicy) -> None:
        self._all = asyncio.Semaphore(policy.concurrency)
        self._per_host = policy.per_host
        self._hosts: dict[str, asyncio.Semaphore] = {}

    @contextlib.asynccontextmanager
    async def slot(self, url: str) -> AsyncIterator[float]:
        """Wait for a free slot for ``url``'s host; yields the seconds waited."""
        queue = self._hosts.setdefault(origin(url), asyncio.Semaphore(self._per_host))
        started = time.perf_counter()
        async with queue, self._all:
            yield time.perf_counter() - started


def origin(url: str) -> str:
    """The server a URL is served by, ``host:port``, as the connection pool counts hosts:
    two ports of one address are two servers."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = 443 if scheme == "https" else 80
    return f"{(parts.hostname or '').lower()}:{port}"


async def fetch_all(
    sources: Iterable[FeedSource],
    validators: Mapping[str, Validators] | None = None,
    policy: FetchPolicy | None = None,
) -> list[FetchResult]:
    """Fetch every source concurrently; results come back in the order of ``sources``.

    Feeds of one host wait their turn (``per_host`` at a time); the wait is reported on each
    result and never counts toward its timeouts, which measure the server alone.
    """
    sources = list(sources)
    results: list[FetchResult | None] = [None] * len(sources)
    async for index, result in _fetch_numbered(sources, validators, policy):
        results[index] = result
    return [result for result in results if result is not None]


async def fetch_each(
    sources: Iterable[FeedSource],
    validators: Mapping[str, Validators] | None = None,
    policy: FetchPolicy | None = None,
) -> AsyncIterator[FetchResult]:
    """Fetch every source concurrently, as ``fetch_all`` does; yield each result as soon as
    it is complete, so that the caller can work on it while the others are on their way."""
    async for _index, result in _fetch_numbered(list(sources), validators, policy):
        yield result


async def _fetch_numbered(
    sources: list[FeedSource],
    validators: Mapping[str, Validators] | None,
    policy: FetchPolicy | None,
) -> AsyncIterator[tuple[int, FetchResult]]:
    policy = policy or FetchPolicy()
    validators = validators or {}
    slots = Slots(policy)

    async def fetch(index: int, source: FeedSource) -> tuple[int, FetchResult]:
        async with slots.slot(source.url) as waited:
            result = await fetch_one(session, source, validators.get(source.url), policy)
        return index, replace(result, waited=waited)

    async with make_session(policy) as session:
        tasks = [asyncio.create_task(fetch(n, source)) for n, source in enumerate(sources)]
        try:
            for next_done in asyncio.as_completed(tasks):
                yield await next_done
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def fetch_one(
    session: aiohttp.ClientSession,
    source: FeedSource,
    validators: Validators | None,
    policy: FetchPolicy,
) -> FetchResult:
    """One conditional GET of ``source``, redirects followed; every failure is a value.

    The deadline starts here, when the request leaves: the caller does the queueing.
    """
    started = time.perf_counter()
    result = FetchResult(source, None)
    try:
        async with asyncio.timeout(policy.deadline):
            result = await _follow(session, source, validators, policy)
    except TimeoutError:
        result = replace(result, error=f"no complete response within {policy.deadline:g} s")
    except BlockedAddressError as exc:
        result = replace(result, error=str(exc))
    except aiohttp.ClientConnectorError as exc:
        reason = exc.os_error
        error = str(reason) if isinstance(reason, BlockedAddressError) else _connect_reason(exc)
        result = replace(result, error=error)
    except aiohttp.ClientPayloadError as exc:
        result = replace(result, error=f"broken response body: {_first_line(exc)}")
    except aiohttp.ClientResponseError as exc:
        result = replace(result, status=exc.status, error=f"bad response: {exc.message}")
    except aiohttp.ServerDisconnectedError:
        result = replace(result, error="the server closed the connection")
    except aiohttp.ClientError as exc:
        result = replace(result, error=f"{type(exc).__name__}: {_first_line(exc)}")
    except (ConnectionError, OSError) as exc:
        result = replace(result, error=f"connection failed: {exc.strerror or exc}")
    return replace(result, elapsed=time.perf_counter() - started)


async def _follow(
    session: aiohttp.ClientSession,
    source: FeedSource,
    validators: Validators | None,
    policy: FetchPolicy,
) -> FetchResult:
    headers = {}
    if validators is not None:
        if validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
    # Only the socket's own connect: aiohttp's "connect" would count the wait for a pooled
    # connection too, which is our queue, not the server.
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=policy.connect_timeout)
    url = source.url
    moved_to: str | None = None
    still_permanent = True
    for _hop in range(policy.max_redirects + 1):
        if not policy.allow_private_hosts:
            check_host(urlsplit(url).hostname or "")
        async with session.get(
            url, headers=headers, timeout=timeout, allow_redirects=False
        ) as response:
            if response.status in _REDIRECTS and "Location" in response.headers:
                target = urljoin(url, response.headers["Location"])
                if urlsplit(target).scheme not in ("http", "https"):
                    return FetchResult(
                        source, response.status, error=f"redirect to a non-HTTP URL: {target}"
                    )
                still_permanent = still_permanent and response.status in _PERMANENT
                if still_permanent:
                    moved_to = target
                url = target
                continue
            return await _read(response, source, validators, policy, moved_to)
    return FetchResult(source, None, error=f"more than {policy.max_redirects} redirects")


async def _read(
    response: aiohttp.ClientResponse,
    source: FeedSource,
    validators: Validators | None,
    policy: FetchPolicy,
    moved_to: str | None,
) -> FetchResult:
    status = response.status
    if status == 304:
        return FetchResult(source, 304, validators=validators or Validators(), moved_to=moved_to)
    if status >= 400:
        return FetchResult(
            source,
            status,
            error=f"HTTP {status} {response.reason or ''}".strip(),
            retry_after=retry_after_seconds(
                response.headers.get("Retry-After"), dt.datetime.now(dt.UTC)
            )
            if status in (429, 503)
            else None,
            moved_to=moved_to,
        )
    declared = response.content_length
    too_big = f"response larger than {policy.max_bytes} bytes"
    if (
        declared is not None
        and declared > policy.max_bytes
        and not response.headers.get("Content-Encoding")
    ):
        return FetchResult(source, status, error=too_big, moved_to=moved_to)
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > policy.max_bytes:
            return FetchResult(source, status, error=too_big, moved_to=moved_to)
    return FetchResult(
        source,
        status,
        body=bytes(body),
        validators=Validators(
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
        ),
        content_type=response.headers.get("Content-Type"),
        moved_to=moved_to,
    )


def retry_after_seconds(value: str | None, now: dt.datetime) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return max(0.0, (moment - now).total_seconds())


def _connect_reason(exc: aiohttp.ClientConnectorError) -> str:
    reason = exc.os_error
    return f"cannot connect to {exc.host}:{exc.port}: {reason.strerror or reason}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
