from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import zlib
from collections.abc import Iterator

import pytest

from digest.fetch import FetchPolicy, fetch_all, make_user_agent, retry_after_seconds
from digest.guard import address_problem
from digest.models import FeedSource, FetchResult, Section, Validators
from digest.parse import parse_feed

from .conftest import FeedServer, Route

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>A</title><link>https://a.example.com/1</link></item></channel></rss>"""
#: Tests serve on 127.0.0.1, which the address guard refuses unless told otherwise.
LOCAL = FetchPolicy(allow_private_hosts=True)


def source(url: str, name: str = "Feed") -> FeedSource:
    return FeedSource(name, url, Section.STOCKS)


def fetch(*urls: str, policy: FetchPolicy = LOCAL, **validators: Validators) -> list[FetchResult]:
    return asyncio.run(fetch_all([source(url) for url in urls], validators or None, policy))


def test_failing_feed_does_not_stop_the_others(feed_server: FeedServer) -> None:
    feed_server.routes["/good"] = Route(RSS)
    feed_server.routes["/broken"] = Route(b"oops", status=500)
    broken, good, refused = fetch(
        feed_server.url("/broken"), feed_server.url("/good"), "http://127.0.0.1:9/refused"
    )
    assert good.ok and good.body == RSS and good.status == 200
    assert not broken.ok and broken.status == 500 and (broken.error or "").startswith("HTTP 500")
    assert not refused.ok and (refused.error or "").startswith("cannot connect to 127.0.0.1:9")


def test_conditional_get_sends_validators_and_accepts_304(feed_server: FeedServer) -> None:
    feed_server.routes["/feed"] = Route(RSS, headers={"ETag": '"v1"'})
    url = feed_server.url("/feed")
    (first,) = fetch(url)
    assert first.validators.etag == '"v1"'
    (second,) = asyncio.run(fetch_all([source(url)], {url: first.validators}, LOCAL))
    assert second.not_modified and second.ok and second.body is None
    assert feed_server.requests[-1][1]["If-None-Match"] == '"v1"'


def test_a_server_sending_one_byte_a_second_is_cut_at_the_deadline(
    feed_server: FeedServer,
) -> None:
    feed_server.routes["/slow"] = Route(RSS, drip=1.0)
    (result,) = fetch(
        feed_server.url("/slow"), policy=FetchPolicy(deadline=1.5, allow_private_hosts=True)
    )
    assert not result.ok and "within 1.5 s" in (result.error or "")


def test_oversized_response_is_refused(feed_server: FeedServer) -> None:
    feed_server.routes["/big"] = Route(b"x" * 5000)
    (result,) = fetch(
        feed_server.url("/big"), policy=FetchPolicy(max_bytes=1000, allow_private_hosts=True)
    )
    assert not result.ok and "larger than 1000 bytes" in (result.error or "")
    assert result.body is None


