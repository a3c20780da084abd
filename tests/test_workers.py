"""Several ``digest send --worker`` processes sharing one edition's ledger under leases: the
in-flight rule lives in the database, so a worker on any host can die and the others finish
its share without sending anything twice."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import Connection, select

from digest.addresses import address_key
from digest.cli.output import send_problem
from digest.config import load_settings
from digest.dispatch import SendPolicy
from digest.ledger import Status
from digest.models import FeedSource, Section, Subscriber
from digest.pipeline import send_edition
from digest.store import Store, schema
from digest.store.claims import LAPSED
from digest.store.deliveries import Answer, Claimed

from .conftest import write_config
from .sinks import Sink, outcome
from .test_sending import DATE, NOW, edition

LEASE = dt.timedelta(seconds=30)
T = TypeVar("T")


def _store_with(db_url: str, people: list[str]) -> Store:
    store = Store(db_url)
    store.save_edition(edition(), NOW)
    store.enrol([Subscriber(address) for address in people], NOW)
    store.plan_deliveries(DATE, lambda email: f"<{email}>")
    return store


def test_a_lapsed_lease_requeues_what_was_claimed_and_makes_what_was_sending_unknown(
    db_url: str,
) -> None:
    store = _store_with(db_url, [f"r{n}@example.com" for n in range(6)])
    try:
        first = store.claim(DATE, "dead", 4, NOW, lease=LEASE)
        assert len(first) == 4
        assert store.mark_sending(first[0].id, "dead", NOW + LEASE) == (True, [])
        # While the lease holds, nobody else gets those rows, nor settles them.
        other = store.claim(DATE, "alive", 10, NOW, lease=3 * LEASE)
        assert len(other) == 2 and not {row.id for row in other} & {row.id for row in first}
        assert store.lapse_leases(DATE, NOW) == 0
        assert store.held_until(DATE) == NOW + 3 * LEASE
        later = NOW + LEASE + dt.timedelta(seconds=1)
        assert store.lapse_leases(DATE, later) == 1
        taken = store.claim(DATE, "heir", 10, later, lease=LEASE)
        assert [row.id for row in taken] == [row.id for row in first[1:]]
        # The dead worker's claim is gone: it can neither send nor record those rows.
        assert store.mark_sending(first[1].id, "dead", later + LEASE) == (False, [])
        problems = store.problem_deliveries(DATE)
        assert problems == [(first[0].subscriber.email, Status.UNKNOWN, LAPSED)]
        counts = store.delivery_counts(DATE)
        assert counts == {"unknown": 1, "claimed": 5}
    finally:
        store.close()


def test_the_in_flight_mark_writes_the_answers_before_it_as_the_batch_record_does(
    db_url: str,
) -> None:
    store = _store_with(db_url, [f"r{n}@example.com" for n in range(4)])
    d = schema.deliveries.c
    at = NOW + dt.timedelta(seconds=5)
    retry = NOW + dt.timedelta(minutes=10)
    try:
        rows = [row.id for row in store.claim(DATE, "run", 4, NOW, lease=LEASE)]
        answers = [
            Answer(rows[0], Status.DEFERRED, at, 451, "try later", retry),
            Answer(rows[1], Status.FAILED, at, 554, "refused"),
            Answer(rows[2], Status.SENT, at, 250),
        ]
        assert store.mark_sending(rows[0], "run", NOW + LEASE) == (True, [])
        assert store.mark_sending(rows[1], "run", NOW + LEASE, answers[:1]) == (True, [])
        assert store.mark_sending(rows[2], "run", NOW + LEASE, answers[1:2]) == (True, [])
        # An answer for a row the run no longer holds is not written.
        assert store.mark_sending(rows[3], "other", NOW + LEASE, answers[2:]) == (False, [])
        assert store.mark_sending(rows[3], "run", NOW + LEASE, answers[2:]) == (True, [])
        columns = (d.status, d.smtp_code, d.error, d.attempts, d.claim)
        times = (d.sent_at, d.first_attempt, d.updated_at, d.next_attempt)
        with store.begin() as connection:
            found = connection.execute(select(*columns, *times).order_by(d.id)).all()
    finally:
        store.close()
    moment, later, lease = at.replace(tzinfo=None), retry.replace(tzinfo=None), NOW + LEASE
    assert [tuple(row) for row in found] == [
        ("deferred", 451, "try later", 1, None, None, moment, moment, later),
        ("failed", 554, "refused", 1, None, None, moment, moment, None),
        ("sent", 250, None, 1, None, moment, moment, moment, None),
        (
            "sending",
            None,
            None,
            0,
            "run",
            None,
            None,
            NOW.replace(tzinfo=None),
            lease.replace(tzinfo=None),
        ),
    ]


def test_workers_in_one_process_send_each_message_once(db_url: str, tmp_path: Path) -> None:
    people = [f"reader{n}@example.com" for n in range(300)]
    sink = Sink().start()
    try:
        feed = {"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks"}
        env = {"DIGEST_SMTP_URL": sink.url, "DIGEST_DB": db_url}
        settings = load_settings(write_config(tmp_path, [feed]), env=env)
        store = _store_with(db_url, people)
        policy = SendPolicy(connections=4, batch=7, lease=LEASE)
        report = send_edition(settings, store, DATE, NOW, force=True, policy=policy)
        counts = store.delivery_counts(DATE)
        store.close()
    finally:
        sink.close()
    assert report.sent == len(people)
    assert counts == {"sent": len(people)}
    assert sink.received == dict.fromkeys(people, 1)


def test_a_worker_whose_lease_lapsed_stops_and_sends_nothing_it_no_longer_holds(
    db_url: str, tmp_path: Path
) -> None:
    people = [f"reader{n}@example.com" for n in range(10)]
    store = _store_with(db_url, people)
    heir = Store(db_url)
    taken: list[Claimed] = []
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)

    def data(recipient: str, attempt: int) -> str:
        # While the first message waits for its answer, another worker (its clock a day on)
        # finds this worker's lease lapsed: the message in flight becomes unknown, the rest
        # of the batch is the other worker's.
        if recipient == people[0] and not taken:
            heir.lapse_leases(DATE, later)
            taken.extend(heir.claim(DATE, "heir", 100, later, lease=LEASE))
        return "250 OK"

    sink = Sink(data_reply=data).start()
    try:
        feed = {"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks"}
        env = {"DIGEST_SMTP_URL": sink.url, "DIGEST_DB": db_url}
        settings = load_settings(write_config(tmp_path, [feed]), env=env)
        policy = SendPolicy(connections=1, batch=len(people), lease=LEASE)
        report = send_edition(settings, store, DATE, NOW, force=True, policy=policy)
        counts = store.delivery_counts(DATE)
        problems = store.problem_deliveries(DATE)
    finally:
        sink.close()
        store.close()
        heir.close()
    assert [row.subscriber.email for row in taken] == people[1:]
    # Only the first message went; the one its lease lost was withdrawn before its data.
    assert sink.received == {people[0]: 1}
    assert counts == {"unknown": 1, "claimed": len(people) - 1}
    assert problems == [(people[0], Status.UNKNOWN, LAPSED)]
    assert report.lease_lost is not None and "lease" in report.lease_lost
    problem = send_problem(report)
    assert problem is not None and "\n" not in str(problem)
    assert "this worker stopped after 1 message" in str(problem)


def _at_once(db_url: str, work: Callable[[Store], T]) -> list[T]:
    """What ``work`` returns on four stores of ``db_url`` at the same moment, as workers
    starting together do it; an error in any fails the test."""
    stores = [Store(db_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    results: list[T] = []
    errors: list[Exception] = []

    def start(store: Store) -> None:
        barrier.wait()
        try:
            results.append(work(store))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(store,)) for store in stores]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for store in stores:
            store.close()
    assert errors == []
    assert len(results) == len(stores)
    return results


def test_workers_starting_at_once_share_one_signing_key(db_url: str) -> None:
    keys = _at_once(db_url, lambda store: store.signing_key())
    assert len(set(keys)) == 1


def test_workers_starting_at_once_add_each_configured_feed_once(db_url: str) -> None:
    sources = [
        FeedSource(f"Wire {n}", f"https://wire{n}.example.com/rss", Section.STOCKS)
        for n in range(3)
    ]
    _at_once(db_url, lambda store: store.sync_feeds(sources))
    store = Store(db_url)
    try:
        urls = sorted(feed.url for feed in store.feed_states())
    finally:
        store.close()
    assert urls == [source.url for source in sources]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_transaction_postgresql_ends_in_a_deadlock_runs_again(db_url: str) -> None:
    store = _store_with(db_url, ["a@example.com", "b@example.com"])
    rival = Store(db_url)
    d = schema.deliveries.c
    with store.begin() as connection:
        first, second = connection.execute(select(d.id).order_by(d.id)).scalars()

    def mark(connection: Connection, delivery: int, by: str) -> None:
        connection.execute(schema.deliveries.update().where(d.id == delivery).values(error=by))

    holding, taken = threading.Event(), threading.Event()
    pids: list[int] = []

    def other() -> None:
        with rival.begin() as connection:
            # The other side of the deadlock waits longer before looking for one, so that
            # PostgreSQL ends the transaction under test.
            connection.exec_driver_sql("SET LOCAL deadlock_timeout = '10s'")
            pids.append(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
            mark(connection, second, "rival")
            holding.set()
            taken.wait(10)
            mark(connection, first, "rival")

    def waiting_on_a_lock() -> bool:
        with rival.begin() as connection:
            query = (
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE pid = %(pid)s AND wait_event_type = 'Lock'"
            )
            return bool(connection.exec_driver_sql(query, {"pid": pids[0]}).scalar())

    runs = 0

    def work(connection: Connection) -> None:
        nonlocal runs
        runs += 1
        mark(connection, first, "tested")
        if runs == 1:
            taken.set()
            deadline = time.monotonic() + 10
            while not waiting_on_a_lock():
                assert time.monotonic() < deadline, "the rival never waited"
                time.sleep(0.02)
        mark(connection, second, "tested")

    thread = threading.Thread(target=other)
    try:
        thread.start()
        assert holding.wait(10)
        store.transaction(work)
        thread.join(10)
        with store.begin() as connection:
            errors = connection.execute(select(d.error).order_by(d.id)).scalars().all()
    finally:
        store.close()
        rival.close()
    assert runs == 2
    assert errors == ["tested", "tested"]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_worker_waits_for_another_planning_the_edition_past_the_statement_timeout(
    db_url: str,
) -> None:
    people = [f"reader{n}@example.com" for n in range(3)]
    _store_with(db_url, people[:1]).close()
    planner = Store(db_url)
    planner.enrol([Subscriber(address) for address in people[1:]], NOW)
    # Statements end after 0.3 s on this worker's connections; another one plans the
    # edition (holds its lock) for 1 s.
    waiter = Store(f"{db_url}&options=-c%20statement_timeout%3D300ms")
    try:
        with planner.begin() as connection:
            connection.execute(
                select(schema.editions.c.id).where(schema.editions.c.date == DATE).with_for_update()
            )
            waiting = threading.Thread(
                target=waiter.plan_deliveries, args=(DATE, lambda email: f"<{email}>")
            )
            waiting.start()
            time.sleep(1.0)
        waiting.join(10)
        counts = waiter.delivery_counts(DATE)
        with waiter.begin() as connection:
            timeout = connection.exec_driver_sql("SHOW statement_timeout").scalar()
    finally:
        planner.close()
        waiter.close()
    assert counts == {"queued": len(people)}
    # The wait lifted the timeout for the planning transaction only.
    assert timeout == "300ms"


def _enrol_at_once(store: Store, addresses: list[str]) -> None:
    """Active subscribers written in one statement (``enrol`` writes each with its history,
    which takes minutes for this many)."""
    rows = [
        {
            "email": address,
            "email_key": address_key(address),
            "name": "",
            "watchlist": "",
            "active": True,
            "state": "active",
            "created_at": NOW.replace(tzinfo=None),
            "public_id": secrets.token_hex(16),
        }
        for address in addresses
    ]
    with store.begin() as connection:
        connection.execute(schema.subscribers.insert(), rows)


#: The kill run: this many subscribers, four workers, two of them killed mid-way.
KILL_PEOPLE = [f"reader{n:05d}@example.com" for n in range(20_000)]
#: Seconds a worker's lease lasts: long enough that a live worker on a loaded machine keeps
#: its rows (one that loses them stops with exit 1), short enough that the fifth worker soon
#: takes what the killed ones held.
KILL_LEASE = 10


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_four_workers_two_killed_and_a_fifth_finishing_send_each_message_once(
    db_url: str, tmp_path: Path
) -> None:
    sink = Sink().start()
    feed = {"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks"}
    config = write_config(tmp_path, [feed])
    config.write_text(config.read_text() + "sending: {connections: 2}\n")
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("DIGEST_")},
        "DIGEST_SMTP_URL": sink.url,
        "DIGEST_DB": db_url,
    }
    store = Store(db_url)
    store.save_edition(edition(), NOW)
    _enrol_at_once(store, KILL_PEOPLE)
    store.close()
    command = [sys.executable, "-m", "digest", "--config", str(config), "send", "--worker"]
    command += ["--date", DATE.isoformat(), "--force", "--lease", str(KILL_LEASE)]

    def worker() -> subprocess.Popen[str]:
        return subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )

    try:
        workers = [worker() for _ in range(4)]
        # Kill two once a quarter of the edition is out: mid-way, with messages in flight.
        deadline = time.monotonic() + 120
        while len(sink.received) < len(KILL_PEOPLE) // 4:
            assert time.monotonic() < deadline, "the workers did not get going"
            time.sleep(0.05)
        for victim in workers[:2]:
            victim.send_signal(signal.SIGKILL)
        fifth = worker()
        finished = [process.communicate(timeout=300) for process in [*workers[2:], fifth]]
        codes = [process.returncode for process in [*workers[2:], fifth]]
        killed = [process.communicate(timeout=10) for process in workers[:2]]
    finally:
        sink.close()
    assert codes[0] in (0, 3) and codes[1] in (0, 3) and codes[2] in (0, 3), finished
    assert [process.returncode for process in workers[:2]] == [-signal.SIGKILL] * 2, killed

    counts, unknown, duplicates, lost = outcome(db_url, DATE, KILL_PEOPLE, sink)
    print(
        f"\nworkers: {len(KILL_PEOPLE)} subscribers, 4 workers, 2 killed, a fifth finishing:"
        f" {counts.get('sent', 0)} sent, {len(unknown)} unknown,"
        f" {len(duplicates)} duplicates, {len(lost)} lost"
    )
    assert duplicates == []
    assert lost == []
    assert set(counts) <= {"sent", "unknown"}
    assert counts.get("sent", 0) + len(unknown) == len(KILL_PEOPLE)
    # At most the messages in flight at the kills (one per connection) are unknown: the
    # answers before them were recorded with each one's in-flight mark.
    assert len(unknown) <= 2 * 2
    assert all(sink.received[address] <= 1 for address in unknown)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("lease", [None, dt.timedelta(seconds=2)], ids=["single-sender", "worker"])
def test_a_database_gone_mid_send_ends_the_run_in_one_line_and_the_next_run_finishes(
    db_url: str, tmp_path: Path, lease: dt.timedelta | None
) -> None:
    from sqlalchemy import create_engine, make_url

    from digest.errors import StoreError

    name = make_url(db_url).database
    admin = create_engine(db_url.replace(f"/{name}?", "/postgres?"), isolation_level="AUTOCOMMIT")
    people = [f"reader{n}@example.com" for n in range(12)]
    store = _store_with(db_url, people)

    def cut_the_database() -> None:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            connection.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                f" WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            )

    def data(recipient: str, attempt: int) -> str:
        if recipient == people[4] and attempt == 1:
            cut_the_database()
        return "250 OK"

    sink = Sink(data_reply=data).start()
    feed = {"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks"}
    env = {"DIGEST_SMTP_URL": sink.url, "DIGEST_DB": db_url}
    settings = load_settings(write_config(tmp_path, [feed]), env=env)
    policy = SendPolicy(connections=1, batch=3, lease=lease)
    try:
        with pytest.raises(StoreError) as gone:
            send_edition(settings, store, DATE, NOW, force=True, policy=policy)
        assert "\n" not in str(gone.value)
        store.close()
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.dispose()
    assert 5 <= sum(sink.received.values()) < len(people)
    # The next run (for a worker, once the dead one's lease lapsed) sends the rest once.
    later = NOW + dt.timedelta(hours=1)
    store = Store(db_url)
    try:
        send_edition(settings, store, DATE, later, force=True, policy=policy)
    finally:
        store.close()
        sink.close()
    result = outcome(db_url, DATE, people, sink)
    assert result.duplicates == [] and result.lost == []
    # The single sender's journal kept the answers the database could not take; a worker
    # marks each message in flight in the database, so the one it was sending is unknown.
    assert result.unknown == (set() if lease is None else {people[4]})
