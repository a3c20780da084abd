"""The send ledger against servers that misbehave on purpose (tests/sinks.py), and against
Postfix's smtp-sink: every good address gets exactly one copy, whatever the server does."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.config import Settings, load_settings
from digest.dispatch import SendPolicy
from digest.ledger import Status
from digest.models import Digest, Section, Story, Subscriber
from digest.pipeline import send_edition
from digest.store import Store

from .conftest import digest_command, write_config
from .factories import make_item
from .sinks import STALL, WITHHOLD_AND_DIE, Sink

DATE = dt.date(2026, 11, 24)
NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
PEOPLE = [f"reader{n}@example.com" for n in range(12)]
#: Quick retries and a short patience, so misbehaving servers cost the suite little time.
QUICK = SendPolicy(
    connections=2,
    batch=5,
    retry_waits=(dt.timedelta(seconds=0.2), dt.timedelta(seconds=0.4), dt.timedelta(hours=1)),
    wait_within_run=dt.timedelta(seconds=2),
    timeout=1.0,
    check_every=0.0,
)


def edition(date: dt.date = DATE) -> Digest:
    stories = tuple(
        Story((make_item(title),), Section.STOCKS, 1.0)
        for title in ("Nvidia beats estimates", "Fed holds rates", "Oil slips on supply")
    )
    end = dt.datetime.combine(date, dt.time(12), tzinfo=dt.UTC)
    return Digest(date, "Market Digest", "Daily", end - dt.timedelta(days=1), end, stories, ())


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink().start()
    yield server
    server.close()


@pytest.fixture
def line(tmp_path: Path, sink: Sink, db_url: str) -> Iterator[tuple[Settings, Store]]:
    """Settings sending to ``sink``, a store with an edition and twelve subscribers."""
    feed = {"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks"}
    env = {"DIGEST_SMTP_URL": sink.url, "DIGEST_DB": db_url}
    settings = load_settings(write_config(tmp_path, [feed]), env=env)
    store = Store(settings.db_url)
    store.save_edition(edition(), NOW)
    for address in PEOPLE:
        store.add_subscriber(Subscriber(address), NOW)
    yield settings, store
    store.close()


def send(settings: Settings, store: Store, **changes: object) -> object:
    return send_edition(
        settings, store, DATE, NOW, force=True, policy=_policy(**changes), resend_unknown=False
    )


def _policy(**changes: object) -> SendPolicy:
    from dataclasses import replace

    return replace(QUICK, **changes)  # type: ignore[arg-type]


def test_everyone_gets_one_copy(line: tuple[Settings, Store], sink: Sink) -> None:
    settings, store = line
    report = send_edition(settings, store, DATE, NOW, force=True, policy=QUICK)
    assert report.sent == len(PEOPLE) and report.failed == 0
    assert sink.received == dict.fromkeys(PEOPLE, 1)
    again = send_edition(settings, store, DATE, NOW, force=True, policy=QUICK)
    assert again.sent == 0 and again.already_sent == len(PEOPLE)
    assert sink.received == dict.fromkeys(PEOPLE, 1)
    assert store.delivery_counts(DATE) == {"sent": len(PEOPLE)}


def test_the_progress_bar_hears_the_total_then_each_message(
    line: tuple[Settings, Store], sink: Sink
) -> None:
    settings, store = line
    heard: list[tuple[str, int]] = []
    store.unsubscribe(PEOPLE[0], NOW)
    report = send_edition(
        settings,
        store,
        DATE,
        NOW,
        force=True,
        policy=QUICK,
        on_total=lambda total: heard.append(("total", total)),
        on_progress=lambda count: heard.append(("done", count)),
    )
    assert heard[0] == ("total", len(PEOPLE) - 1)
    assert heard[1:] == [("done", 1)] * (len(PEOPLE) - 1) == [("done", 1)] * report.sent


def test_a_temporary_refusal_is_deferred_and_tried_again_within_the_run(
    line: tuple[Settings, Store], sink: Sink
) -> None:
    settings, store = line
    busy = set(PEOPLE[:4])
    sink.rcpt_reply = lambda rcpt, attempt: (
        "451 4.7.1 try again later" if rcpt in busy and attempt < 3 else "250 OK"
    )
    report = send_edition(settings, store, DATE, NOW, force=True, policy=QUICK)
    assert sink.received == dict.fromkeys(PEOPLE, 1)
    assert {rcpt: sink.tries[rcpt] for rcpt in busy} == dict.fromkeys(busy, 3)
    assert report.counts == {"sent": 12, "deferred": 8}
    assert store.delivery_counts(DATE) == {"sent": 12}


def test_a_deferral_past_the_run_is_left_to_a_later_run(
    line: tuple[Settings, Store], sink: Sink
) -> None:
    settings, store = line
    sink.rcpt_reply = lambda rcpt, attempt: (
        "452 4.2.2 mailbox full" if rcpt == PEOPLE[0] else "250 OK"
    )
    policy = _policy(retry_waits=(dt.timedelta(hours=1),))
    report = send_edition(settings, store, DATE, NOW, force=True, policy=policy)
    assert report.sent == 11
    assert store.delivery_counts(DATE) == {"sent": 11, "deferred": 1}
    assert store.problem_deliveries(DATE) == [(PEOPLE[0], "deferred", "452 4.2.2 mailbox full")]


def test_permanent_refusals_are_final_and_mailbox_ones_bounce(
    line: tuple[Settings, Store], sink: Sink
) -> None:
    settings, store = line
    codes = {PEOPLE[0]: "550 5.1.1 no such user", PEOPLE[1]: "554 5.7.1 policy"}
    sink.rcpt_reply = lambda rcpt, attempt: codes.get(rcpt, "250 OK")
    first = send_edition(settings, store, DATE, NOW, force=True, policy=QUICK)
    assert first.counts == {"sent": 10, "bounced": 1, "failed": 1}
    send_edition(settings, store, DATE, NOW, force=True, policy=QUICK)
    assert sink.tries[PEOPLE[0]] == sink.tries[PEOPLE[1]] == 1  # not knocked on again


def test_an_address_that_bounces_two_editions_running_is_dropped(
    line: tuple[Settings, Store], sink: Sink
) -> None:
    settings, store = line
    sink.rcpt_reply = lambda rcpt, attempt: (
        "550 5.1.1 no such user" if rcpt == PEOPLE[0] else "250 OK"
    )
    first = send_edition(settings, store, DATE, NOW, force=True, policy=QUICK)
    assert first.bounced_for_good == () and store.subscriber(PEOPLE[0]).active  # type: ignore[union-attr]
    later = DATE + dt.timedelta(days=1)
    store.save_edition(edition(later), NOW)
    second = send_edition(settings, store, later, NOW, force=True, policy=QUICK)
    assert second.bounced_for_good == (PEOPLE[0],)
    assert not store.subscriber(PEOPLE[0]).active  # type: ignore[union-attr]
    third = DATE + dt.timedelta(days=2)
    store.save_edition(edition(third), NOW)
    send_edition(settings, store, third, NOW, force=True, policy=QUICK)
    assert sink.tries[PEOPLE[0]] == 2


def test_a_lost_answer_is_unknown_and_never_sent_twice_unless_asked(
    line: tuple[Settings, Store], sink: Sink
) -> None:
    settings, store = line
    lost = PEOPLE[3]
    sink.data_reply = lambda rcpt, attempt: WITHHOLD_AND_DIE if rcpt == lost else "250 OK"
    report = send_edition(settings, store, DATE, NOW, force=True, policy=QUICK)
    assert report.counts == {"sent": 11, "unknown": 1}
    assert sink.received == dict.fromkeys(PEOPLE, 1)  # the others went on a new connection
    again = send_edition(settings, store, DATE, NOW, force=True, policy=QUICK)
    assert again.sent == 0 and sink.received[lost] == 1
    assert store.delivery_counts(DATE) == {"sent": 11, "unknown": 1}
    sink.data_reply = lambda rcpt, attempt: "250 OK"
    asked = send_edition(settings, store, DATE, NOW, force=True, resend_unknown=True, policy=QUICK)
    assert asked.sent == 1 and sink.received[lost] == 2
    assert store.delivery_counts(DATE) == {"sent": 12}


def test_a_stalled_answer_times_out_as_unknown(line: tuple[Settings, Store], sink: Sink) -> None:
    settings, store = line
    sink.data_reply = lambda rcpt, attempt: STALL if rcpt == PEOPLE[5] else "250 OK"
    started = time.monotonic()
    report = send_edition(settings, store, DATE, NOW, force=True, policy=QUICK)
    assert time.monotonic() - started < 10
    assert report.counts == {"sent": 11, "unknown": 1}
    assert sink.received == dict.fromkeys(PEOPLE, 1)


def test_a_connection_the_server_drops_is_opened_again_without_resending(
    line: tuple[Settings, Store], sink: Sink
) -> None:
    settings, store = line
    sink.drop_after = 2
    report = send_edition(settings, store, DATE, NOW, force=True, policy=QUICK)
    assert report.sent == len(PEOPLE)
    assert sink.received == dict.fromkeys(PEOPLE, 1)


def test_a_server_that_is_gone_ends_the_run_and_loses_nothing(
    line: tuple[Settings, Store], sink: Sink
) -> None:
    settings, store = line
    sink.close()
    report = send_edition(settings, store, DATE, NOW, force=True, policy=QUICK)
    assert report.server_gone and "127.0.0.1" in report.server_gone
    assert report.sent == 0
    assert store.delivery_counts(DATE) == {"queued": len(PEOPLE)}
    result = digest_command(
        "send",
        "--date",
        DATE.isoformat(),
        "--force",
        config=settings.config_path,
        env={"DIGEST_SMTP_URL": settings.smtp_url or "", "DIGEST_DB": settings.db_url},
    )
    assert result.returncode == 1
    assert "the rest is queued: 'digest send' goes on" in result.stderr


def test_who_unsubscribes_during_a_send_gets_nothing_more(
    line: tuple[Settings, Store], sink: Sink
) -> None:
    settings, store = line
    leaving = set(PEOPLE[6:])

    def reply(rcpt: str, attempt: int) -> str:
        if rcpt == PEOPLE[0]:  # while the first message goes, the others leave
            for address in leaving:
                store.unsubscribe(address, NOW)
        return "250 OK"

    sink.data_reply = reply
    report = send_edition(settings, store, DATE, NOW, force=True, policy=_policy(connections=1))
    assert set(sink.received) == set(PEOPLE[:6])
    assert report.counts == {"sent": 6, "cancelled": 6}
    assert store.delivery_counts(DATE) == {"sent": 6, "cancelled": 6}


def test_postfix_smtp_sink_receives_each_message_once(line: tuple[Settings, Store]) -> None:
    executable = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    assert Path(executable).exists(), "Postfix is not installed: run 'make system-deps'"
    settings, store = line
    # smtp-sink writes as the user it switches to: a folder that user can reach and write.
    dump = Path(tempfile.mkdtemp(prefix="smtp-sink-"))
    dump.chmod(0o777)
    import socket

    with socket.socket() as probe:  # smtp-sink takes an address, not a socket
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [executable, "-u", "nobody", "-d", f"{dump}/%M.", f"127.0.0.1:{port}", "100"]
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        from dataclasses import replace

        real = replace(settings, smtp_url=f"smtp://127.0.0.1:{port}")
        report = send_edition(real, store, DATE, NOW, force=True, policy=QUICK)
    finally:
        server.terminate()
        server.wait(10)
    dumps = [path.read_bytes() for path in dump.iterdir()]
    shutil.rmtree(dump)
    assert report.sent == len(PEOPLE)
    # Each dump starts with the envelope as smtp-sink saw it: "X-Rcpt-Args: <address>".
    recipients = sorted(
        line.removeprefix(b"X-Rcpt-Args: <").rstrip(b">").decode()
        for body in dumps
        for line in body.splitlines()
        if line.startswith(b"X-Rcpt-Args: ")
    )
    assert recipients == sorted(PEOPLE)  # one transaction each, none twice
    assert all(b"Subject: Market Digest" in body for body in dumps)


def test_the_ledger_counts_each_status(line: tuple[Settings, Store], sink: Sink) -> None:
    settings, store = line
    sink.rcpt_reply = lambda rcpt, attempt: "550 5.1.1 gone" if rcpt == PEOPLE[0] else "250 OK"
    send_edition(settings, store, DATE, NOW, force=True, policy=QUICK)
    env = {"DIGEST_DB": settings.db_url}
    result = digest_command("sends", DATE.isoformat(), config=settings.config_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "The edition of 2026-11-24: 0 queued, 0 sending, 11 sent, 0 deferred, 0 failed,"
        " 1 bounced, 0 unknown, 0 cancelled.",
        f"  bounced {PEOPLE[0]}: 550 5.1.1 gone",
    ]
    assert Status.BOUNCED == "bounced"


def test_unsubscribing_by_the_web_link_or_the_cli_mid_send_stops_the_mail(
    line: tuple[Settings, Store], sink: Sink
) -> None:
    import urllib.request

    from digest.pipeline import make_site
    from digest.web import make_app

    from .conftest import serve_app

    settings, store = line
    site = make_site(settings, store)
    by_link, by_cli = PEOPLE[8], PEOPLE[10]
    with serve_app(make_app(settings, store)) as port:

        def reply(rcpt: str, attempt: int) -> str:
            if rcpt == PEOPLE[0]:  # while the first message goes: one clicks, one is removed
                leaving = store.subscriber(by_link)
                assert leaving is not None
                link = site.links(DATE, leaving, NOW).unsubscribe.removeprefix(site.url)
                url = f"http://127.0.0.1:{port}{link}"
                post = urllib.request.Request(url, data=b"List-Unsubscribe=One-Click")
                with urllib.request.urlopen(post, timeout=10) as answer:
                    assert answer.status == 200
                removed = digest_command(
                    "subscribers",
                    "remove",
                    by_cli,
                    config=settings.config_path,
                    env={"DIGEST_DB": settings.db_url},
                )
                assert removed.returncode == 0, removed.stderr
            return "250 OK"

        sink.data_reply = reply
        policy = _policy(connections=1)
        send_edition(settings, store, DATE, NOW, force=True, policy=policy)
    assert set(sink.received) == set(PEOPLE) - {by_link, by_cli}
    assert store.delivery_counts(DATE) == {"sent": 10, "cancelled": 2}


def test_the_service_retries_deferred_and_unknown_deliveries_of_the_last_day(
    line: tuple[Settings, Store], sink: Sink
) -> None:
    from digest.schedule import Service

    settings, store = line
    sink.rcpt_reply = lambda rcpt, attempt: (
        "451 4.7.1 try again later" if rcpt == PEOPLE[0] and attempt == 1 else "250 OK"
    )
    sink.data_reply = lambda rcpt, attempt: (
        WITHHOLD_AND_DIE if rcpt == PEOPLE[1] and attempt == 1 else "250 OK"
    )
    send(settings, store, retry_waits=(dt.timedelta(hours=1),), connections=1)
    counts = store.delivery_counts(DATE)
    assert counts == {"sent": 10, "deferred": 1, "unknown": 1}
    store.add_subscriber(Subscriber("late@example.com"), NOW + dt.timedelta(hours=1))
    # An hour has passed: the deferred message is due again.
    from digest.store import schema

    with store.begin() as c:
        c.execute(
            schema.deliveries.update()
            .where(schema.deliveries.c.status == "deferred")
            .values(next_attempt=dt.datetime(2000, 1, 1))
        )

    service = Service(settings, store, holder="a", clock=lambda: NOW + dt.timedelta(hours=2))
    service.renew_lease()
    service.retry()
    assert store.delivery_counts(DATE) == {"sent": 12}
    assert sink.received[PEOPLE[0]] == 1 and sink.received[PEOPLE[1]] == 2
    assert "late@example.com" not in sink.received  # an older edition is not replanned

    a_day_later = Service(settings, store, holder="a", clock=lambda: NOW + dt.timedelta(days=2))
    a_day_later.renew_lease()
    a_day_later.retry()  # nothing of the last 24 hours: nothing to do
    assert sum(sink.received.values()) == 13
