"""Email addresses: one form to store and show, one key to tell them apart, one to deliver to.

An address is checked and normalised once, when it comes in (``normalize_address``), and that
form is what the database stores and every page and list shows: the local part as the person
wrote it (letter case kept, Unicode in NFC) and the domain lower-cased, in Unicode
(``Ann@bücher.de``, ``用户@例子.广告``). From it the rest is derived, never stored apart:

- ``address_key``: what makes two addresses the same subscriber. Letter case does not count,
  in the local part either (``Dup@Example.com`` is ``dup@example.com``), and the domain is in
  its ASCII form, so ``ann@bücher.de`` and ``ann@xn--bcher-kva.de`` are one person too.
- ``envelope_address``: what goes in SMTP's ``MAIL FROM`` and ``RCPT TO``. The domain is
  IDNA-encoded (an A-label, ``xn--bcher-kva.de``), which every server accepts; the local part
  keeps its case, since only the receiving server may decide that case does not matter. A
  local part that is not ASCII has no ASCII form: only a server that offers SMTPUTF8
  (RFC 6531) can take it.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import AddressError


def _validated(address: str) -> Any:
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise AddressError(f"{address!r}: {exc}") from None


def normalize_address(address: str) -> str:
    """The address in the form stored and shown, or ``AddressError`` saying what is wrong."""
    return str(_validated(address).normalized)


def envelope_address(address: str) -> str:
    """The address for the SMTP envelope: its local part as it is, its domain in ASCII."""
    valid = _validated(address)
    return f"{valid.local_part}@{valid.ascii_domain}"


_ATOM = r"[A-Za-z0-9_+-]+"
_DOT_ATOM = rf"{_ATOM}(?:\.{_ATOM})*"
# Lower-case letters, digits and hyphens: what the address validator leaves as it is.
_LABEL = r"(?!xn--)[a-z0-9-]+"
_PLAIN_ADDRESS = re.compile(rf"{_DOT_ATOM}@{_LABEL}(?:\.{_LABEL})+")


def is_delivery_form(address: str) -> bool:
    """Whether ``address`` is plainly its own delivery form, without asking the validator:
    a dot-atom local part and a lower-case ASCII domain, which ``envelope_address`` gives
    back as it is (or refuses, and the sender then passes it on as it is) and the email
    library writes into a header unchanged. A send asks it of every recipient."""
    return _PLAIN_ADDRESS.fullmatch(address) is not None


def address_key(address: str) -> str:
    """What makes two addresses the same subscriber: the envelope form, lower-cased.

    Anything that is not a valid address (a lookup of a mistyped one, a row an old version
    stored) gets its own text lower-cased, so a lookup still finds it and never fails.
    """
    try:
        return envelope_address(address).lower()
    except AddressError:
        return address.strip().lower()
