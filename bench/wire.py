"""Sending an edition to many subscribers, beside the wire's own speed measured in the same run.

Every path sends to one discarding SMTP sink on 127.0.0.1 (bench/sink.py, in a process of its
own). The baseline is a plain smtplib loop sending one ready-made .eml, over one connection and
over as many as the fast path uses (threads, one smtplib connection each); the old path makes
each message with make_email, compose and to_bytes; the fast path asks
``EditionMessages.bytes_for``; the full path is ``pipeline.send_edition`` on a SQLite store
(the send ledger, the in-flight journal, the check that each subscriber is still subscribed,
``sending.connections`` connections), which is what ``digest send`` does. The edition is
the demo's, built from samples/feeds as bench/pipeline.py builds it; a third of the
subscribers have a name and a fifth a watchlist.

    python -m bench.wire [--subscribers 100000] [--connections 4]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import resource
import shutil
import smtplib
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from digest.config import load_settings
from digest.message import (
    DkimKey,
    Publisher,
    compose,
    make_email,
    make_message_id,
    to_bytes,
)
from digest.models import Digest, Subscriber
from digest.parse import parse_feed
from digest.pipeline import send_edition, send_policy
from digest.send import Mailer
from digest.store import Store
from digest.wire import EditionMessages

from .pipeline import NOW, REPO, SAMPLES, SENDER, SOURCE, edition_of
from .sink import Sink, serve_sink

ENVELOPE_FROM = "digest@example.com"
#: Some pick stories of the demo edition, one picks none.
WATCHLISTS = (("NVDA",), ("BTC", "ETH"), ("TIA",), ("ZZZZ",), ("riot", "dot"))
#: The old path makes ~70 messages a second: this many show its rate.
OLD_PATH_MESSAGES = 1_000
#: The plain loop's rate is steady long before this.
PLAIN_MESSAGES = 10_000
MAILER_MESSAGES = 2_000
ROUNDS = 3
DKIM_MESSAGES = 200


def demo_edition() -> tuple[Digest, Publisher]:
    """The demo edition as bench/pipeline.py builds it, and its publisher."""
    items = [
        item
        for path in sorted(SAMPLES.glob("*.xml"))
        for item in parse_feed(path.read_bytes(), SOURCE, NOW)
    ]
    return edition_of(items)


def subscribers(count: int) -> list[Subscriber]:
    return [
        Subscriber(
            f"reader{n}@example.com",
            f"Reader {n}" if n % 3 == 0 else "",
            watchlist=WATCHLISTS[n // 5 % len(WATCHLISTS)] if n % 5 == 0 else (),
            # As the store gives each subscriber: the id their personal links name.
            public_id=f"{n:032x}",
        )
        for n in range(count)
    ]


Make = Callable[[Subscriber, str], bytes]


@dataclass(frozen=True)
class Run:
    """One way of sending: how many messages, in how long, and the CPU spent making them."""

    messages: int
    seconds: float
    building: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def build_ms(self) -> float:
        return self.building * 1000 / self.messages


def connect(sink: Sink) -> smtplib.SMTP:
    client = smtplib.SMTP(sink.host, sink.port)
    client.ehlo()
    return client


def send(
    sink: Sink, messages: Sequence[tuple[Subscriber, str]], make: Make, connections: int = 1
) -> Run:
    """Each message made by ``make(subscriber, message_id)`` and sent, over ``connections``
    connections at once (a thread and an smtplib connection each)."""
    building = [0.0] * connections

    def sender(number: int) -> None:
        client = connect(sink)
        for subscriber, message_id in messages[number::connections]:
            started = time.thread_time()
            raw = make(subscriber, message_id)
            building[number] += time.thread_time() - started
            client.sendmail(ENVELOPE_FROM, [subscriber.email], raw)
        client.quit()

    threads = [threading.Thread(target=sender, args=(number,)) for number in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Run(len(messages), time.perf_counter() - started, sum(building))


class Ledger:
    """``digest send`` on a SQLite store filled once (outside the time measured); each
    ``send`` is a new edition to every reader, timed from planning its ledger to the summary."""

    def __init__(self, sink: Sink, digest: Digest, readers: list[Subscriber], folder: Path):
        env = {
            "DIGEST_DB": f"sqlite:///{folder / 'ledger.db'}",
            "DIGEST_SMTP_URL": f"smtp://{sink.host}:{sink.port}",
        }
        self.settings = load_settings(REPO / "samples" / "feeds.yaml", env=env)
        self.store = Store(self.settings.db_url)
        self.store.enrol(readers, NOW)
        self.digest, self.readers, self.editions = digest, len(readers), 0

    def send(self, connections: int) -> Run:
        # A day earlier each time: every send is a whole edition of its own.
        self.editions += 1
        date = self.digest.date - dt.timedelta(days=self.editions)
        self.store.save_edition(dataclasses.replace(self.digest, date=date), NOW)
        policy = send_policy(self.settings, connections=connections)
        started = time.perf_counter()
        report = send_edition(self.settings, self.store, date, NOW, force=True, policy=policy)
        seconds = time.perf_counter() - started
        sent = report.counts.get("sent", 0)
        if sent != self.readers:
            raise SystemExit(f"bench: the full path sent {sent} of {self.readers}: {report}")
        return Run(sent, seconds, 0.0)

    def close(self) -> None:
        self.store.close()


def median(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda run: run.rate)[len(runs) // 2]


def dkim_key(folder: Path) -> DkimKey | None:
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    path = folder / "dkim.pem"
    command = [openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
    subprocess.run([*command, "-out", str(path)], check=True, capture_output=True)
    return DkimKey("bench", "example.com", path.read_bytes())


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def line(label: str, run: Run, plain: Run, build: bool = True) -> None:
    cpu = f"  build CPU {run.build_ms:6.3f} ms/msg" if build else ""
    print(
        f"  {label:<46} {run.messages:>7,} msgs {run.rate:>8,.0f} msg/s"
        f" ({run.rate / plain.rate:5.2f}x plain){cpu}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.wire", description="Send throughput.")
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=4)
    options = parser.parse_args(argv)
    count, connections = options.subscribers, options.connections

    digest, publisher = demo_edition()
    readers = subscribers(count)
    messages = [(s, make_message_id(digest.date, s.email, publisher.sender)) for s in readers]

    def old(subscriber: Subscriber, message_id: str) -> bytes:
        email = make_email(digest, publisher, subscriber, message_id=message_id)
        return to_bytes(compose(email, publisher.sender, NOW))

    ready = old(*messages[0])

    def the_ready_one(subscriber: Subscriber, message_id: str) -> bytes:
        return ready

    plain_messages = messages[:PLAIN_MESSAGES]
    with serve_sink() as sink, tempfile.TemporaryDirectory() as folder:
        ledger = Ledger(sink, digest, readers, Path(folder))
        rounds: dict[str, list[Run]] = {"plain": [], "plain_many": [], "fast_many": []}
        rounds["ledger"] = []
        # The runs compared take turns, ROUNDS times, and each figure is the median: what
        # else the machine does then falls on all of them alike.
        for _ in range(ROUNDS):
            rounds["plain"].append(send(sink, plain_messages, the_ready_one))
            rounds["plain_many"].append(send(sink, plain_messages, the_ready_one, connections))
            # A new EditionMessages each time: its variants are made within the time measured.
            fresh = EditionMessages(digest, publisher, NOW)
            rounds["fast_many"].append(send(sink, messages, fresh.bytes_for, connections))
            rounds["ledger"].append(ledger.send(connections))
        ledger_rss = peak_rss_mb()
        ledger.close()
        plain, plain_many = median(rounds["plain"]), median(rounds["plain_many"])
        fast_many, through_ledger = median(rounds["fast_many"]), median(rounds["ledger"])
        old_path = send(sink, messages[:OLD_PATH_MESSAGES], old)
        edition = EditionMessages(digest, publisher, NOW)
        fast = send(sink, messages, edition.bytes_for)
        mailer = Mailer(f"smtp://{sink.host}:{sink.port}")
        through_mailer = EditionMessages(digest, publisher, NOW)
        started = time.perf_counter()
        for subscriber, message_id in messages[:MAILER_MESSAGES]:
            mailer.send(through_mailer.bytes_for(subscriber, message_id), SENDER, subscriber.email)
        mailer.close()
        mailer_run = Run(min(count, MAILER_MESSAGES), time.perf_counter() - started, 0.0)
        key = dkim_key(Path(folder))
        signed = EditionMessages(digest, publisher, NOW, key) if key else None
        dkim = send(sink, messages[:DKIM_MESSAGES], signed.bytes_for) if signed else None
        time.sleep(0.2)  # the sink counts a message as it answers it
        received = sink.received

    print(
        f"send: {count:,} subscribers, an edition of {digest.story_count} stories in "
        f"{edition.variants} variants, {len(ready) / 1000:.1f} KB a message, "
        "to a discarding SMTP sink on 127.0.0.1"
    )
    line("plain smtplib loop, one ready .eml", plain, plain, build=False)
    line(f"plain smtplib loop, {connections} connections", plain_many, plain, build=False)
    line("old path: make_email+compose+to_bytes", old_path, plain)
    line("fast path: bytes_for, 1 connection", fast, plain)
    line(f"fast path: bytes_for, {connections} connections", fast_many, plain)
    line("fast path, sent by digest.send.Mailer", mailer_run, plain, build=False)
    label = f"full path: digest send, ledger, {connections} connections"
    line(label, through_ledger, plain, build=False)
    if dkim is not None:
        line("fast path, DKIM-signed (dkimpy)", dkim, plain)
    else:
        print("  (no openssl: the DKIM-signed run was skipped)")
    print(
        f"  fast path over {connections} connections: {fast_many.rate / plain_many.rate:.2f}x "
        f"the plain loop over as many; build CPU {old_path.build_ms / fast.build_ms:.0f}x less "
        f"than the old path; {edition.slow_messages} of {count:,} messages went the slow way"
    )
    print(
        f"  full path over {connections} connections: "
        f"{through_ledger.rate / plain_many.rate:.2f}x the plain loop over as many, "
        f"{through_ledger.rate / plain.rate:.2f}x the plain loop over one; {count:,} "
        f"subscribers in {through_ledger.seconds:.1f} s (medians of {ROUNDS} turns each)"
    )
    print(f"  peak RSS {ledger_rss:.0f} MB after the full path")
    runs = [*(run for turns in rounds.values() for run in turns)]
    runs += [old_path, fast, mailer_run]
    runs += [dkim] if dkim else []
    expected = sum(run.messages for run in runs)
    if received != expected:
        raise SystemExit(f"bench: the sink took {received} messages, not {expected}")


if __name__ == "__main__":
    main()
