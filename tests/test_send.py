from __future__ import annotations

import datetime as dt
from email import message_from_bytes
from email.policy import default as default_policy

import pytest

from digest.errors import AddressError, MessageRefusedError, SendError
from digest.message import compose, list_id, make_message_id, to_bytes, unsubscribe_headers
from digest.models import Email
from digest.send import Mailer
from digest.site import make_token, read_token
from digest.subscribers import normalize_address

from .conftest import Inbox

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
SENDER = "Market Digest <digest@example.com>"


def make_email(recipient: str = "a@example.com", subject: str = "Hello") -> Email:
    return Email(
        recipient=recipient,
        subject=subject,
        html="<p>Hi</p>",
        text="Hi",
        message_id=make_message_id(NOW.date(), recipient, SENDER),
        headers=unsubscribe_headers(
            "https://d.example.com/unsubscribe?x=1",
            "mailto:digest+unsubscribe@example.com?subject=unsubscribe",
            "Digest <d.example.com>",
        ),
    )


def test_message_has_the_required_headers_and_two_parts() -> None:
    message = compose(make_email(), SENDER, NOW)
    parsed = message_from_bytes(message.as_bytes(), policy=default_policy)
    assert parsed["From"] == SENDER
    assert parsed["To"] == "a@example.com"
    assert parsed["Date"] == "Tue, 24 Nov 2026 12:00:00 +0000"
    assert parsed["List-Unsubscribe"] == (
        "<https://d.example.com/unsubscribe?x=1>, "
        "<mailto:digest+unsubscribe@example.com?subject=unsubscribe>"
    )
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]


def test_feed_text_cannot_add_header_lines() -> None:
    hostile = "Big news\r\nBcc: victim@example.com\nX-Evil: 1"
    raw = compose(make_email(subject=hostile), SENDER, NOW).as_bytes()
    parsed = message_from_bytes(raw, policy=default_policy)
    assert parsed["Bcc"] is None and parsed["X-Evil"] is None
    assert "Big news" in parsed["Subject"]


def test_message_id_is_stable_per_edition_and_recipient() -> None:
    date = dt.date(2026, 11, 24)
    first = make_message_id(date, "a@example.com", SENDER)
    assert first == make_message_id(date, "A@example.com", SENDER)
    assert first != make_message_id(date, "b@example.com", SENDER)
    assert first != make_message_id(date + dt.timedelta(days=1), "a@example.com", SENDER)
    assert first.endswith("@example.com>")
    assert list_id("Market Digest", SENDER) == "Market Digest <market-digest.example.com>"


def test_unsubscribe_tokens_verify_only_for_their_address() -> None:
    token = make_token("key", "a@example.com")
    assert read_token("key", token) == "a@example.com"
    signature = token.partition(".")[2]
    forged = make_token("key", "b@example.com").partition(".")[0] + "." + signature
    assert read_token("key", forged) is None
    assert read_token("other", token) is None


@pytest.mark.parametrize("bad", ["", "no-at-sign", "a@", "a b@example.com", "a@exa mple.com"])
def test_invalid_addresses_are_refused(bad: str) -> None:
    with pytest.raises(AddressError):
        normalize_address(bad)


def test_addresses_are_normalised() -> None:
    assert normalize_address("  Alice@EXAMPLE.com ") == "Alice@example.com"


def test_mailer_delivers_to_a_real_smtp_server(inbox: Inbox) -> None:
    mailer = Mailer(inbox.url)
    for recipient in ("a@example.com", "b@example.com"):
        mailer.send(to_bytes(compose(make_email(recipient), SENDER, NOW)), SENDER, recipient)
    mailer.close()
    assert [(sender, rcpt) for sender, rcpt, _ in inbox.messages] == [
        ("digest@example.com", ["a@example.com"]),
        ("digest@example.com", ["b@example.com"]),
    ]


def test_refused_recipient_is_a_message_error_and_the_connection_goes_on(inbox: Inbox) -> None:
    inbox.refuse.add("a@example.com")
    mailer = Mailer(inbox.url)
    with pytest.raises(MessageRefusedError, match=r"a@example\.com: recipient refused: 550"):
        mailer.send(
            to_bytes(compose(make_email("a@example.com"), SENDER, NOW)), SENDER, "a@example.com"
        )
    mailer.send(
        to_bytes(compose(make_email("b@example.com"), SENDER, NOW)), SENDER, "b@example.com"
    )
    mailer.close()
    assert len(inbox.messages) == 1


def test_unreachable_server_names_it() -> None:
    with pytest.raises(SendError, match=r"SMTP server 127\.0\.0\.1:9: "):
        Mailer("smtp://127.0.0.1:9", timeout=5).send(
            to_bytes(compose(make_email(), SENDER, NOW)), SENDER, "a@example.com"
        )
