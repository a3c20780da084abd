"""The web app under load: 50 page loads at once with 100,000 subscribers in the database,
while a reader's one-click unsubscribe is posted, beside the server's own speed measured in
the same run (an empty answer, /favicon.ico, under the same load).

The app runs as ``digest serve`` runs it (uvicorn, one process of its own) on a SQLite file
holding the demo edition, sent to every subscriber (100,000 rows in the send ledger).

    python -m bench.web [--subscribers 100000] [--concurrency 50] [--rounds 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import yaml

from digest.config import load_settings
from digest.lifecycle import State
from digest.pipeline import make_site
from digest.store import Store, schema
from digest.tokens import Purpose

from .pipeline import NOW, SAMPLES, SOURCE, edition_of

SERVER = """
import sys, uvicorn
from digest.config import load_settings
from digest.store import Store
from digest.web import make_app
settings = load_settings(__import__("pathlib").Path(sys.argv[1]))
store = Store(settings.db_url)
uvicorn.run(make_app(settings, store), host="127.0.0.1", port=int(sys.argv[2]),
            log_level="warning", access_log=False)
"""


def make_database(folder: Path, count: int) -> tuple[Path, str]:
    """A config and database with the demo edition sent to ``count`` subscribers; returns
    the config and the unsubscribe link of one of them."""
    from digest.parse import parse_feed

    items = [
        item
        for path in sorted(SAMPLES.glob("*.xml"))
        for item in parse_feed(path.read_bytes(), SOURCE, NOW)
    ]
    digest, _ = edition_of(items)
    config = folder / "feeds.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "edition": {
                    "title": "Market Digest",
                    "tagline": "Daily stocks & crypto headlines, free to your inbox",
                    "send_at": "07:00",
                    "timezone": "America/New_York",
                    "from": "Market Digest <digest@example.com>",
                    "site_url": "https://d.example.com",
                    "postal_address": "1 Bench Street, Springfield",
                },
                "feeds": [{"name": "Bench", "url": SOURCE.url, "section": "stocks"}],
            }
        ),
        encoding="utf-8",
    )
    settings = load_settings(config, env={})
    store = Store(settings.db_url)
    created = dt.datetime(2026, 1, 1)
    with store.begin() as c:
        c.execute(
            schema.subscribers.insert(),
            [
                {
                    "email": f"reader{n}@example.com",
                    "email_key": f"reader{n}@example.com",
                    "name": "",
                    "active": True,
                    "created_at": created,
                    "watchlist": "",
                    "state": "active",
                    "public_id": secrets.token_hex(16),
                }
                for n in range(count)
            ],
        )
    store.save_edition(digest, NOW)
    store.plan_deliveries(digest.date, lambda email: f"<{email}@bench>")
    with store.begin() as c:
        c.execute(schema.deliveries.update().values(status="sent", sent_at=NOW))
    person = store.subscriber(f"reader{count // 2}@example.com")
    assert person is not None
    token = make_site(settings, store).token(Purpose.UNSUBSCRIBE, person.public_id, NOW)
    store.close()
    return config, f"/unsubscribe?t={token}"


def _get(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
    return time.perf_counter() - started


def load(base: str, paths: Sequence[str], concurrency: int, rounds: int) -> list[float]:
    """``rounds`` times, ``concurrency`` loads at once; each load's seconds."""
    times: list[float] = []
    lock = threading.Lock()

    def worker(path: str) -> None:
        took = _get(base + path)
        with lock:
            times.append(took)

    for _ in range(rounds):
        threads = [
            threading.Thread(target=worker, args=(paths[n % len(paths)],))
            for n in range(concurrency)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return times


def unsubscribe_during(
    base: str, paths: Sequence[str], link: str, concurrency: int
) -> tuple[float, list[float]]:
    """The seconds a one-click unsubscribe POST takes while ``concurrency`` pages load."""
    answer: list[float] = []

    def post() -> None:
        time.sleep(0.05)  # the page loads are in flight by now
        request = urllib.request.Request(base + link, data=b"List-Unsubscribe=One-Click")
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
        answer.append(time.perf_counter() - started)

    poster = threading.Thread(target=post)
    poster.start()
    times = load(base, paths, concurrency, 1)
    poster.join()
    return answer[0], times


def _describe(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"median {statistics.median(ordered) * 1000:,.0f} ms, p95 {p95 * 1000:,.0f} ms"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.web")
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="bench-web-"))
    server = None
    try:
        started = time.perf_counter()
        config, link = make_database(folder, args.subscribers)
        made = time.perf_counter() - started
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(config), str(port)])
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(base + "/healthz")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        date = NOW.date().isoformat()
        pages = ["/", f"/archive/{date}", "/archive/"]
        _get(base + "/")  # warm: the edition decoded and the pages rendered once
        for path in pages:
            _get(base + path)
        print(
            f"web ({args.subscribers:,} subscribers, {args.concurrency} loads at once, "
            f"database made in {made:.1f} s):"
        )
        wall = time.perf_counter()
        times = load(base, pages, args.concurrency, args.rounds)
        wall = time.perf_counter() - wall
        base_wall = time.perf_counter()
        baseline = load(base, ["/favicon.ico"], args.concurrency, args.rounds)
        base_wall = time.perf_counter() - base_wall
        print(
            f"  pages (/, an edition, the archive)  {len(times) / wall:>8,.0f} loads/s  "
            f"{_describe(times)}"
        )
        print(
            f"  baseline: an empty answer         {len(baseline) / base_wall:>8,.0f} loads/s  "
            f"{_describe(baseline)}"
        )
        post, during = unsubscribe_during(base, pages, link, args.concurrency)
        print(
            f"  one-click unsubscribe POST while {args.concurrency} pages load: "
            f"{post * 1000:,.0f} ms (those pages: {_describe(during)})"
        )
        store = Store(load_settings(config, env={}).db_url)
        left = store.record(f"reader{args.subscribers // 2}@example.com")
        assert left is not None and left.state is State.UNSUBSCRIBED, "the POST did nothing"
        store.close()
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
