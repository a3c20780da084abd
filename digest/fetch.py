"""Fetch many feeds at once over HTTP, politely, each to a result value.

A feed that fails yields a ``FetchResult`` with its error in words; it never stops the
others. Conditional GET (ETag / Last-Modified) keeps unchanged feeds cheap.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import aiohttp

from . import __version__
from .models import FeedSource, FetchResult, Validators


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """Limits on every request."""

    concurrency: int = 32
    connect_timeout: float = 10.0
    #: The whole response, first byte to last, must arrive within this many seconds.
    deadline: float = 30.0
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    user_agent: str = f"market-digest/{__version__}"


def make_user_agent(site_url: str) -> str:
    """A User-Agent that names the project and where its operator can be found."""
    return f"market-digest/{__version__} (+{site_url})"


async def fetch_all(
    sources: Iterable[FeedSource],
    validators: Mapping[str, Validators] | None = None,
    policy: FetchPolicy | None = None,
) -> list[FetchResult]:
    """Fetch every source concurrently; results come back in the order of ``sources``."""
    policy = policy or FetchPolicy()
    validators = validators or {}
    limit = asyncio.Semaphore(policy.concurrency)
    connector = aiohttp.TCPConnector(limit=policy.concurrency, ttl_dns_cache=300)
    headers = {"User-Agent": policy.user_agent, "Accept": _ACCEPT}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one(source: FeedSource) -> FetchResult:
            async with limit:
                return await fetch_one(session, source, validators.get(source.url), policy)

        return list(await asyncio.gather(*(one(source) for source in sources)))


_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


async def fetch_one(
    session: aiohttp.ClientSession,
    source: FeedSource,
    validators: Validators | None,
    policy: FetchPolicy,
) -> FetchResult:
    """One conditional GET of ``source``; every failure comes back as a value."""
    headers = {}
    if validators is not None:
        if validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
    timeout = aiohttp.ClientTimeout(
        total=policy.deadline, sock_connect=policy.connect_timeout, connect=policy.connect_timeout
    )
    started = time.perf_counter()

    def failed(status: int | None, error: str) -> FetchResult:
        return FetchResult(source, status, error=error, elapsed=time.perf_counter() - started)

    try:
        async with session.get(
            source.url, headers=headers, timeout=timeout, max_redirects=policy.max_redirects
        ) as response:
            if response.status == 304:
                return FetchResult(
                    source,
                    304,
                    validators=validators or Validators(),
                    elapsed=time.perf_counter() - started,
                )
            if response.status >= 400:
                return failed(
                    response.status, f"HTTP {response.status} {response.reason or ''}".strip()
                )
            declared = response.content_length
            if declared is not None and declared > policy.max_bytes:
                return failed(
                    response.status, f"response of {declared} bytes exceeds {policy.max_bytes}"
                )
            body = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > policy.max_bytes:
                    return failed(response.status, f"response exceeds {policy.max_bytes} bytes")
            return FetchResult(
                source,
                response.status,
                body=bytes(body),
                validators=Validators(
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                ),
                elapsed=time.perf_counter() - started,
            )
    except TimeoutError:
        return failed(None, f"no complete response within {policy.deadline:g} s")
    except aiohttp.TooManyRedirects:
        return failed(None, f"more than {policy.max_redirects} redirects")
    except aiohttp.ClientResponseError as exc:
        return failed(exc.status, f"bad response: {exc.message}")
    except aiohttp.ClientConnectorError as exc:
        return failed(None, f"cannot connect: {exc.os_error.strerror or exc.os_error}")
    except aiohttp.ClientError as exc:
        return failed(None, f"{type(exc).__name__}: {exc}")