@pytest.fixture(scope="module")
def gzip_bomb() -> Iterator[bytes]:
    """300 MiB of zeros, gzip-compressed to about 300 KB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    parts = [compressor.compress(zeros) for _ in range(300)]
    parts.append(compressor.flush())
    yield b"".join(parts)


def test_gzip_bomb_stops_at_the_decompressed_limit(
    feed_server: FeedServer, gzip_bomb: bytes
) -> None:
    assert len(gzip_bomb) < 1 << 20
    feed_server.routes["/bomb"] = Route(gzip_bomb, headers={"Content-Encoding": "gzip"})
    (result,) = fetch(feed_server.url("/bomb"))
    assert not result.ok and "larger than" in (result.error or "")


def test_compressed_feed_is_read(feed_server: FeedServer) -> None:
    feed_server.routes["/gz"] = Route(gzip.compress(RSS), headers={"Content-Encoding": "gzip"})
    (result,) = fetch(feed_server.url("/gz"))
    assert result.ok and result.body == RSS
    accepted = feed_server.requests[-1][1]["Accept-Encoding"]
    assert {"gzip", "deflate", "br"} <= {part.strip() for part in accepted.split(",")}


def test_brotli_feed_is_read(feed_server: FeedServer) -> None:
    import brotli

    feed_server.routes["/br"] = Route(brotli.compress(RSS), headers={"Content-Encoding": "br"})
    (result,) = fetch(feed_server.url("/br"))
    assert result.ok and result.body == RSS


def test_permanent_redirect_reports_the_new_address(feed_server: FeedServer) -> None:
    feed_server.routes["/old"] = Route(status=301, headers={"Location": "/new"})
    feed_server.routes["/new"] = Route(RSS)
    (result,) = fetch(feed_server.url("/old"))
    assert result.ok and result.body == RSS
    assert result.moved_to == feed_server.url("/new")


def test_temporary_redirect_keeps_the_address(feed_server: FeedServer) -> None:
    feed_server.routes["/old"] = Route(status=302, headers={"Location": "/new"})
    feed_server.routes["/new"] = Route(RSS)
    (result,) = fetch(feed_server.url("/old"))
    assert result.ok and result.moved_to is None


def test_permanent_after_temporary_redirect_keeps_the_address(feed_server: FeedServer) -> None:
    feed_server.routes["/a"] = Route(status=307, headers={"Location": "/b"})
    feed_server.routes["/b"] = Route(status=308, headers={"Location": "/c"})
    feed_server.routes["/c"] = Route(RSS)
    (result,) = fetch(feed_server.url("/a"))
    assert result.ok and result.moved_to is None


def test_redirect_loop_stops_after_five(feed_server: FeedServer) -> None:
    feed_server.routes["/loop"] = Route(status=302, headers={"Location": "/loop"})
    (result,) = fetch(feed_server.url("/loop"))
    assert result.error == "more than 5 redirects"
    assert len(feed_server.requests) == 6


def test_redirect_to_another_scheme_is_refused(feed_server: FeedServer) -> None:
    feed_server.routes["/r"] = Route(status=301, headers={"Location": "file:///etc/passwd"})
    (result,) = fetch(feed_server.url("/r"))
    assert result.error == "redirect to a non-HTTP URL: file:///etc/passwd"


def test_429_with_retry_after_is_reported(feed_server: FeedServer) -> None:
    feed_server.routes["/busy"] = Route(b"", status=429, headers={"Retry-After": "120"})
    (result,) = fetch(feed_server.url("/busy"))
    assert result.status == 429 and result.retry_after == 120.0


def test_retry_after_as_http_date() -> None:
    now = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
    assert retry_after_seconds("Tue, 24 Nov 2026 12:10:00 GMT", now) == 600.0
    assert retry_after_seconds("Tue, 24 Nov 2026 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None


def test_connection_reset_is_a_value(feed_server: FeedServer) -> None:
    feed_server.routes["/reset"] = Route(reset=True)
    (result,) = fetch(feed_server.url("/reset"))
    assert not result.ok and result.error


def test_user_agent_names_the_project_and_site(feed_server: FeedServer) -> None:
    feed_server.routes["/feed"] = Route(RSS)
    policy = FetchPolicy(
        user_agent=make_user_agent("https://digest.example.com"), allow_private_hosts=True
    )
    fetch(feed_server.url("/feed"), policy=policy)
    agent = feed_server.requests[-1][1]["User-Agent"]
    assert agent.startswith("market-digest/") and "https://digest.example.com" in agent


def test_feed_that_changes_encoding_between_requests(feed_server: FeedServer) -> None:
    text = """<?xml version="1.0" encoding="{}"?><rss version="2.0"><channel><title>t</title>
    <item><title>Société Générale</title><link>https://a.example.com/1</link></item>
    </channel></rss>"""
    url = feed_server.url("/feed")
    feed = source(url)
    now = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    titles = []
    for encoding in ("utf-8", "iso-8859-1", "utf-16"):
        feed_server.routes["/feed"] = Route(
            text.format(encoding).encode(encoding),
            headers={"Content-Type": "application/rss+xml"},
        )
        (result,) = fetch(url)
        assert result.body is not None
        titles += [item.title for item in parse_feed(result.body, feed, now, result.content_type)]
    assert titles == ["Société Générale"] * 3


def test_loopback_hosts_are_refused_by_default(feed_server: FeedServer) -> None:
    feed_server.routes["/feed"] = Route(RSS)
    literal, named = fetch(
        feed_server.url("/feed"),
        f"http://localhost:{feed_server.port}/feed",
        policy=FetchPolicy(),
    )
    assert literal.error == "refused: 127.0.0.1 is a loopback address"
    assert (named.error or "").startswith("refused: localhost resolves to")
    assert feed_server.requests == []


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("10.1.2.3", "10.1.2.3 is a private address"),
        ("169.254.169.254", "169.254.169.254 is a link-local address"),
        ("0.0.0.0", "0.0.0.0 is the unspecified address"),
        ("224.0.0.1", "224.0.0.1 is a multicast address"),
        ("100.64.0.1", "100.64.0.1 is not a global address"),
        ("::1", "::1 is a loopback address"),
        ("fe80::1%eth0", "fe80::1%eth0 is a link-local address"),
        ("fc00::1", "fc00::1 is a private address"),
        ("::ffff:127.0.0.1", "IPv4-mapped form of 127.0.0.1 is a loopback address"),
        ("64:ff9b::a00:1", "NAT64 form of 10.0.0.1 is a private address"),
        ("2002:a00:1::1", "6to4 form of 10.0.0.1 is a private address"),
    ],
)
def test_address_guard_names_the_address_and_why(address: str, problem: str) -> None:
    assert problem in (address_problem(address) or "")


@pytest.mark.parametrize("address", ["8.8.8.8", "2001:4860:4860::8888", "64:ff9b::808:808"])
def test_address_guard_lets_global_addresses_through(address: str) -> None:
    assert address_problem(address) is None


def test_feeds_sharing_a_host_wait_their_turn_without_timing_out(feed_server: FeedServer) -> None:
    # Twelve feeds of one publisher, 0.3 s each, two at a time: the last leaves after about
    # 1.5 s, longer than the deadline. The wait is ours, not the server's: nobody fails.
    paths = [f"/ticker/{n}" for n in range(12)]
    for path in paths:
        feed_server.routes[path] = Route(RSS, delay=0.3)
    policy = FetchPolicy(allow_private_hosts=True, per_host=2, deadline=1.0, connect_timeout=1.0)
    results = fetch(*(feed_server.url(path) for path in paths), policy=policy)
    assert [result.error for result in results] == [None] * 12
    waits = sorted(result.waited for result in results)
    assert waits[0] < 0.1 and waits[-1] >= 1.2  # the queue, reported
    assert all(result.elapsed < 1.0 for result in results)  # the server alone


def test_a_slow_server_still_meets_the_deadline_after_its_turn(feed_server: FeedServer) -> None:
    feed_server.routes["/slow"] = Route(RSS, delay=2.0)
    feed_server.routes["/fast"] = Route(RSS)
    policy = FetchPolicy(allow_private_hosts=True, per_host=1, deadline=1.0)
    slow, fast = fetch(feed_server.url("/slow"), feed_server.url("/fast"), policy=policy)
    assert slow.error == "no complete response within 1 s"
    assert fast.ok and fast.waited >= 0.9  # it waited for the slow one's slot, then went


def test_feeds_on_two_ports_of_one_address_are_two_hosts(feed_server: FeedServer) -> None:
    # Per-host turns are per server (host and port), as the connection pool counts them:
    # one slow feed on another port does not hold up this port's feed.
    other = FeedServer()
    try:
        other.routes["/slow"] = Route(RSS, delay=1.0)
        feed_server.routes["/fast"] = Route(RSS, delay=0.2)
        policy = FetchPolicy(allow_private_hosts=True, per_host=1)
        slow, fast = fetch(other.url("/slow"), feed_server.url("/fast"), policy=policy)
    finally:
        other.close()
    assert slow.ok and fast.ok
    assert fast.waited < 0.5
