from __future__ import annotations

import datetime as dt
import ssl
import subprocess
from collections.abc import Iterator
from email import message_from_bytes
from email.header import decode_header
from email.policy import compat32
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.errors import AddressError, ConfigError, MessageRefusedError, SendError
from digest.message import compose, list_id, make_message_id, to_bytes, unsubscribe_headers
from digest.models import Email
from digest.send import Mailer
from digest.subscribers import normalize_address

from .checks import (
    ANY_CHARACTER,
    assert_safe_line,
    assert_sound_headers,
    header_block,
    header_names,
    raw_header,
)
from .conftest import Inbox, digest_command, write_config

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


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.text(st.sampled_from(".. .x\tz\u00e9"), max_size=12).map(str.encode), max_size=8)
)
def test_a_message_arrives_as_it_was_whatever_its_lines_start_with(lines: list[bytes]) -> None:
    # DATA ends at a line holding one dot, so every line that starts with a dot is sent
    # with another, which the server takes off: the message arrives byte for byte.
    body = b"\r\n".join([b"Subject: dots", b"", *lines]) + b"\r\n"
    inbox = Inbox()
    try:
        mailer = Mailer(inbox.url)
        mailer.send(body, SENDER, "a@example.com")
        mailer.send(b"." + body, SENDER, "b@example.com")
        mailer.close()
    finally:
        inbox.close()
    assert [message for _, _, message in inbox.messages] == [body, b"." + body]


def test_refused_recipient_is_a_message_error_and_the_connection_goes_on(inbox: Inbox) -> None:
    inbox.refuse.add("a@example.com")
    mailer = Mailer(inbox.url)
    refused = r"a@example\.com: 550 5\.1\.1 mailbox unavailable"
    with pytest.raises(MessageRefusedError, match=refused):
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


# -- the SMTP password goes only over TLS ------------------------------------------------------


class Credentials:
    """An aiosmtpd authenticator that accepts user/secret and remembers every attempt."""

    def __init__(self) -> None:
        self.tried: list[tuple[str, str]] = []

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.tried.append((login, password))
        return AuthResult(success=(login, password) == ("user", "secret"))


@pytest.fixture
def credentials() -> Credentials:
    return Credentials()


@pytest.fixture
def clear_auth_inbox(credentials: Credentials) -> Iterator[Inbox]:
    """A server that would take a password without TLS, as a careless relay does."""
    smtp = Inbox(authenticator=credentials, auth_require_tls=False)
    yield smtp
    smtp.close()


def with_password(url: str, query: str = "") -> str:
    return url.replace("smtp://", "smtp://user:secret@") + query


def test_a_password_is_not_sent_without_tls(
    clear_auth_inbox: Inbox, credentials: Credentials
) -> None:
    url = with_password(clear_auth_inbox.url)
    with pytest.raises(ConfigError) as refused:
        Mailer(url)
    message = str(refused.value)
    assert message == (
        f"smtp://user:***@127.0.0.1:{clear_auth_inbox.port}: refusing to send the SMTP password "
        "without TLS; use smtps:// or add ?starttls=1 (or ?insecure=1 to send it in clear anyway)"
    )
    assert "secret" not in message
    assert credentials.tried == [] and clear_auth_inbox.messages == []


