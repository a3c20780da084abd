"""Parse, build and send throughput, each beside a simple baseline measured in this run.

- parse: our parser (feedparser without its sanitizer, then one nh3 pass) against plain
  ``feedparser.parse`` with its built-in sanitizer;
- build: clustering and ranking an edition, against grouping by exact title;
- send: rendering and sending over one SMTP connection to aiosmtpd on 127.0.0.1, against a
  new connection per message.
"""

from __future__ import annotations

import datetime as dt
import io
import smtplib
import sys
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import TypeVar

from digest.message import Publisher, compose, make_email, make_publisher, to_bytes
from digest.models import Digest, FeedSource, Item, Method, Section, Subscriber
from digest.outbox import outbox_server
from digest.parse import parse_feed
from digest.rank import build_digest
from digest.send import Mailer
from digest.site import Site

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples" / "feeds"
REAL_FEEDS = REPO.parent / "shared" / "data" / "real-feeds"
NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
SOURCE = FeedSource("Bench", "https://bench.example.com/rss", Section.STOCKS)
SENDER = "Market Digest <digest@example.com>"
T = TypeVar("T")


def timed(function: Callable[[], T], repeat: int = 3) -> tuple[float, T]:
    """Best wall time of ``repeat`` runs, and the last result."""
    best = float("inf")
    result: T
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def row(label: str, ours: float, baseline: float, unit: str, higher_is_better: bool) -> None:
    ratio = ours / baseline if higher_is_better else baseline / ours
    print(
        f"  {label:<34} {ours:>12,.1f} {unit:<10} baseline {baseline:>12,.1f} {unit:<10}"
        f" ({ratio:.3g}x)"
    )


def bench_parse(name: str, files: list[Path]) -> list[Item]:
    import feedparser

    documents = [path.read_bytes() for path in files]

    def ours() -> list[Item]:
        return [item for body in documents for item in parse_feed(body, SOURCE, NOW)]

    def baseline() -> int:
        feedparser.SANITIZE_HTML = True
        try:
            return sum(len(feedparser.parse(io.BytesIO(body)).entries) for body in documents)
        finally:
            feedparser.SANITIZE_HTML = False

    our_time, items = timed(ours)
    base_time, entries = timed(baseline)
    print(f"parse {name}: {len(files)} files, {len(items)} items ({entries} feedparser entries)")
    row("items parsed per second", len(items) / our_time, entries / base_time, "items/s", True)
    return items


def bench_build(name: str, items: list[Item]) -> None:
    """The default build (title vectors cached, as the store keeps them) beside the light
    method's, and the time the model takes to embed the titles the first time."""
    from digest.embedding import embed

    window = (min(item.published for item in items), NOW + dt.timedelta(days=1))
    embed_time, vectors = timed(lambda: embed([item.title for item in items]), repeat=1)

    def build(method: Method) -> int:
        digest = build_digest(
            items,
            date=NOW.date(),
            title="Bench",
            tagline="t",
            window=window,
            max_stories=30,
            clustering=method,
            vectors=vectors if method is Method.EMBEDDING else None,
        )
        return digest.story_count

    our_time, _ = timed(lambda: build(Method.EMBEDDING))
    base_time, _ = timed(lambda: build(Method.LIGHT))
    print(f"build {name}: {len(items)} items (embedding them the first time: {embed_time:.2f} s)")
    row("build, vectors cached (vs light)", our_time * 1000, base_time * 1000, "ms", False)


def edition_of(items: list[Item]) -> tuple[Digest, Publisher]:
    """The edition the benchmarks send, built from ``items``, and its publisher."""
    digest = build_digest(
        items,
        date=NOW.date(),
        title="Market Digest",
        tagline="Daily stocks & crypto headlines, free to your inbox",
        window=(min(item.published for item in items), NOW + dt.timedelta(days=1)),
        max_stories=30,
    )
    publisher = make_publisher(
        Site("https://d.example.com", ("bench signing key",)),
        SENDER,
        "Market Digest",
        "1 Bench Street, Springfield",
    )
    return digest, publisher


def bench_send(items: list[Item], count: int = 200) -> None:
    digest, publisher = edition_of(items)
    recipients = [Subscriber(f"reader{n}@example.com", public_id=f"{n:032x}") for n in range(count)]

    def message_for(subscriber: Subscriber) -> EmailMessage:
        # The path every send takes: the subscriber's email, then its MIME message.
        return compose(make_email(digest, publisher, subscriber), SENDER, NOW)

    import tempfile

    with tempfile.TemporaryDirectory() as folder, outbox_server(Path(folder)) as url:

        def ours() -> None:
            mailer = Mailer(url)
            for subscriber in recipients:
                mailer.send(to_bytes(message_for(subscriber)), SENDER, subscriber.email)
            mailer.close()

        def baseline() -> None:
            host, port = url.removeprefix("smtp://").split(":")
            for subscriber in recipients:
                with smtplib.SMTP(host, int(port)) as client:
                    client.send_message(
                        message_for(subscriber), "digest@example.com", [subscriber.email]
                    )

        our_time, _ = timed(ours, repeat=1)
        base_time, _ = timed(baseline, repeat=1)
    print(f"send: {count} personalised messages of {digest.story_count} stories to aiosmtpd")
    row("messages sent per second", count / our_time, count / base_time, "msg/s", True)


def main() -> None:
    samples = sorted(SAMPLES.glob("*.xml"))
    real = sorted(path for path in REAL_FEEDS.glob("*.*") if path.name != "README.md")
    if not real:
        sys.exit(f"bench: {REAL_FEEDS} is missing; the real-feed corpus lives in ../shared/")
    sample_items = bench_parse("samples", samples)
    real_items = bench_parse("real-feeds", real)
    bench_build("samples", sample_items)
    bench_build("real-feeds", real_items)
    bench_send(sample_items)


if __name__ == "__main__":
    main()
