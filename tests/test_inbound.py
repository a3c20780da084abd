"""Reading inbound mail on its own: unsubscribe tokens, bounce reports, the list's addresses.

The reports in tests/data/dsn/ have the shape Postfix and Exim give them.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path

import pytest

from digest.inbound import (
    Bounce,
    Role,
    is_delivery_report,
    mailboxes_of,
    read_bounces,
    read_unsubscribe,
    token_in_line,
    token_in_subject,
)

DSN = Path(__file__).parent / "data" / "dsn"
TOKEN = "YW5uQGV4YW1wbGUuY29t.q1w2e3r4t5y6u7i8o9p0-_aZ"


def parsed(raw: bytes) -> EmailMessage:
    return BytesParser(EmailMessage, policy=default_policy).parsebytes(raw)


def report(name: str) -> EmailMessage:
    return parsed((DSN / name).read_bytes())


def message(subject: str, body: str = "") -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "ann@example.com"
    mail["To"] = "digest+unsubscribe@example.com"
    mail["Subject"] = subject
    mail.set_content(body)
    return parsed(mail.as_bytes())


@pytest.mark.parametrize(
    "subject",
    [
        f"unsubscribe {TOKEN}",
        f"Unsubscribe {TOKEN}",
        f"UNSUBSCRIBE   {TOKEN}  ",
        f"Re: unsubscribe {TOKEN}",
        f"RE: Fwd: unsubscribe {TOKEN}",
        f"Fw: re[2]: Unsubscribe {TOKEN}",
        f"AW: unsubscribe: {TOKEN}",
        f"unsubscribe%20{TOKEN}",  # a client that did not decode the mailto's subject
    ],
)
def test_the_token_is_read_from_the_subject_under_prefixes_and_in_any_case(subject: str) -> None:
    assert token_in_subject(subject) == TOKEN
    assert read_unsubscribe(message(subject)) == TOKEN


@pytest.mark.parametrize(
    "subject",
    ["", "unsubscribe", "please unsubscribe me", f"unsubscribe {TOKEN} now", f"subscribe {TOKEN}"],
)
def test_a_subject_that_is_not_exactly_a_request_has_no_token(subject: str) -> None:
    assert token_in_subject(subject) is None


def test_a_folded_subject_reads_as_one_line() -> None:
    raw = f"From: a@example.com\r\nSubject: Re:\r\n unsubscribe\r\n {TOKEN}\r\n\r\nhi\r\n"
    assert read_unsubscribe(parsed(raw.encode())) == TOKEN


def test_the_token_may_be_on_the_first_line_of_the_body() -> None:
    assert read_unsubscribe(message("Remove me", f"\n\n  unsubscribe {TOKEN}\nthanks\n")) == TOKEN
    assert read_unsubscribe(message("unsubscribe", f"{TOKEN}\n")) == TOKEN


def test_the_subject_wins_over_the_body() -> None:
    assert read_unsubscribe(message(f"unsubscribe {TOKEN}", "unsubscribe other\n")) == TOKEN


def test_a_message_without_a_token_has_none() -> None:
    assert read_unsubscribe(message("Hello", "Please take me off your list.\n")) is None
    assert read_unsubscribe(message("unsubscribe", "unsubscribe\n")) is None
    assert token_in_line("unsubscribe") is None


def test_a_body_only_in_html_is_not_read() -> None:
    mail = EmailMessage()
    mail["Subject"] = "unsubscribe"
    mail.set_content(f"<p>{TOKEN}</p>", subtype="html")
    assert read_unsubscribe(parsed(mail.as_bytes())) is None


def test_a_postfix_report_names_the_recipient_status_reason_and_message() -> None:
    assert read_bounces(report("postfix-user-unknown.eml")) == [
        Bounce(
            recipient="gone@example.net",
            action="failed",
            status="5.1.1",
            diagnostic="550 5.1.1 <gone@example.net>: Recipient address rejected: "
            "User unknown in virtual mailbox table",
            reporting_mta="mx.example.net",
            message_id="<digest.20261124.0c1f3e5a7b9d2e4f6a8c@example.com>",
        )
    ]


def test_an_exim_report_names_the_original_recipient_and_keeps_a_timeout_temporary() -> None:
    bob, carol = read_bounces(report("exim-original-recipient.eml"))
    # The address the message was sent to, not the mailbox a forward led to.
    assert bob.recipient == "Bob.Smith@Example.org"
    assert (bob.action, bob.status, bob.permanent) == ("failed", "5.2.1", True)
    assert bob.message_id == "<digest.20261124.9a8b7c6d5e4f3a2b1c0d@example.com>"
    assert bob.reason == (
        "550 5.2.1 The email account that you tried to reach is disabled. "
        "(reported by mail.example.org)"
    )
    # Given up after retrying a temporary failure: failed, but not the mailbox's refusal.
    assert (carol.recipient, carol.status, carol.permanent) == ("carol@example.org", "4.0.0", False)
    assert carol.reason == "status 4.0.0 (reported by mail.example.org)"


def test_a_delay_warning_is_not_permanent() -> None:
    (slow,) = read_bounces(report("postfix-delayed.eml"))
    assert (slow.recipient, slow.action, slow.status) == ("slow@example.com", "delayed", "4.4.1")
    assert not slow.permanent
    assert slow.diagnostic == "connect to mail.example.com[192.0.2.25]:25: Connection timed out"


def test_a_malformed_report_gives_only_what_can_be_read_and_never_a_permanent_failure() -> None:
    # No recipient, an empty one, an unreadable status, a delivery that succeeded.
    (odd,) = read_bounces(report("malformed.eml"))
    assert (odd.recipient, odd.action, odd.status) == ("odd@example.net", "failed", "")
    assert not odd.permanent
    assert odd.message_id is None


def test_mail_that_is_not_a_report_has_no_bounces() -> None:
    auto_reply = message("Out of office", "I am away until Monday.\n")
    assert not is_delivery_report(auto_reply)
    assert read_bounces(auto_reply) == []
    # A report of another kind (a read receipt) is not a delivery status notification.
    receipt = parsed(
        b"Content-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n"
        b"\r\n--b\r\nContent-Type: text/plain\r\n\r\nread\r\n--b--\r\n"
    )
    assert read_bounces(receipt) == []


def test_a_report_without_its_status_part_has_no_bounces() -> None:
    raw = (
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n"
        b"\r\n--b\r\nContent-Type: text/plain\r\n\r\nYour mail to gone@example.net failed.\r\n"
        b"--b--\r\n"
    )
    assert read_bounces(parsed(raw)) == []


def test_an_international_report_decodes_its_utf8_address() -> None:
    raw = (
        "Content-Type: multipart/report; report-type=global-delivery-status; boundary=b\r\n"
        "\r\n--b\r\nContent-Type: message/global-delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.cn\r\n\r\n"
        "Final-Recipient: utf-8; \\x{7528}\\x{6237}@例子.广告\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n"
        "--b\r\nContent-Type: message/global-headers\r\n\r\n"
        "To: 用户@例子.广告\r\nMessage-ID: <digest.1@example.com>\r\n"
        "--b--\r\n"
    )
    (bounce,) = read_bounces(parsed(raw.encode()))
    assert (bounce.recipient, bounce.permanent) == ("用户@例子.广告", True)
    assert bounce.message_id == "<digest.1@example.com>"


def test_the_lists_addresses_are_known_in_any_letter_case() -> None:
    boxes = mailboxes_of("Market Digest <digest@example.com>")
    assert boxes.unsubscribe == "digest+unsubscribe@example.com"
    assert boxes.role("digest@example.com") is Role.BOUNCES
    assert boxes.role("Digest+Bounces@EXAMPLE.com") is Role.BOUNCES
    assert boxes.role("DIGEST+unsubscribe@example.com") is Role.UNSUBSCRIBE
    assert boxes.role("digest+other@example.com") is None
    assert boxes.role("ann@example.com") is None
    assert boxes.role("digest@example.org") is None
    assert boxes.is_our_domain("ann@Example.com") and not boxes.is_our_domain("a@example.org")
