"""The tokens of personal links: opaque, for one purpose, strictly read, and rotating keys."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from urllib.parse import unquote

import pytest

from digest.models import Subscriber
from digest.site import Site, token_in_subject
from digest.tokens import (
    CONFIRM_LIFETIME,
    TOKEN_LENGTH,
    Purpose,
    Token,
    make_token,
    new_public_id,
    read_token,
    signing_keys,
)

KEYS = ("the current key",)
ID = "0123456789abcdef0123456789abcdef"
ISSUED = dt.datetime(2026, 11, 24, 12, 0, 7, 250_000, tzinfo=dt.UTC)
NOW = ISSUED + dt.timedelta(hours=1)
ANN = Subscriber("ann@example.com", "Ann", public_id=ID)


def token(purpose: Purpose = Purpose.UNSUBSCRIBE, keys: tuple[str, ...] = KEYS) -> str:
    return make_token(keys, purpose, ID, ISSUED)


def test_a_token_reads_back_as_what_it_was_made_for() -> None:
    for purpose in Purpose:
        made = token(purpose)
        assert read_token(KEYS, purpose, made, NOW) == Token(
            purpose, ID, ISSUED.replace(microsecond=0)
        )


def test_a_token_is_72_characters_of_base64url_without_padding() -> None:
    made = token()
    assert len(made) == TOKEN_LENGTH == 72
    assert set(made) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_links_say_nothing_of_the_address() -> None:
    site = Site("https://digest.example.com", KEYS)
    links = site.links(dt.date(2026, 11, 24), ANN, ISSUED)
    mailto = site.unsubscribe_mailto("Digest <digest@example.com>", ANN, ISSUED)
    encoded = base64.urlsafe_b64encode(b"ann@example.com").decode().rstrip("=")
    for link in (links.unsubscribe, links.preferences, links.view_in_browser, mailto):
        assert "ann" not in unquote(link) and encoded[:12] not in link
    # The public id is random, not derived from anything about the subscriber.
    assert len({new_public_id() for _ in range(100)}) == 100


def _tampered(made: str, position: int) -> str:
    swapped = "B" if made[position] == "A" else "A"
    return made[:position] + swapped + made[position + 1 :]


def _signed(raw: bytes) -> str:
    """Bytes made into a token with a genuine HMAC over them: only the layout is wrong."""
    mac = hmac.new(KEYS[0].encode(), raw, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(raw + mac).decode()


GOOD = token()
REFUSED = {
    "empty": "",
    "garbage": "garbage",
    "upper-cased": GOOD.upper(),
    "lower-cased": GOOD.lower(),
    "tampered id": _tampered(GOOD, 10),
    "tampered issue time": _tampered(GOOD, 25),
    "tampered signature": _tampered(GOOD, 60),
    "padded": GOOD + "=",
    "cut short": GOOD[:-1],
    "one character more": GOOD + "A",
    "with a space": " " + GOOD,
    "with a line break": GOOD + "\n",
    "with a plus sign of standard base64": GOOD[:-1] + "+",
    "with a slash of standard base64": GOOD[:-1] + "/",
    "signed with another key": token(keys=("another key",)),
    "the old address-carrying token": "YW5uQGV4YW1wbGUuY29t.c2lnbmF0dXJlc2lnbmF0dXJl",
    "another version": _signed(bytes([2, Purpose.UNSUBSCRIBE]) + bytes.fromhex(ID) + bytes(4)),
    "not a purpose": _signed(bytes([1, 9]) + bytes.fromhex(ID) + bytes(4)),
}


@pytest.mark.parametrize("case", REFUSED)
def test_a_token_that_is_not_exactly_as_made_is_refused(case: str) -> None:
    assert REFUSED[case] != GOOD
    assert read_token(KEYS, Purpose.UNSUBSCRIBE, REFUSED[case], NOW) is None


@pytest.mark.parametrize("made_for", list(Purpose))
@pytest.mark.parametrize("used_for", list(Purpose))
def test_a_token_for_one_purpose_is_refused_for_another(
    made_for: Purpose, used_for: Purpose
) -> None:
    read = read_token(KEYS, used_for, token(made_for), NOW)
    assert (read is not None) == (made_for is used_for)


def test_a_confirm_token_expires_after_seven_days_and_the_others_never() -> None:
    confirm = token(Purpose.CONFIRM)
    issued = ISSUED.replace(microsecond=0)
    assert read_token(
        KEYS, Purpose.CONFIRM, confirm, issued + CONFIRM_LIFETIME - dt.timedelta(seconds=1)
    )
    assert read_token(KEYS, Purpose.CONFIRM, confirm, issued + CONFIRM_LIFETIME) is None
    assert dt.timedelta(days=7) == CONFIRM_LIFETIME
    years = ISSUED + dt.timedelta(days=3650)
    for purpose in (Purpose.UNSUBSCRIBE, Purpose.PREFERENCES, Purpose.ARCHIVE):
        assert read_token(KEYS, purpose, token(purpose), years) is not None


def test_keys_rotate_the_first_signs_and_any_is_accepted() -> None:
    old = token(keys=("old key",))
    assert read_token(("new key", "old key"), Purpose.UNSUBSCRIBE, old, NOW) is not None
    assert read_token(("new key",), Purpose.UNSUBSCRIBE, old, NOW) is None
    new = token(keys=("new key", "old key"))
    assert read_token(("new key",), Purpose.UNSUBSCRIBE, new, NOW) is not None
    assert read_token(("old key",), Purpose.UNSUBSCRIBE, new, NOW) is None
    assert signing_keys(" new key ,old key") == ("new key", "old key")


def test_no_key_or_a_malformed_id_makes_no_token() -> None:
    with pytest.raises(ValueError, match="no key"):
        make_token((), Purpose.UNSUBSCRIBE, ID, ISSUED)
    with pytest.raises(ValueError):
        make_token(KEYS, Purpose.UNSUBSCRIBE, "ab", ISSUED)
    with pytest.raises(ValueError, match="no public id"):
        Site("https://digest.example.com", KEYS).links(
            dt.date(2026, 11, 24), Subscriber("ann@example.com"), ISSUED
        )


def test_the_mailto_unsubscribe_subject_is_read_back() -> None:
    site = Site("https://digest.example.com", KEYS)
    mailto = site.unsubscribe_mailto("Market Digest <digest@example.com>", ANN, ISSUED)
    assert mailto.startswith("mailto:digest+unsubscribe@example.com?subject=unsubscribe%20")
    subject = unquote(mailto.partition("?subject=")[2])
    read = site.read_unsubscribe_subject(subject, NOW)
    assert read is not None and (read.purpose, read.public_id) == (Purpose.UNSUBSCRIBE, ID)
    made = subject.split()[1]
    assert token_in_subject(f"  UNSUBSCRIBE   {made} ") == made
    assert token_in_subject(f"unsubscribe {made} please") is None
    assert token_in_subject(f"Re: unsubscribe {made}") is None
    assert site.read_unsubscribe_subject(f"unsubscribe {made.upper()}", NOW) is None
    preferences = site.token(Purpose.PREFERENCES, ID, ISSUED)
    assert site.read_unsubscribe_subject(f"unsubscribe {preferences}", NOW) is None
