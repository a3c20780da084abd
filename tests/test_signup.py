"""Double opt-in on the real app: sign up on the site, the confirmation arrives by SMTP, the
link confirms only when its button is pressed, the welcome follows; and the site answers the
same whatever the address."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlencode

import pytest
from bs4 import BeautifulSoup

from digest.lifecycle import State

from .conftest import Inbox
from .factories import BASE
from .test_web import Site, serve_site

SITE_URL = "http://127.0.0.1:8025"  # edition.site_url in write_config


class Clock:
    """The app's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = BASE

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def site(tmp_path: Path, inbox: Inbox, clock: Clock) -> Iterator[Site]:
    with serve_site(tmp_path, clock=clock, env={"DIGEST_SMTP_URL": inbox.url}) as site:
        yield site


def sign_up(site: Site, email: str) -> tuple[int, str]:
    status, _, body = site.get("/subscribe", data=urlencode({"email": email}).encode())
    return status, body


def wait_for_mail(inbox: Inbox, count: int) -> list[EmailMessage]:
    """The messages received so far, once there are ``count``: they go after the answer."""
    deadline = time.monotonic() + 10
    while len(inbox.messages) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)  # and no more than that
    from email import message_from_bytes
    from email.policy import default

    received = [message_from_bytes(raw, policy=default) for _, _, raw in inbox.messages]
    assert len(received) == count, [str(m["Subject"]) for m in received]
    return received  # type: ignore[return-value]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def link_in(message: EmailMessage, path: str) -> str:
    """The path and query of the link to ``path`` in ``message``'s text, on the test's site."""
    found = re.search(
        rf"{re.escape(SITE_URL)}({re.escape(path)}\?t=[A-Za-z0-9_-]+)", text_of(message)
    )
    assert found is not None, text_of(message)
    return found[1]


def state_of(site: Site, email: str) -> State | None:
    record = site.store.record(email)
    return None if record is None else record.state


def test_sign_up_confirm_and_welcome(site: Site, inbox: Inbox, clock: Clock) -> None:
    status, body = sign_up(site, " New@Example.com ")
    assert status == 200 and "Check your inbox" in body
    assert state_of(site, "new@example.com") is State.PENDING
    assert site.store.subscribers(active_only=True) == [site.store.subscriber("ann@example.com")]

    (confirmation,) = wait_for_mail(inbox, 1)
    assert inbox.messages[0][:2] == ("digest@example.com", ["New@example.com"])
    assert confirmation["To"] == "New@example.com"
    assert confirmation["From"] == "Market Digest <digest@example.com>"
    assert confirmation["Subject"] == "Confirm your subscription to Market Digest"
    assert confirmation["Date"] and confirmation["Message-ID"]
    assert confirmation["List-Unsubscribe"] is None  # nothing to unsubscribe from yet
    assert confirmation.get_content_type() == "multipart/alternative"
    confirm = link_in(confirmation, "/confirm")
    html = confirmation.get_body(("html",))
    assert html is not None and confirm in html.get_content()  # type: ignore[attr-defined]
    assert "new@example.com" not in confirm.lower()

    # Opening the link (a mail provider's link scanner does) confirms nothing.
    clock.advance(days=6)
    status, _, page = site.get(confirm)
    assert status == 200 and "<form method='post'>" in page
    assert state_of(site, "new@example.com") is State.PENDING
    status, _, page = site.get(confirm, data=b"")
    assert status == 200 and "You are subscribed" in page
    assert state_of(site, "new@example.com") is State.ACTIVE

    _, welcome = wait_for_mail(inbox, 2)
    assert welcome["Subject"] == "Welcome to Market Digest"
    assert welcome["To"] == "New@example.com"
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = link_in(welcome, "/unsubscribe")
    assert f"<{SITE_URL}{unsubscribe}>" in welcome["List-Unsubscribe"]
    assert (
        "<mailto:digest+unsubscribe@example.com?subject=unsubscribe%20"
        in (welcome["List-Unsubscribe"])
    )
    assert "every morning at 07:00 (America/New_York)" in " ".join(text_of(welcome).split())

    # Confirming again changes and sends nothing.
    assert site.get(confirm, data=b"")[0] == 200
    assert len(wait_for_mail(inbox, 2)) == 2

    clock.advance(hours=1)
    assert site.get(unsubscribe, data=b"List-Unsubscribe=One-Click")[0] == 200
    assert state_of(site, "new@example.com") is State.UNSUBSCRIBED
    report = site.store.report("new@example.com")
    assert report is not None
    assert [(change.state, change.why) for change in report.history] == [
        (State.PENDING, "signed up on the web site"),
        (State.ACTIVE, "confirmed with their own link"),
        (State.UNSUBSCRIBED, "unsubscribed in one click from their mail program"),
    ]


