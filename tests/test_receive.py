"""Inbound mail end to end: editions go out through aiosmtpd on 127.0.0.1, and unsubscribes
and bounce reports come back over SMTP to ``digest inbound``'s server, also on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import selectors
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from urllib.parse import unquote

import pytest

from digest.config import Settings, load_settings
from digest.message import compose, make_email
from digest.models import Digest, Section, Story, Subscriber
from digest.pipeline import publisher_of, send_edition
from digest.receive import inbound_server, make_receiver
from digest.store import Store

from .conftest import Inbox, digest_process, write_config
from .factories import make_item

DATE = dt.date(2026, 11, 24)
NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
ANN, BOB, CAROL = "ann@example.com", "bob@example.net", "Carol@Example.org"
LIST = "digest@example.com"


def edition(date: dt.date) -> Digest:
    stories = tuple(
        Story((make_item(title),), Section.STOCKS, 1.0)
        for title in ("Nvidia beats estimates", "Fed holds rates", "Oil slips on supply")
    )
    end = dt.datetime.combine(date, dt.time(12), tzinfo=dt.UTC)
    return Digest(date, "Market Digest", "Daily", end - dt.timedelta(days=1), end, stories, ())


@pytest.fixture
def line(tmp_path: Path, inbox: Inbox) -> Iterator[tuple[Settings, Store]]:
    """Settings whose edition goes out from digest@example.com through ``inbox``; a store
    with three subscribers."""
    feed = {"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks"}
    config = write_config(tmp_path, [feed])
    settings = load_settings(config, env={"DIGEST_SMTP_URL": inbox.url})
    store = Store(settings.db_url)
    for address in (ANN, BOB, CAROL):
        store.add_subscriber(Subscriber(address), NOW)
    yield settings, store
    store.close()


@pytest.fixture
def port(line: tuple[Settings, Store]) -> Iterator[int]:
    """The port of the inbound server for ``line``'s list."""
    settings, store = line
    with inbound_server(make_receiver(settings, store)) as (_, listening):
        yield listening


def send_day(settings: Settings, store: Store, inbox: Inbox, date: dt.date) -> dict[str, bytes]:
    """Build and send ``date``'s edition; each message received, by recipient."""
    store.save_edition(edition(date), NOW)
    before = len(inbox.messages)
    send_edition(settings, store, date, NOW, force=True)
    return {recipients[0]: raw for _, recipients, raw in inbox.messages[before:]}


