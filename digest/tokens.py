"""The signed tokens that personal links carry: opaque, for one purpose, strictly read.

A token names a subscriber by their public id (16 random bytes kept with the subscriber,
nothing derived from the address), so a link seen in a log, a proxy or a forwarded email
tells nobody who it belongs to. Its layout, 54 bytes written as 72 characters of base64url
without padding::

    version (1) | purpose (1) | public id (16) | issued, Unix seconds (4) | HMAC-SHA256 (32)

The HMAC covers the first 22 bytes, under the site's key. Reading is strict: exactly 72
characters of the base64url alphabet, in their case (an upper-cased token is another token,
and its HMAC fails), this version, the purpose the link is used for (an unsubscribe token
does not open the preferences page), and a confirm token only for ``CONFIRM_LIFETIME``
after it was issued. Every way of failing gives the same answer, None.

Keys rotate: tokens are signed with the first key and accepted under any of them, so links
in mail sent before a new key was put first keep working until the old key is dropped.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

VERSION = 1
PUBLIC_ID_BYTES = 16
_SIGNED_BYTES = 2 + PUBLIC_ID_BYTES + 4
_MAC_BYTES = hashlib.sha256().digest_size
#: Characters of a token: (22 + 32) bytes, a multiple of 3, so base64 needs no padding.
TOKEN_LENGTH = (_SIGNED_BYTES + _MAC_BYTES) * 4 // 3
_TOKEN = re.compile(rf"[A-Za-z0-9_-]{{{TOKEN_LENGTH}}}")
#: How long a confirmation link works. The others never expire: an unsubscribe link must
#: work for as long as the email that carries it is read.
CONFIRM_LIFETIME = dt.timedelta(days=7)


class Purpose(IntEnum):
    """What a token may be used for; its byte in the token."""

    UNSUBSCRIBE = 1
    PREFERENCES = 2
    CONFIRM = 3
    ARCHIVE = 4

    @property
    def lifetime(self) -> dt.timedelta | None:
        return CONFIRM_LIFETIME if self is Purpose.CONFIRM else None


@dataclass(frozen=True, slots=True)
class Token:
    """What a genuine token says."""

    purpose: Purpose
    #: The subscriber's public id, as stored: 32 hexadecimal digits.
    public_id: str
    issued: dt.datetime


def signing_keys(value: str) -> tuple[str, ...]:
    """The keys of a DIGEST_SECRET_KEY value: comma-separated, the first one signs."""
    return tuple(key.strip() for key in value.split(",") if key.strip())


def new_public_id() -> str:
    """A fresh public id for a subscriber: random, so it says nothing about them."""
    import secrets

    return secrets.token_hex(PUBLIC_ID_BYTES)


def _mac(key: str, signed: bytes) -> bytes:
    keyed = _keyed(key).copy()
    keyed.update(signed)
    return keyed.digest()


@lru_cache(maxsize=8)
def _keyed(key: str) -> hmac.HMAC:
    # HMAC's key set up once, copied for each token: a send makes several per message.
    return hmac.new(key.encode(), digestmod=hashlib.sha256)


def make_token(keys: Sequence[str], purpose: Purpose, public_id: str, issued: dt.datetime) -> str:
    """A token for ``purpose`` naming the subscriber with ``public_id``, signed with the
    first of ``keys``. ``ValueError`` when there is no key or the id is not 32 hex digits."""
    if not keys:
        raise ValueError("no key to sign the token with")
    identity = bytes.fromhex(public_id)
    if len(identity) != PUBLIC_ID_BYTES:
        raise ValueError(f"a public id is {PUBLIC_ID_BYTES} bytes, got {len(identity)}")
    seconds = int(issued.timestamp())
    signed = bytes([VERSION, purpose]) + identity + seconds.to_bytes(4, "big")
    return base64.urlsafe_b64encode(signed + _mac(keys[0], signed)).decode()


def read_token(keys: Sequence[str], purpose: Purpose, token: str, now: dt.datetime) -> Token | None:
    """What ``token`` says if it is genuine under one of ``keys``, made for ``purpose``,
    and not expired at ``now``; otherwise None, whatever was wrong with it."""
    if not _TOKEN.fullmatch(token):
        return None
    raw = base64.urlsafe_b64decode(token)
    signed, mac = raw[:_SIGNED_BYTES], raw[_SIGNED_BYTES:]
    # Every key is tried, so the time taken does not tell which one failed.
    genuine = [hmac.compare_digest(_mac(key, signed), mac) for key in keys]
    if not any(genuine) or signed[0] != VERSION or signed[1] != purpose:
        return None
    issued = dt.datetime.fromtimestamp(int.from_bytes(signed[-4:], "big"), dt.UTC)
    lifetime = purpose.lifetime
    if lifetime is not None and now >= issued + lifetime:
        return None
    return Token(purpose, signed[2 : 2 + PUBLIC_ID_BYTES].hex(), issued)
