"""A subscriber's wire bytes from EditionMessages say what make_email, compose and to_bytes say.

Each message is made both ways and read back with the email library: the same header lines,
byte for byte, up to the MIME frame; the same text and HTML parts; and, of the frame, only the
boundary differs. The fast bytes also keep to the line limits of SMTP and quoted-printable.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from email.policy import compat32
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest import render
from digest.message import (
    DkimKey,
    Publisher,
    compose,
    make_email,
    make_publisher,
    to_bytes,
)
from digest.models import Digest, FeedSource, Item, Section, Story, Subscriber
from digest.parse import parse_feed
from digest.rank import build_digest
from digest.render import TEMPLATES_DIR, make_environment
from digest.site import Site
from digest.wire import EditionMessages

from .checks import ANY_CHARACTER, header_block, raw_header
from .conftest import SAMPLE_DATE, SAMPLE_NOW, SAMPLES

SENDER = "Market Digest <digest@example.com>"
NOW = SAMPLE_NOW


def member(email: str, name: str = "", *, watchlist: tuple[str, ...] = ()) -> Subscriber:
    """A subscriber as the store holds one: with the public id their personal links name."""
    public_id = hashlib.sha256(email.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return Subscriber(email, name, watchlist=watchlist, public_id=public_id)


SUBSCRIBERS = [
    member("ann@example.com"),
    member("bob@example.com", "Bob"),
    member("carol@example.com", "Carol", watchlist=("NVDA",)),
    member("dan@example.com", watchlist=("btc", "riot")),
    member("erin@example.com", watchlist=("ZZZZ",)),
    member("zoë@example.com", "Zoë Ångström"),
    member("用户@例子.广告", "用户", watchlist=("BTC",)),
    member("ann@bücher.de", "Ann"),
    member("Mixed.Case@Example.COM"),
    member("x@localhost", "<script>alert(1)</script>"),
    member("eve@example.com", "=?utf-8?q?=0A?="),
    member("mallory@example.com", 'M "the" & <b>bold</b>\xa0x'),
    member("not an address", "Nobody"),
    member("a" * 64 + "@" + "long-domain-name." * 4 + "example.com"),
]
IDS = [subscriber.email for subscriber in SUBSCRIBERS]


def sample_edition() -> Digest:
    """The demo edition: every sample feed under its own name, section and weight."""
    config = yaml.safe_load((SAMPLES / "feeds.yaml").read_text(encoding="utf-8"))
    items = []
    for feed in config["feeds"]:
        source = FeedSource(
            feed["name"],
            feed["url"],
            Section(feed["section"]),
            feed.get("weight", 1.0),
            feed.get("primary", False),
        )
        body = (SAMPLES / "feeds" / feed["url"].rsplit("/", 1)[1]).read_bytes()
        items += parse_feed(body, source, NOW)
    return build_digest(
        items,
        date=SAMPLE_DATE,
        title=config["edition"]["title"],
        tagline=config["edition"]["tagline"],
        window=(NOW - dt.timedelta(days=1), NOW),
        max_stories=30,
    )


def sample_publisher(templates: Path = TEMPLATES_DIR) -> Publisher:
    publisher = make_publisher(
        Site("https://d.example.com", "wire test key"),
        SENDER,
        "Market Digest",
        "Market Digest, 100 Example Street, Springfield, IL 62701, USA",
    )
    return dataclasses.replace(publisher, environment=make_environment(templates))


@pytest.fixture(scope="module")
def edition() -> Digest:
    return sample_edition()


@pytest.fixture(scope="module")
def publisher() -> Publisher:
    return sample_publisher()


@pytest.fixture(scope="module")
def messages(edition: Digest, publisher: Publisher) -> EditionMessages:
    return EditionMessages(edition, publisher, NOW)


def slow_bytes(
    digest: Digest,
    publisher: Publisher,
    subscriber: Subscriber,
    message_id: str = "",
    dkim: DkimKey | None = None,
) -> bytes:
    email = make_email(digest, publisher, subscriber, message_id=message_id)
    return to_bytes(compose(email, publisher.sender, NOW), dkim)


def parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=email_policy.default)
    assert isinstance(message, EmailMessage)
    return message


def head(raw: bytes) -> bytes:
    """The header lines before the MIME frame (MIME-Version, Content-Type and the parts)."""
    return raw[: raw.index(b"\r\nMIME-Version: ") + 2]


def assert_same_message(fast: bytes, slow: bytes) -> None:
    assert head(fast) == head(slow)
    # As written (compat32 does not parse them: some values only the slow way can write).
    boundary = re.compile(r'boundary="[^"]*"')
    fast_headers, slow_headers = (
        [(n, boundary.sub("", str(v))) for n, v in message_from_bytes(raw, policy=compat32).items()]
        for raw in (fast, slow)
    )
    assert fast_headers == slow_headers
    fast_message, slow_message = parse(fast), parse(slow)
    assert not fast_message.defects
    for kind in ("plain", "html"):
        fast_part, slow_part = fast_message.get_body((kind,)), slow_message.get_body((kind,))
        assert fast_part is not None and slow_part is not None
        assert [*fast_part.items()] == [*slow_part.items()]
        assert fast_part.get_content() == slow_part.get_content()
    assert [p.get_content_type() for p in fast_message.walk()] == [
        p.get_content_type() for p in slow_message.walk()
    ]


def quoted_printable_bodies(raw: bytes) -> list[bytes]:
    """The encoded bodies of the quoted-printable parts, as written."""
    boundary = parse(raw).get_boundary()
    assert boundary is not None
    bodies = []
    for part in raw.split(b"--" + boundary.encode())[1:-1]:
        part_head, _, body = part.partition(b"\r\n\r\n")
        assert b"Content-Transfer-Encoding: quoted-printable" in part_head
        bodies.append(body)
    return bodies


@pytest.mark.parametrize("subscriber", SUBSCRIBERS, ids=IDS)
def test_the_fast_bytes_say_what_the_slow_way_says(
    subscriber: Subscriber, edition: Digest, publisher: Publisher, messages: EditionMessages
) -> None:
    slow_before = messages.slow_messages
    fast = messages.bytes_for(subscriber, "")
    assert_same_message(fast, slow_bytes(edition, publisher, subscriber))
    assert messages.slow_messages == slow_before  # made the fast way, not handed over


def test_a_watchlist_leads_the_message_and_a_given_message_id_is_kept(
    edition: Digest, publisher: Publisher, messages: EditionMessages
) -> None:
    carol = SUBSCRIBERS[2]
    fast = messages.bytes_for(carol, "<given.1@example.com>")
    assert_same_message(fast, slow_bytes(edition, publisher, carol, "<given.1@example.com>"))
    text = parse(fast).get_body(("plain",))
    assert text is not None
    assert text.get_content().splitlines()[4] == "YOUR WATCHLIST"
    assert parse(fast)["Message-ID"] == "<given.1@example.com>"


def test_subscribers_whose_watchlist_picks_no_story_share_the_plain_edition(
    edition: Digest, publisher: Publisher
) -> None:
    messages = EditionMessages(edition, publisher, NOW)
    for n in range(20):
        messages.bytes_for(member(f"r{n}@example.com"), "")
        messages.bytes_for(member(f"z{n}@example.com", watchlist=("ZZZZ",)), "")
        messages.bytes_for(member(f"n{n}@example.com", watchlist=("NVDA", "nvda")), "")
        messages.bytes_for(member(f"m{n}@example.com", watchlist=("nvda",)), "")
    # The plain edition, and the one NVDA's stories lead.
    assert messages.variants == 2
    assert messages.slow_messages == 0


@pytest.mark.parametrize("subscriber", SUBSCRIBERS, ids=IDS)
def test_every_line_keeps_to_the_smtp_and_quoted_printable_limits(
    subscriber: Subscriber, messages: EditionMessages
) -> None:
    raw = messages.bytes_for(subscriber, "")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")
    bodies = quoted_printable_bodies(raw)
    assert len(bodies) == 2
    for body in bodies:
        assert body.isascii()
        assert all(len(line) <= 76 for line in body.split(b"\r\n"))


def test_list_unsubscribe_goes_out_raw_with_the_subscribers_own_links(
    messages: EditionMessages, publisher: Publisher
) -> None:
    subscriber = member("ann@bücher.de", "Ann")
    raw = messages.bytes_for(subscriber, "")
    value = raw_header(raw, "List-Unsubscribe")
    links = publisher.site.links(SAMPLE_DATE, subscriber, messages.digest.window_end)
    assert value.startswith(f"<{links.unsubscribe}>,".encode())
    assert b"=?" not in value and b"<mailto:digest+unsubscribe@example.com?subject=" in value
    html = parse(raw).get_body(("html",))
    assert html is not None
    assert f'href="{links.unsubscribe}"' in html.get_content()


@pytest.fixture(scope="module")
def dkim_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[DkimKey, bytes]:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is not installed"
    key = tmp_path_factory.mktemp("dkim") / "dkim.pem"
    generate = [openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
    subprocess.run([*generate, "-out", str(key)], check=True, capture_output=True)
    public = subprocess.run(
        [openssl, "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    return DkimKey("wire", "example.com", key.read_bytes()), record


@pytest.mark.parametrize(
    "subscriber",
    [SUBSCRIBERS[2], member("zoë@example.com", "Zoë"), member("ann@bücher.de")],
    ids=["watchlist", "utf-8 local part", "unicode domain"],
)
def test_the_dkim_signature_verifies_and_breaks_when_a_header_changes(
    subscriber: Subscriber,
    edition: Digest,
    publisher: Publisher,
    dkim_pair: tuple[DkimKey, bytes],
) -> None:
    import dkim

    key, record = dkim_pair
    messages = EditionMessages(edition, publisher, NOW, key)
    raw = messages.bytes_for(subscriber, "")
    assert raw.startswith(b"DKIM-Signature:")
    lookups = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        lookups.append(name)
        return record

    assert dkim.verify(raw, dnsfunc=dns)
    assert lookups == [b"wire._domainkey.example.com."]
    slow = slow_bytes(edition, publisher, subscriber, dkim=key)
    signed_head = raw[raw.index(b"\r\nFrom: ") + 2 :]
    assert_same_message(signed_head, slow[slow.index(b"\r\nFrom: ") + 2 :])
    for name in (b"Subject", b"List-Unsubscribe", b"To"):
        tampered = re.sub(rb"(?m)^" + name + rb":", name + b": x", raw, count=1)
        assert tampered != raw
        assert not dkim.verify(tampered, dnsfunc=dns)
    body_tampered = raw.replace(b"View in browser:", b"View in br0wser:", 1)
    assert body_tampered != raw and not dkim.verify(body_tampered, dnsfunc=dns)


def test_each_subscriber_gets_the_trimming_their_own_message_needs(
    edition: Digest, publisher: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = member("a@example.com")
    watching = member("a-much-longer-address-than-the-other-one@example.com", watchlist=("NVDA",))
    # A limit the plain message fits exactly; the watchlist variant is laid out differently.
    limit = len(make_email(edition, publisher, plain).html.encode())
    monkeypatch.setattr(render, "HTML_LIMIT", limit)
    messages = EditionMessages(edition, publisher, NOW)
    for subscriber in (plain, watching):
        fast = messages.bytes_for(subscriber, "")
        assert_same_message(fast, slow_bytes(edition, publisher, subscriber))
    html = parse(messages.bytes_for(plain, "")).get_body(("html",))
    assert html is not None and "full summaries in the" not in html.get_content()
    assert messages.slow_messages == 0


def long_edition(stories: int = 90) -> Digest:
    """An edition far past the HTML limit: long summaries, many stories."""
    made = []
    for n in range(stories):
        link = f"https://wire.example.com/{n}?a=1&b=2"
        item = Item(
            "https://wire.example.com/rss",
            "Wire & Co",
            Section.STOCKS,
            1.0,
            link,
            f'Story {n} <about> shares & "quotes" — ünïcode {"x" * (n % 7)}',
            link,
            ("A long summary sentence about markets. " * 40).strip(),
            "",
            NOW - dt.timedelta(hours=1),
        )
        made.append(Story((item,), Section.STOCKS, 1.0, tickers=("NVDA",) if n % 9 == 0 else ()))
    return Digest(
        SAMPLE_DATE,
        "Market Digest",
        "Daily",
        NOW - dt.timedelta(days=1),
        NOW,
        tuple(made[:5]),
        ((Section.STOCKS, tuple(made[5:])),),
    )


def test_an_edition_past_the_size_limit_is_trimmed_as_the_slow_way_trims_it(
    publisher: Publisher,
) -> None:
    digest = long_edition()
    messages = EditionMessages(digest, publisher, NOW)
    for subscriber in (SUBSCRIBERS[0], member("n@example.com", "N", watchlist=("NVDA",))):
        slow = slow_bytes(digest, publisher, subscriber)
        html = parse(slow).get_body(("html",))
        assert html is not None and "full summaries in the" in html.get_content()
        assert_same_message(messages.bytes_for(subscriber, ""), slow)
    assert messages.slow_messages == 0


@pytest.fixture(scope="module")
def greeting_templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The templates with the subscriber's name in text and in an attribute of both parts."""
    folder = tmp_path_factory.mktemp("greeting")
    html = (TEMPLATES_DIR / "digest.html.j2").read_text(encoding="utf-8")
    greeting = (
        '{% if recipient_name %}<p class="greeting" title="{{ recipient_name }}">'
        "Hello {{ recipient_name }}</p>{% endif %}\n"
    )
    html = html.replace("<body>\n", "<body>\n" + greeting, 1)
    text = (TEMPLATES_DIR / "digest.txt.j2").read_text(encoding="utf-8")
    text = text.replace("{{ digest.title }}\n", "{{ digest.title }}\nHi {{ recipient_name }}!\n", 1)
    (folder / "digest.html.j2").write_text(html, encoding="utf-8")
    (folder / "digest.txt.j2").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize("subscriber", SUBSCRIBERS, ids=IDS)