def deliver(port: int, mail_from: str, to: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail(mail_from, [to], raw)


def mailto_of(settings: Settings, store: Store, email: str) -> tuple[str, str]:
    """The address and subject of the mailto: unsubscribe in ``email``'s message."""
    subscriber = store.subscriber(email)
    assert subscriber is not None
    publisher = publisher_of(settings, store)
    message = compose(make_email(edition(DATE), publisher, subscriber), publisher.sender, NOW)
    header = str(message["List-Unsubscribe"])
    found = re.search(r"<mailto:([^?>]+)\?subject=([^>]+)>", header)
    assert found is not None, header
    return found[1], unquote(found[2])


def active(store: Store, email: str) -> bool:
    subscriber = store.subscriber(email)
    assert subscriber is not None
    return subscriber.active


def request(to: str, subject: str, sender: str = ANN) -> bytes:
    """The message a mail client sends for a mailto: link."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail.set_content("This message will unsubscribe you.\n")
    return mail.as_bytes(policy=SMTP)


def report(returned: bytes, recipient: str, action: str = "failed", status: str = "5.1.1") -> bytes:
    """A bounce report as Postfix writes it, returning the headers of the message ``returned``."""
    headers = returned.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode()
    return f"""\
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: {LIST}
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B/mx"

--B/mx
Content-Type: text/plain; charset=utf-8

This is the mail system at host mx.example.net.

--B/mx
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected:
    User unknown

--B/mx
Content-Type: text/rfc822-headers

{headers}

--B/mx--
""".replace("\n", "\r\n").encode()


def test_a_mailto_unsubscribe_from_the_list_header_unsubscribes_the_reader(
    line: tuple[Settings, Store], port: int, caplog: pytest.LogCaptureFixture
) -> None:
    settings, store = line
    address, subject = mailto_of(settings, store, ANN)
    assert address == "digest+unsubscribe@example.com" and subject.startswith("unsubscribe ")
    caplog.set_level(logging.INFO, logger="digest.receive")
    # As a reply, and in a client that changed the word's case.
    token = subject.removeprefix("unsubscribe ")
    deliver(port, ANN, address, request(address, f"Re:  UNSUBSCRIBE {token}"))
    assert not active(store, ANN)
    assert [s.email for s in store.subscribers(active_only=True)] == [CAROL, BOB]
    assert [r.getMessage() for r in caplog.records] == [f"unsubscribed {ANN}: by mail"]


def test_a_tampered_token_changes_nothing(
    line: tuple[Settings, Store], port: int, caplog: pytest.LogCaptureFixture
) -> None:
    settings, store = line
    address, subject = mailto_of(settings, store, ANN)
    tampered = subject[:-1] + ("A" if subject[-1] != "A" else "B")
    version = store.subscribers_version()
    caplog.set_level(logging.INFO, logger="digest.receive")
    deliver(port, ANN, address, request(address, tampered))  # taken: no error to retry
    assert active(store, ANN)
    assert store.subscribers_version() == version
    assert [r.getMessage() for r in caplog.records] == [
        f"ignored {ANN}: an unsubscribe request whose token is not valid"
    ]


def test_bounce_reports_mark_the_delivery_bounced_and_a_second_edition_drops_the_address(
    line: tuple[Settings, Store], port: int, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    settings, store = line
    caplog.set_level(logging.INFO, logger="digest.receive")
    first = send_day(settings, store, inbox, DATE)
    # The report names the address in another letter case than the one stored.
    deliver(port, "", LIST, report(first[BOB], "Bob@Example.NET"))
    reason = (
        "550 5.1.1 <Bob@Example.NET>: Recipient address rejected: User unknown "
        "(reported by mx.example.net)"
    )
    assert store.problem_deliveries(DATE) == [(BOB, "bounced", reason)]
    assert active(store, BOB)  # one edition is not yet a pattern

    later = DATE + dt.timedelta(days=1)
    second = send_day(settings, store, inbox, later)
    assert BOB in second
    deliver(port, "", "digest+bounces@example.com", report(second[BOB], BOB))
    assert store.delivery_counts(later) == {"sent": 2, "bounced": 1}
    assert not active(store, BOB)
    assert [r.getMessage() for r in caplog.records] == [
        f"bounced Bob@Example.NET: {DATE}: {reason}",
        f"bounced {BOB}: {later}: {reason.replace('Bob@Example.NET', BOB)}",
        f"dropped {BOB}: bounced 2 editions in a row; no more mail",
    ]
    third = send_day(settings, store, inbox, later + dt.timedelta(days=1))
    assert sorted(third) == sorted([ANN, "Carol@example.org"])


def test_a_report_on_an_older_edition_bounces_that_edition_once(
    line: tuple[Settings, Store], port: int, inbox: Inbox
) -> None:
    settings, store = line
    first = send_day(settings, store, inbox, DATE)
    later = DATE + dt.timedelta(days=1)
    send_day(settings, store, inbox, later)
    late_report = report(first[ANN], ANN)  # it names the first edition's Message-ID
    deliver(port, "", LIST, late_report)
    assert store.delivery_counts(DATE) == {"sent": 2, "bounced": 1}
    assert store.delivery_counts(later) == {"sent": 3}
    deliver(port, "", LIST, late_report)  # the same report again: nothing more
    assert store.delivery_counts(later) == {"sent": 3}
    assert active(store, ANN)


def test_a_delay_warning_is_logged_and_recorded_nowhere(
    line: tuple[Settings, Store], port: int, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    settings, store = line
    first = send_day(settings, store, inbox, DATE)
    caplog.set_level(logging.INFO, logger="digest.receive")
    deliver(port, "", LIST, report(first[ANN], ANN, action="delayed", status="4.4.1"))
    assert store.delivery_counts(DATE) == {"sent": 3}
    (logged,) = [r.getMessage() for r in caplog.records]
    assert logged.startswith(f"temporary {ANN}: delayed 4.4.1: 550 5.1.1") and logged.endswith(
        "; not recorded"
    )


def test_a_report_for_an_address_never_sent_to_changes_nothing(
    line: tuple[Settings, Store], port: int, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    settings, store = line
    first = send_day(settings, store, inbox, DATE)
    caplog.set_level(logging.INFO, logger="digest.receive")
    deliver(port, "", LIST, report(first[ANN], "stranger@example.net"))
    assert store.delivery_counts(DATE) == {"sent": 3}
    assert [r.getMessage() for r in caplog.records] == [
        "ignored stranger@example.net: a bounce report for no message sent"
    ]


def test_other_mail_to_the_list_is_taken_and_ignored(
    line: tuple[Settings, Store], port: int, caplog: pytest.LogCaptureFixture
) -> None:
    _, store = line
    caplog.set_level(logging.INFO, logger="digest.receive")
    thanks = request(LIST, "Thanks for the digest!")
    deliver(port, ANN, LIST, thanks)
    deliver(port, ANN, "digest+unsubscribe@example.com", thanks)  # no token in it
    assert len(store.subscribers(active_only=True)) == 3
    assert [r.getMessage() for r in caplog.records] == [
        f"ignored {ANN}: not a bounce report: 'Thanks for the digest!'",
        f"ignored {ANN}: an unsubscribe request without a token",
    ]


@pytest.mark.parametrize(
    ("recipient", "reply"),
    [
        ("someone@elsewhere.example", b"5.7.1 Relaying denied"),
        ("postmaster@example.com", b"5.1.1 No such mailbox here"),
        ("digest+other@example.com", b"5.1.1 No such mailbox here"),
    ],
)
def test_mail_for_any_other_address_is_refused_at_rcpt(
    port: int, recipient: str, reply: bytes
) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        deliver(port, ANN, recipient, request(recipient, "hello"))
    assert refused.value.recipients == {recipient: (550, reply)}


def test_a_database_that_cannot_be_written_asks_the_relay_to_try_later(
    line: tuple[Settings, Store], port: int, inbox: Inbox
) -> None:
    settings, store = line
    first = send_day(settings, store, inbox, DATE)
    database = sqlite3.connect(settings.db_url.removeprefix("sqlite:///"))
    database.execute("ALTER TABLE deliveries RENAME TO deliveries_elsewhere")
    database.commit()
    database.close()
    with pytest.raises(smtplib.SMTPDataError) as deferred:
        deliver(port, "", LIST, report(first[ANN], ANN))
    assert deferred.value.smtp_code == 451


def test_the_inbound_command_receives_until_interrupted(line: tuple[Settings, Store]) -> None:
    settings, store = line
    address, subject = mailto_of(settings, store, CAROL)
    clean = {name: value for name, value in os.environ.items() if not name.startswith("DIGEST_")}
    config = str(settings.config_path)
    child = subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", config, "inbound", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean,
    )
    try:
        banner = _first_line(child, timeout=60)
        listening = re.search(rb"on 127\.0\.0\.1:(\d+) \(Ctrl-C stops\)", banner)
        assert listening is not None, banner
        deliver(int(listening[1]), CAROL, address, request(address, subject, CAROL))
        assert not active(store, CAROL)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, err
    assert out.decode().endswith("Stopped.\n")
    assert "digest.receive unsubscribed Carol@Example.org: by mail" in err.decode()


def _first_line(child: subprocess.Popen[bytes], timeout: float) -> bytes:
    """The child's first line of output, without waiting forever for it."""
    assert child.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"no output in {timeout} s")
    return child.stdout.readline()


def test_a_port_in_use_is_one_line_of_error(line: tuple[Settings, Store]) -> None:
    settings, _ = line
    with socket.create_server(("127.0.0.1", 0)) as busy:
        taken = busy.getsockname()[1]
        result = digest_process("inbound", "--port", str(taken), config=settings.config_path)
    assert result.returncode == 1
    assert result.stderr == f"Error: cannot listen on 127.0.0.1:{taken}: Address already in use\n"
