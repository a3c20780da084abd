"""Fetch and parse 500 feeds served with real latency, against a naive client.

500 feeds (the real-feed corpus repeated, about 24 MB) are served by an aiohttp server in
another process on 250 loopback addresses (two feeds per host, as many publishers), each
response held back 50 to 200 ms. Printed: the cold pass (fetch and parse everything), the
second pass (every feed answers 304), the physical floor (the slowest single response), and a
naive client (one request after the other, feedparser on each), plus the client's peak memory.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import multiprocessing
import random
import resource
import time
import urllib.request
from pathlib import Path
from typing import Any

REAL_FEEDS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "real-feeds"
FEEDS = 500
HOSTS = 250
LATENCY = (0.05, 0.2)
BASELINE_SAMPLE = 40
PORT_RANGE_START = 18000


def host(index: int) -> str:
    return f"127.0.1.{index % HOSTS + 1}"


def documents() -> list[bytes]:
    files = sorted(path for path in REAL_FEEDS.glob("*.*") if path.name != "README.md")
    corpus = [path.read_bytes() for path in files]
    return [corpus[index % len(corpus)] for index in range(FEEDS)]


def latency(index: int) -> float:
    return random.Random(index).uniform(*LATENCY)


def serve(port: int, ready: Any) -> None:
    from aiohttp import web

    bodies = documents()
    tags = [f'"{hashlib.sha1(body).hexdigest()}"' for body in bodies]

    async def feed(request: web.Request) -> web.Response:
        index = int(request.match_info["index"])
        await asyncio.sleep(latency(index))
        if request.headers.get("If-None-Match") == tags[index]:
            return web.Response(status=304, headers={"ETag": tags[index]})
        return web.Response(
            body=bodies[index], content_type="application/xml", headers={"ETag": tags[index]}
        )

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/feed/{index}", feed)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        for number in range(HOSTS):
            await web.TCPSite(runner, host(number), port).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def url(port: int, index: int) -> str:
    return f"http://{host(index)}:{port}/feed/{index}"


def client(port: int, results: Any) -> None:
    from digest.fetch import FetchPolicy, fetch_all
    from digest.models import FeedSource, Section
    from digest.parse import parse_feed

    sources = [FeedSource(f"f{n}", url(port, n), Section.STOCKS) for n in range(FEEDS)]
    policy = FetchPolicy(allow_private_hosts=True)
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    fetched = asyncio.run(fetch_all(sources, None, policy))
    fetch_only = time.perf_counter() - started
    items = sum(len(parse_feed(r.body, r.source, now, r.content_type)) for r in fetched if r.body)
    cold = time.perf_counter() - started
    errors = [r.error for r in fetched if r.error]
    validators = {r.source.url: r.validators for r in fetched}
    started = time.perf_counter()
    again = asyncio.run(fetch_all(sources, validators, policy))
    warm = time.perf_counter() - started
    not_modified = sum(1 for r in again if r.not_modified)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results.put((cold, fetch_only, warm, items, errors, not_modified, peak_kib))


def naive(port: int) -> float:
    """Seconds per feed for one request after the other, feedparser with its defaults."""
    import feedparser

    started = time.perf_counter()
    for index in range(BASELINE_SAMPLE):
        with urllib.request.urlopen(url(port, index), timeout=30) as response:
            feedparser.parse(io.BytesIO(response.read()))
    return (time.perf_counter() - started) / BASELINE_SAMPLE


def floor(port: int) -> float:
    slowest = max(range(FEEDS), key=latency)
    started = time.perf_counter()
    with urllib.request.urlopen(url(port, slowest), timeout=30) as response:
        response.read()
    return time.perf_counter() - started


def main() -> None:
    context = multiprocessing.get_context("spawn")
    port = PORT_RANGE_START + random.randrange(1000)
    ready = context.Event()
    server = context.Process(target=serve, args=(port, ready), daemon=True)
    server.start()
    try:
        if not ready.wait(60):
            raise SystemExit("bench: the feed server did not start")
        total = sum(len(body) for body in documents())
        physical = floor(port)
        results = context.Queue()
        worker = context.Process(target=client, args=(port, results))
        worker.start()
        cold, fetch_only, warm, items, errors, not_modified, peak_kib = results.get(timeout=600)
        worker.join()
        per_feed = naive(port)
    finally:
        server.terminate()
        server.join()
    print(
        f"fetch: {FEEDS} feeds, {total / 1e6:.1f} MB, {HOSTS} hosts, "
        f"{LATENCY[0] * 1000:.0f}-{LATENCY[1] * 1000:.0f} ms latency each"
    )
    print(f"  physical floor (slowest response)   {physical:8.2f} s")
    print(
        f"  cold pass, fetch and parse          {cold:8.2f} s   {cold / physical:5.2f}x floor"
        f"   {items} items, {len(errors)} errors"
    )
    print(
        f"    of which fetching                 {fetch_only:8.2f} s   "
        f"{fetch_only / physical:5.2f}x floor"
    )
    print(
        f"  second pass, all 304                {warm:8.2f} s   {warm / physical:5.2f}x floor"
        f"   {not_modified} not modified"
    )
    baseline = per_feed * FEEDS
    print(
        f"  naive sequential + feedparser       {baseline:8.2f} s   (measured on "
        f"{BASELINE_SAMPLE} feeds, x{FEEDS // BASELINE_SAMPLE}; cold pass is "
        f"{baseline / cold:.0f}x faster)"
    )
    print(f"  client peak memory                  {peak_kib / 1024:8.0f} MB")


if __name__ == "__main__":
    main()