def test_a_confirm_link_expires_after_seven_days(site: Site, inbox: Inbox, clock: Clock) -> None:
    sign_up(site, "late@example.com")
    (confirmation,) = wait_for_mail(inbox, 1)
    confirm = link_in(confirmation, "/confirm")
    clock.advance(days=7)
    refused = site.get("/confirm?t=garbage")
    for data in (None, b""):
        status, _, page = site.get(confirm, data=data)
        assert (status, page) == (refused[0], refused[2]) == (400, refused[2])
    assert state_of(site, "late@example.com") is State.PENDING
    # Signing up again sends a new link, which works.
    sign_up(site, "late@example.com")
    _, again = wait_for_mail(inbox, 2)
    assert site.get(link_in(again, "/confirm"), data=b"")[0] == 200
    assert state_of(site, "late@example.com") is State.ACTIVE


def test_only_their_own_new_confirmation_brings_back_one_who_unsubscribed(
    site: Site, inbox: Inbox, clock: Clock
) -> None:
    sign_up(site, "bob@example.com")
    (first,) = wait_for_mail(inbox, 1)
    old_link = link_in(first, "/confirm")
    clock.advance(minutes=5)
    site.get(old_link, data=b"")
    wait_for_mail(inbox, 2)  # the welcome goes after the answer: here before the next mail
    clock.advance(minutes=5)
    assert site.store.unsubscribe("bob@example.com", clock())
    clock.advance(minutes=5)
    # The first link, still within its seven days, is older than the unsubscribe.
    assert site.get(old_link)[0] == 400
    assert site.get(old_link, data=b"")[0] == 400
    assert state_of(site, "bob@example.com") is State.UNSUBSCRIBED
    # Asking again on the site: a new link, and that one does it.
    sign_up(site, "bob@example.com")
    *_, second = wait_for_mail(inbox, 3)  # the first confirmation, the welcome, this
    assert second["Subject"] == "Confirm your subscription to Market Digest"
    assert state_of(site, "bob@example.com") is State.UNSUBSCRIBED  # until they confirm
    clock.advance(minutes=5)
    assert site.get(link_in(second, "/confirm"), data=b"")[0] == 200
    assert state_of(site, "bob@example.com") is State.ACTIVE
    report = site.store.report("bob@example.com")
    assert report is not None
    assert (
        report.history[-1].why == "subscribed again with their own confirm link (was unsubscribed)"
    )


def test_the_answer_is_the_same_for_every_address(site: Site, inbox: Inbox) -> None:
    sign_up(site, "pending@example.com")
    wait_for_mail(inbox, 1)
    site.store.sign_up("gone@example.com", BASE)
    site.store.unsubscribe("gone@example.com", BASE)
    answers = {}
    for email in ("ann@example.com", "pending@example.com", "gone@example.com", "new@example.com"):
        status, body = sign_up(site, email)
        answers[email] = (status, body.replace(email, "ADDRESS"))
    assert len(set(answers.values())) == 1, answers
    assert next(iter(answers.values()))[0] == 200
    # Mail went to everyone but the address already subscribed.
    received = wait_for_mail(inbox, 4)
    assert sorted(str(message["To"]) for message in received[1:]) == [
        "gone@example.com",
        "new@example.com",
        "pending@example.com",
    ]
    assert state_of(site, "ann@example.com") is State.ACTIVE


def test_what_is_not_an_address_is_asked_again(site: Site, inbox: Inbox) -> None:
    for raw in ("", "not-an-address", "a@b@example.com", "x" * 5000 + "@example.com"):
        status, body = sign_up(site, raw)
        assert status == 400, raw
        assert BeautifulSoup(body, "html.parser").find("form", action="/subscribe") is not None
    assert site.store.records(active_only=False) == site.store.records(active_only=True)
    assert inbox.messages == []


def test_the_home_page_has_the_sign_up_form_above_the_edition(site: Site) -> None:
    status, _, home = site.get("/")
    assert status == 200
    soup = BeautifulSoup(home, "html.parser")
    form = soup.find("form")
    assert form is not None and form["action"] == "/subscribe" and form["method"] == "post"
    assert form.find("input", attrs={"name": "email", "type": "email"}) is not None
    assert home.index("<form") < home.index("Fed holds rates")
    # The archive and the subscriber's own pages do not carry it.
    assert "/subscribe" not in site.get("/archive/2026-11-24")[2]
    status, _, page = site.get("/subscribe")
    assert status == 200 and "action='/subscribe'" in page
