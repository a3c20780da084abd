"""Parse every hostile and broken feed: failures, total and worst per-file time and memory,
beside plain feedparser (its own sanitizer on) on the same files."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import time
import tracemalloc
from pathlib import Path

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
NOW = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)


def main() -> None:
    import feedparser

    from digest.models import FeedSource, Section
    from digest.parse import parse_feed

    files = sorted(
        [
            *(SHARED / "hostile-feeds").rglob("*.xml"),
            *(SHARED / "hostile-feeds-extra").glob("*.xml"),
        ]
    )
    source = FeedSource("H", "https://h.example.com/rss", Section.STOCKS)
    failures, worst_time, worst_memory, total = [], 0.0, 0, 0.0
    bodies = [path.read_bytes() for path in files]
    for path, body in zip(files, bodies, strict=True):
        started = time.perf_counter()
        try:
            parse_feed(body, source, NOW)
        except Exception as exc:
            failures.append(f"{path.name}: {type(exc).__name__}")
        elapsed = time.perf_counter() - started
        total += elapsed
        worst_time = max(worst_time, elapsed)
    # Memory in a second pass: tracing slows parsing down and would skew the times.
    for body in bodies:
        tracemalloc.start()
        with contextlib.suppress(Exception):
            parse_feed(body, source, NOW)
        worst_memory = max(worst_memory, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    feedparser.SANITIZE_HTML = True
    started = time.perf_counter()
    for body in bodies:
        feedparser.parse(io.BytesIO(body))
    baseline = time.perf_counter() - started
    feedparser.SANITIZE_HTML = False
    print(f"hostile corpus: {len(files)} files, {len(failures)} failures")
    print(
        f"  parse all                           {total:8.2f} s   "
        f"baseline feedparser {baseline:.2f} s ({baseline / total:.1f}x)"
    )
    print(f"  slowest file                        {worst_time * 1000:8.1f} ms (bound: 2 s)")
    print(f"  most memory for one file            {worst_memory / 1e6:8.1f} MB (bound: 200 MB)")
    for failure in failures:
        print(f"  failed: {failure}")


if __name__ == "__main__":
    main()
