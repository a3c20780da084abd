from __future__ import annotations

import asyncio

from digest.fetch import FetchPolicy, fetch_all, make_user_agent
from digest.models import FeedSource, Section, Validators

from .conftest import FeedServer, Route

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>A</title><link>https://a.example.com/1</link></item></channel></rss>"""


def source(url: str, name: str = "Feed") -> FeedSource:
    return FeedSource(name, url, Section.STOCKS)


def test_failing_feed_does_not_stop_the_others(feed_server: FeedServer) -> None:
    feed_server.routes["/good"] = Route(RSS)
    feed_server.routes["/broken"] = Route(b"oops", status=500)
    results = asyncio.run(
        fetch_all(
            [
                source(feed_server.url("/broken")),
                source(feed_server.url("/good")),
                source("http://127.0.0.1:9/refused"),
            ]
        )
    )
    broken, good, refused = results
    assert good.ok and good.body == RSS and good.status == 200
    assert not broken.ok and broken.status == 500 and broken.error.startswith("HTTP 500")
    assert not refused.ok and refused.error.startswith("cannot connect")


def test_conditional_get_sends_validators_and_accepts_304(feed_server: FeedServer) -> None:
    feed_server.routes["/feed"] = Route(RSS, headers={"ETag": '"v1"'})
    url = feed_server.url("/feed")
    (first,) = asyncio.run(fetch_all([source(url)]))
    assert first.validators.etag == '"v1"'
    (second,) = asyncio.run(fetch_all([source(url)], {url: first.validators}))
    assert second.not_modified and second.ok and second.body is None
    assert feed_server.requests[-1][1]["If-None-Match"] == '"v1"'


def test_slow_response_is_cut_at_the_deadline(feed_server: FeedServer) -> None:
    feed_server.routes["/slow"] = Route(RSS, delay=2.0)
    (result,) = asyncio.run(
        fetch_all([source(feed_server.url("/slow"))], policy=FetchPolicy(deadline=0.5))
    )
    assert not result.ok and "within 0.5 s" in (result.error or "")


def test_oversized_response_is_refused(feed_server: FeedServer) -> None:
    feed_server.routes["/big"] = Route(b"x" * 5000)
    (result,) = asyncio.run(
        fetch_all([source(feed_server.url("/big"))], policy=FetchPolicy(max_bytes=1000))
    )
    assert not result.ok and "1000" in (result.error or "")
    assert result.body is None


def test_user_agent_names_the_project_and_site(feed_server: FeedServer) -> None:
    feed_server.routes["/feed"] = Route(RSS)
    policy = FetchPolicy(user_agent=make_user_agent("https://digest.example.com"))
    asyncio.run(fetch_all([source(feed_server.url("/feed"))], {}, policy))
    agent = feed_server.requests[-1][1]["User-Agent"]
    assert agent.startswith("market-digest/") and "https://digest.example.com" in agent


def test_validators_default_to_unconditional(feed_server: FeedServer) -> None:
    feed_server.routes["/feed"] = Route(RSS)
    asyncio.run(fetch_all([source(feed_server.url("/feed"))], {"other": Validators("x")}))
    assert "If-None-Match" not in feed_server.requests[-1][1]