def test_a_name_the_templates_show_is_escaped_as_they_escape_it(
    subscriber: Subscriber, edition: Digest, greeting_templates: Path
) -> None:
    publisher = sample_publisher(greeting_templates)
    messages = EditionMessages(edition, publisher, NOW)
    fast = messages.bytes_for(subscriber, "")
    slow = slow_bytes(edition, publisher, subscriber)
    assert_same_message(fast, slow)
    assert messages.slow_messages == 0
    text = parse(fast).get_body(("plain",))
    assert text is not None
    assert f"Hi {subscriber.name}!" in text.get_content()


def test_a_template_that_changes_a_personal_value_gets_the_slow_way(
    edition: Digest, tmp_path: Path
) -> None:
    for name in ("digest.html.j2", "digest.txt.j2"):
        shutil.copy(TEMPLATES_DIR / name, tmp_path / name)
    text = tmp_path / "digest.txt.j2"
    text.write_text(
        text.read_text(encoding="utf-8") + "{{ links.unsubscribe | upper }}\n"
        "{{ recipient_name | truncate(5, True, '') }}\n",
        encoding="utf-8",
    )
    publisher = sample_publisher(tmp_path)
    messages = EditionMessages(edition, publisher, NOW)
    for subscriber in (SUBSCRIBERS[0], SUBSCRIBERS[1]):
        fast = messages.bytes_for(subscriber, "")
        assert_same_message(fast, slow_bytes(edition, publisher, subscriber))
    assert messages.slow_messages == 2


