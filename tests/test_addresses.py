"""Addresses that are not ASCII: stored and shown in Unicode, delivered without stopping a send.

The forms are checked without a server; the sending, with aiosmtpd on loopback that offers
SMTPUTF8 or does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest

from digest.addresses import address_key, envelope_address, normalize_address
from digest.errors import MessageRefusedError
from digest.message import compose, to_bytes
from digest.models import Email
from digest.send import Mailer

from .conftest import SAMPLE_DATE, Inbox, digest_command
from .test_send import NOW, SENDER, make_email

GERMAN = "ann@bücher.de"
CHINESE = "用户@例子.广告"
CHINESE_ENVELOPE = "用户@xn--fsqu00a.xn--4rr70v"

# -- the forms, without a server ----------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("  Ann@BÜCHER.de ", "Ann@bücher.de"),
        ("ann@xn--bcher-kva.de", GERMAN),
        (CHINESE, CHINESE),
        ("Dup@Example.COM", "Dup@example.com"),
    ],
)
def test_an_address_is_stored_with_its_local_part_as_written_and_its_domain_in_unicode(
    given: str, stored: str
) -> None:
    assert normalize_address(given) == stored


def test_the_envelope_has_the_domain_as_an_a_label_and_the_local_part_as_written() -> None:
    assert envelope_address("Ann@bücher.de") == "Ann@xn--bcher-kva.de"
    assert envelope_address(CHINESE) == CHINESE_ENVELOPE
    assert envelope_address("Dup@example.com") == "Dup@example.com"


def test_addresses_differing_in_letter_case_or_domain_form_have_one_key() -> None:
    same = {"Dup@Example.com", "dup@example.com", "DUP@EXAMPLE.COM"}
    assert {address_key(address) for address in same} == {"dup@example.com"}
    assert address_key("ANN@Bücher.de") == address_key("ann@xn--bcher-kva.de")
    assert address_key("ÄNN@bücher.de") == "änn@xn--bcher-kva.de"
    assert address_key("ann@example.com") != address_key("ann@example.org")


def test_a_key_is_given_for_text_that_is_not_an_address() -> None:
    assert address_key(" Not-An-Address ") == "not-an-address"


# -- sending -------------------------------------------------------------------------------


@pytest.fixture
def ascii_inbox() -> Iterator[Inbox]:
    """An SMTP server that does not offer SMTPUTF8 (aiosmtpd's Controller does by default)."""
    smtp = Inbox(enable_SMTPUTF8=False)
    yield smtp
    smtp.close()


def send(mailer: Mailer, recipient: str) -> None:
    mailer.send(to_bytes(compose(make_email(recipient), SENDER, NOW)), SENDER, recipient)


def test_an_international_domain_is_sent_as_an_a_label_without_smtputf8(
    ascii_inbox: Inbox,
) -> None:
    mailer = Mailer(ascii_inbox.url)
    send(mailer, GERMAN)
    mailer.close()
    ((sender, recipients, _),) = ascii_inbox.messages
    assert (sender, recipients) == ("digest@example.com", ["ann@xn--bcher-kva.de"])
    assert "SMTPUTF8" not in ascii_inbox.mail_options[0]


def test_a_local_part_that_is_not_ascii_goes_with_smtputf8_when_offered(inbox: Inbox) -> None:
    # Serialised for SMTPUTF8, the headers are raw UTF-8; they must arrive byte for byte.
    raw = to_bytes(compose(make_email(CHINESE), SENDER, NOW))
    assert f"To: {CHINESE_ENVELOPE}\r\n".encode() in raw
    mailer = Mailer(inbox.url)
    mailer.send(raw, SENDER, CHINESE)
    send(mailer, "bob@example.com")
    mailer.close()
    assert [recipients for _, recipients, _ in inbox.messages] == [
        [CHINESE_ENVELOPE],
        ["bob@example.com"],
    ]
    assert {"SMTPUTF8", "BODY=8BITMIME"} <= set(inbox.mail_options[0])
    assert not {"SMTPUTF8", "BODY=8BITMIME"} & set(inbox.mail_options[1])
    assert inbox.messages[0][2] == raw


def test_without_smtputf8_that_message_is_refused_by_name_and_the_next_one_goes(
    ascii_inbox: Inbox,
) -> None:
    mailer = Mailer(ascii_inbox.url)
    try:
        with pytest.raises(MessageRefusedError) as refused:
            send(mailer, CHINESE)
        send(mailer, "bob@example.com")
    finally:
        mailer.close()
    assert str(refused.value) == (
        f"{CHINESE}: 554 the server does not accept internationalised addresses (SMTPUTF8)"
    )
    assert [recipients for _, recipients, _ in ascii_inbox.messages] == [["bob@example.com"]]


def test_the_embedded_outbox_takes_every_address(tmp_path: Path) -> None:
    from digest.outbox import outbox_server

    folder = tmp_path / "outbox"
    with outbox_server(folder) as url:
        mailer = Mailer(url)
        for recipient in (CHINESE, "张三@例子.广告", GERMAN):
            send(mailer, recipient)
        mailer.close()
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        [f"{CHINESE_ENVELOPE}.eml", "张三@xn--fsqu00a.xn--4rr70v.eml", "ann@xn--bcher-kva.de.eml"]
    )