def test_insecure_1_sends_the_password_in_clear_when_asked(
    clear_auth_inbox: Inbox, credentials: Credentials
) -> None:
    mailer = Mailer(with_password(clear_auth_inbox.url, "?insecure=1"))
    mailer.send(to_bytes(compose(make_email(), SENDER, NOW)), SENDER, "a@example.com")
    mailer.close()
    assert credentials.tried == [("user", "secret")]
    assert len(clear_auth_inbox.messages) == 1


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_starttls_sends_the_password_encrypted(
    certificate: tuple[Path, Path], credentials: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    # The client trusts the test certificate the way it trusts any: from the CA file.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    inbox = Inbox(authenticator=credentials, tls_context=context, require_starttls=True)
    try:
        mailer = Mailer(with_password(inbox.url, "?starttls=1"))
        mailer.send(to_bytes(compose(make_email(), SENDER, NOW)), SENDER, "a@example.com")
        mailer.close()
    finally:
        inbox.close()
    assert credentials.tried == [("user", "secret")]
    assert len(inbox.messages) == 1


def test_the_cli_refuses_a_password_without_tls_in_one_line(tmp_path: Path) -> None:
    feed = {"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks"}
    config = write_config(tmp_path, [feed])
    assert digest_command("build", "--date", "2026-11-24", config=config).returncode == 0
    sent = digest_command(
        "send",
        "--date",
        "2026-11-24",
        config=config,
        env={"DIGEST_SMTP_URL": "smtp://user:secret@127.0.0.1:2525"},
    )
    assert sent.returncode == 1
    assert sent.stderr.splitlines() == [
        "Error: DIGEST_SMTP_URL: smtp://user:***@127.0.0.1:2525: refusing to send the SMTP "
        "password without TLS; use smtps:// or add ?starttls=1 (or ?insecure=1 to send it in "
        "clear anyway)"
    ]


def site_like_email(url: str, mailto: str) -> Email:
    return Email(
        "a@example.com",
        "Hello",
        "<p>Hi</p>",
        "Hi",
        make_message_id(NOW.date(), "a@example.com", SENDER),
        unsubscribe_headers(url, mailto, "Digest <d.example.com>"),
    )


#: As long as the site's own links: a signed token of 60-odd characters each.
TOKEN = "YWxpY2VAZXhhbXBsZS5jb20." + "x" * 40
UNSUBSCRIBE_URL = f"https://digest.example.com/unsubscribe?t={TOKEN}"
UNSUBSCRIBE_MAILTO = f"mailto:digest+unsubscribe@example.com?subject=unsubscribe%20{TOKEN}"


def test_list_unsubscribe_is_written_raw_and_folded_at_the_comma() -> None:
    email = site_like_email(UNSUBSCRIBE_URL, UNSUBSCRIBE_MAILTO)
    raw = to_bytes(compose(email, SENDER, NOW))
    lines = header_block(raw)
    first = lines.index(f"List-Unsubscribe: <{UNSUBSCRIBE_URL}>,".encode())
    assert lines[first + 1] == f" <{UNSUBSCRIBE_MAILTO}>".encode()
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in lines
    assert raw_header(raw, "List-Unsubscribe") == (
        f"<{UNSUBSCRIBE_URL}>, <{UNSUBSCRIBE_MAILTO}>".encode()
    )


def test_short_list_unsubscribe_stays_on_one_line() -> None:
    email = site_like_email("https://d.example.com/u?t=1", "mailto:u@example.com")
    lines = header_block(to_bytes(compose(email, SENDER, NOW)))
    assert b"List-Unsubscribe: <https://d.example.com/u?t=1>, <mailto:u@example.com>" in lines


def test_a_list_unsubscribe_url_beyond_ascii_is_percent_encoded_not_rfc2047() -> None:
    email = site_like_email("https://d.example.com/désabonner?t=1", "mailto:u@example.com")
    value = raw_header(to_bytes(compose(email, SENDER, NOW)), "List-Unsubscribe")
    assert value == b"<https://d.example.com/d%C3%A9sabonner?t=1>, <mailto:u@example.com>"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Big\u2028news", "Big news"),
        ("Big\u2029\x0b\x0c\x85news", "Big news"),
        ("Big =?utf-8?q?=E2=80=A8?= news", "Big news"),
        ("Big =?utf-8?q?=0B=0C=C2=85?= news", "Big news"),
        # An encoded word inside an encoded word: decoded until nothing is left to decode.
        ("Big =?utf-8?q?=3D=3Futf-8=3Fq=3F=3DE2=3D80=3DA8=3F=3D?= news", "Big news"),
        ("Big \u202enews\u202c \u2066now\u2069", "Big news now"),
        ("Big\ud800 news\ufffe", "Big news"),
        ("Big =?utf-8?b?7aCA?= news", "Big \ufffd\ufffd\ufffd news"),
    ],
)
def test_compose_writes_a_safe_subject_whatever_the_text(subject: str, expected: str) -> None:
    raw = to_bytes(compose(make_email(subject=subject), SENDER, NOW))
    assert header_names(raw) == COMPOSED_HEADERS
    assert str(assert_sound_headers(raw)["Subject"]) == expected


@pytest.mark.parametrize(
    "subject",
    [
        # The library folded these with a space at the end of a line and one at the start of
        # the next, and right after "Subject:": readers saw two spaces, or one in front.
        "Market Digest for Nov 24: \U00045b2bê³ß%Â¯" + "word " * 14 + "word…",
        "0" * 70 + " x",
        "=?UTF7?B? 0¡",
    ],
)
def test_the_subject_reads_back_as_written(subject: str) -> None:
    raw = to_bytes(compose(make_email(subject=subject), SENDER, NOW))
    expected = subject.replace("=?", "= ?")  # no reader may take text for an encoded word
    assert str(assert_sound_headers(raw)["Subject"]) == expected


COMPOSED_HEADERS = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
]


@pytest.mark.parametrize("bad", ['"', "<", "0@", "¡", "¡¡:¡0000000000000000:¡;", "a@b\u2028Bcc: c"])
def test_a_malformed_address_or_message_id_cannot_raise_or_add_a_header(bad: str) -> None:
    email = Email(bad, "Hello", "<p>Hi</p>", "Hi", bad, make_email().headers)
    raw = to_bytes(compose(email, bad, NOW))
    assert header_names(raw) == COMPOSED_HEADERS


ANY_TEXT = st.lists(
    st.one_of(
        st.text(ANY_CHARACTER),
        st.sampled_from(
            [
                "=?",
                "?=",
                "=?utf-8?q?",
                "=?utf-8?b?",
                "\r\n",
                "\u2028",
                "<",
                ">",
                ",",
                "@",
                ":",
                ";",
                '"',
                " ",
                "word ",
                "…",
                "=?utf-8?q?=E2=80=A8?=",
            ]
        ),
    ),
    max_size=12,
).map("".join)


@settings(max_examples=150, deadline=None)
@given(subject=ANY_TEXT, sender=ANY_TEXT, recipient=ANY_TEXT, message_id=ANY_TEXT, url=ANY_TEXT)
def test_compose_never_raises_nor_adds_a_header(
    subject: str, sender: str, recipient: str, message_id: str, url: str
) -> None:
    headers = unsubscribe_headers(url, f"mailto:{url}", list_id(subject, sender))
    email = Email(recipient, subject, "<p>Hi</p>", "Hi", message_id, headers)
    raw = to_bytes(compose(email, sender, NOW))
    assert header_names(raw) == COMPOSED_HEADERS
    parsed = message_from_bytes(raw, policy=default_policy)
    legacy = message_from_bytes(raw, policy=compat32)
    for name in ("Subject", "List-Id"):
        assert not parsed[name].defects, parsed[name].defects
        assert_safe_line(str(parsed[name]), name)
        decode_header(legacy[name])  # the older decoder reads it too
