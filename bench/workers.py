"""Sending one edition with several ``digest send --worker`` processes sharing a PostgreSQL
ledger, beside the single-process SQLite send and the plain smtplib loop, all in one run.

Every path sends to one discarding SMTP sink on 127.0.0.1 (bench/sink.py). PostgreSQL is a
throwaway cluster on a Unix socket in a temporary folder (tests/postgres.py: Debian's
``postgresql`` package, durability off as for the tests); without one, that part says so and
the rest runs. Workers are processes, each with one SMTP connection and its own store, started
together once their edition is ready, timed from the start to the last one's end. Each send
goes through ``digest.dispatch`` as ``digest send`` does: the ledger claims, the in-flight mark
before each message (the journal on SQLite; a row update in the ledger for workers) and the
answers recorded.

    python -m bench.workers [--subscribers 10000]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import multiprocessing
import secrets
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from digest.addresses import address_key
from digest.dispatch import SendPolicy, dispatch
from digest.message import make_message_id
from digest.store import Store, schema
from digest.wire import EditionMessages

from .pipeline import NOW
from .sink import Sink, serve_sink
from .wire import Run, demo_edition, send, subscribers

WORKERS = (1, 2, 4)
#: A lease longer than any run here: nobody dies in a benchmark.
LEASE = dt.timedelta(minutes=10)


def _fill(url: str, count: int) -> None:
    """The demo edition and ``count`` subscribers, all planned."""
    digest, publisher = demo_edition()
    store = Store(url)
    try:
        store.save_edition(digest, NOW)
        rows = [
            {
                "email": person.email,
                "email_key": address_key(person.email),
                "name": person.name,
                "watchlist": " ".join(person.watchlist),
                "active": True,
                "state": "active",
                "created_at": NOW.replace(tzinfo=None),
                "public_id": secrets.token_hex(16),
            }
            for person in subscribers(count)
        ]
        with store.begin() as connection:
            connection.execute(schema.subscribers.insert(), rows)
        store.plan_deliveries(
            digest.date, lambda email: make_message_id(digest.date, email, publisher.sender)
        )
    finally:
        store.close()


def _send(url: str, sink: tuple[str, int], journals: str, lease: bool, start: Any) -> None:
    """One sending process: its store and messages ready, then the edition until it is done."""
    digest, publisher = demo_edition()
    store = Store(url)
    messages = EditionMessages(digest, publisher, NOW)
    policy = SendPolicy(connections=1, lease=LEASE if lease else None)
    start.wait()
    try:
        report = dispatch(
            store,
            digest.date,
            messages.bytes_for,
            f"smtp://{sink[0]}:{sink[1]}",
            publisher.sender,
            Path(journals),
            policy,
            clock=lambda: NOW,
        )
    finally:
        store.close()
    if report.server_gone:
        raise SystemExit(f"bench: {report.server_gone}")


def _timed(url: str, sink: Sink, folder: Path, processes: int, lease: bool) -> float:
    """Seconds for ``processes`` senders to send the whole planned edition."""
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    args = (url, (sink.host, sink.port), str(folder / "journals"), lease, start)
    senders = [context.Process(target=_send, args=args) for _ in range(processes)]
    for process in senders:
        process.start()
    # The processes import and make their variants before they wait; this covers it.
    time.sleep(3.0)
    started = time.perf_counter()
    start.set()
    for process in senders:
        process.join()
    elapsed = time.perf_counter() - started
    if any(process.exitcode for process in senders):
        raise SystemExit("bench: a sending process failed")
    return elapsed


def line(label: str, run: Run, plain: Run) -> None:
    print(
        f"  {label:<46} {run.messages:>7,} msgs {run.rate:>8,.0f} msg/s"
        f" ({run.rate / plain.rate:5.2f}x plain)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.workers", description="Send throughput with several workers."
    )
    parser.add_argument("--subscribers", type=int, default=10_000)
    count = parser.parse_args(argv).subscribers
    digest, publisher = demo_edition()
    readers = subscribers(count)
    ready = EditionMessages(digest, publisher, NOW).bytes_for(
        readers[0], make_message_id(digest.date, readers[0].email, publisher.sender)
    )
    print(f"send --worker: {count:,} subscribers, to a discarding SMTP sink on 127.0.0.1")
    with serve_sink() as sink, tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        plain = send(sink, [(person, "") for person in readers], lambda s, m: ready)
        line("plain smtplib loop, one ready .eml", plain, plain)
        sqlite = f"sqlite:///{folder / 'digest.db'}"
        _fill(sqlite, count)
        seconds = _timed(sqlite, sink, folder, 1, lease=False)
        _check(sqlite, count)
        line("digest send, SQLite, one process", Run(count, seconds, 0.0), plain)
        _on_postgresql(sink, folder, count, plain)


def _on_postgresql(sink: Sink, folder: Path, count: int, plain: Run) -> None:
    from tests.postgres import throwaway_cluster

    with contextlib.ExitStack() as stack:
        try:
            cluster = stack.enter_context(throwaway_cluster())
        except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
            print(f"  PostgreSQL is unavailable, so no worker figures: {exc}")
            return
        for processes in WORKERS:
            url = cluster.create_database(f"bench_{processes}")
            _fill(url, count)
            seconds = _timed(url, sink, folder, processes, lease=True)
            _check(url, count)
            label = f"digest send --worker x{processes}, PostgreSQL"
            line(label, Run(count, seconds, 0.0), plain)


def _check(url: str, count: int) -> None:
    store = Store(url)
    try:
        sent = store.delivery_counts(demo_edition()[0].date).get("sent", 0)
    finally:
        store.close()
    if sent != count:
        raise SystemExit(f"bench: {sent} of {count} messages were sent")


if __name__ == "__main__":
    main()