# -- the whole send ------------------------------------------------------------------------


@pytest.fixture
def international_config(serve_samples, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    config = serve_samples()
    people = tmp_path / "people.csv"
    people.write_text(
        f"email,name\n{GERMAN},Ann\n{CHINESE},\nzed@example.com,Zed\n", encoding="utf-8"
    )
    imported = digest_command("subscribers", "import", "--confirmed", str(people), config=config)
    assert imported.returncode == 0, imported.stderr
    assert "Imported 3 new subscribers." in imported.stdout
    fetched = digest_command("fetch", config=config)
    assert fetched.returncode == 0, fetched.stderr
    built = digest_command("build", "--date", SAMPLE_DATE.isoformat(), config=config)
    assert built.returncode == 0, built.stderr
    return config


def test_a_server_without_smtputf8_refuses_one_message_and_everybody_else_gets_theirs(
    international_config: Path, ascii_inbox: Inbox
) -> None:
    inbox = ascii_inbox
    env = {"DIGEST_SMTP_URL": inbox.url}
    # A refusal is final (5xx): the first run is partial (3), a rerun has nothing left to
    # send (0). Nobody was held up, nobody got two copies.
    for status in (3, 0):
        sent = digest_command(
            "send", "--date", SAMPLE_DATE.isoformat(), config=international_config, env=env
        )
        assert sent.returncode == status
        assert "Traceback" not in sent.stderr, sent.stderr
        refusal = (
            f"not sent {CHINESE}: failed: 554 the server does not accept internationalised "
            "addresses (SMTPUTF8)"
        )
        assert (refusal in sent.stdout) == (status == 3)
        assert sorted(r for _, rs, _ in inbox.messages for r in rs) == [
            "ann@xn--bcher-kva.de",
            "zed@example.com",
        ]


def test_a_server_with_smtputf8_gets_every_message(
    international_config: Path, inbox: Inbox
) -> None:
    sent = digest_command(
        "send",
        "--date",
        SAMPLE_DATE.isoformat(),
        config=international_config,
        env={"DIGEST_SMTP_URL": inbox.url},
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "to 3 subscribers" in sent.stdout
    smtputf8 = {
        recipients[0]: "SMTPUTF8" in options
        for (_, recipients, _), options in zip(inbox.messages, inbox.mail_options, strict=True)
    }
    assert smtputf8 == {
        "ann@xn--bcher-kva.de": False,
        CHINESE_ENVELOPE: True,
        "zed@example.com": False,
    }


@pytest.mark.parametrize(
    ("recipient", "written"),
    [
        (GERMAN, b"To: ann@xn--bcher-kva.de\r\n"),
        (CHINESE, f"To: {CHINESE_ENVELOPE}\r\n".encode()),
    ],
)
def test_the_to_header_is_an_address_mail_clients_can_read(recipient: str, written: bytes) -> None:
    email = Email(recipient, "Stocks — rise", "<p>x</p>", "x", "<id@example.com>")
    raw = to_bytes(compose(email, SENDER, NOW))
    assert written in raw
    assert b"=?utf-8?" not in raw.split(b"\r\nSubject:")[0]  # no encoded word in an address
    parsed = message_from_bytes(raw, policy=default)
    if recipient == GERMAN:  # an ASCII address: nothing for any parser to complain about
        assert not parsed["To"].defects
    assert parsed["Subject"] == "Stocks — rise"
    if recipient == GERMAN:  # 7-bit headers for every server; the other needs SMTPUTF8 anyway
        assert b"Subject: Stocks =?utf-8?b?4oCU?= rise\r\n" in raw