def test_a_name_with_a_control_character_gets_the_slow_way(
    edition: Digest, publisher: Publisher, messages: EditionMessages
) -> None:
    subscriber = member("bell@example.com", "Bell\x07\r\nBcc: x@example.com")
    slow_before = messages.slow_messages
    fast = messages.bytes_for(subscriber, "")
    assert_same_message(fast, slow_bytes(edition, publisher, subscriber))
    assert messages.slow_messages == slow_before + 1
    assert parse(fast)["Bcc"] is None


def test_threads_making_messages_at_once_get_what_one_thread_gets(
    edition: Digest, publisher: Publisher
) -> None:
    messages = EditionMessages(edition, publisher, NOW)
    subscribers = [
        member(f"t{n}@example.com", "T" if n % 2 else "", watchlist=("BTC",) if n % 3 else ())
        for n in range(40)
    ]
    made: dict[int, bytes] = {}

    def make(share: range) -> None:
        for n in share:
            made[n] = messages.bytes_for(subscribers[n], "")

    threads = [threading.Thread(target=make, args=(range(k, 40, 4),)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [made[n] for n in range(40)] == [messages.bytes_for(s, "") for s in subscribers]


def every_message(
    messages: EditionMessages, edition: Digest, publisher: Publisher
) -> Callable[[Subscriber, str], None]:
    def check(subscriber: Subscriber, message_id: str) -> None:
        try:
            slow = slow_bytes(edition, publisher, subscriber, message_id)
        except Exception as exc:
            with pytest.raises(type(exc)):
                messages.bytes_for(subscriber, message_id)
            return
        assert_same_message(messages.bytes_for(subscriber, message_id), slow)

    return check


@pytest.fixture(scope="module")
def check_message(
    messages: EditionMessages, edition: Digest, publisher: Publisher
) -> Iterator[Callable[[Subscriber, str], None]]:
    yield every_message(messages, edition, publisher)


ATOM = st.from_regex(r"[A-Za-z0-9_+-]{1,12}(\.[A-Za-z0-9_+-]{1,8}){0,2}", fullmatch=True)
LABELS = st.from_regex(r"[a-z0-9-]{1,12}(\.[a-z0-9-]{1,8}){1,3}", fullmatch=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(local=ATOM, domain=LABELS, id_left=ATOM, id_right=LABELS)
def test_plain_addresses_and_message_ids_are_written_as_the_email_library_writes_them(
    check_message: Callable[[Subscriber, str], None],
    local: str,
    domain: str,
    id_left: str,
    id_right: str,
) -> None:
    check_message(member(f"{local}@{domain}"), f"<{id_left}@{id_right}>")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    email=st.text(ANY_CHARACTER, max_size=60) | st.emails(),
    name=st.text(ANY_CHARACTER, max_size=30),
    message_id=st.text(ANY_CHARACTER, max_size=60),
)
def test_any_address_name_and_message_id_give_what_the_slow_way_gives(
    check_message: Callable[[Subscriber, str], None], email: str, name: str, message_id: str
) -> None:
    check_message(member(email, name), message_id)


def test_no_header_line_of_a_fast_message_is_a_new_header(messages: EditionMessages) -> None:
    raw = messages.bytes_for(member("eve@example.com", "x\r\nBcc: y@example.com"), "<a\r\nb>")
    lines = header_block(raw)
    names = [line.split(b":", 1)[0] for line in lines if not line.startswith((b" ", b"\t"))]
    assert b"Bcc" not in names
