"""Errors raised by market-digest.

Every error a user can cause or fix derives from ``DigestError`` and carries what it is
about (a file and key, a feed URL, an address), so the CLI can print it as one line::

    DigestError
    ├── ConfigError (ValueError)      bad feeds.yaml or DIGEST_* variable
    ├── AddressError (ValueError)     an email address that cannot be mailed
    ├── FeedError                     a feed that cannot be fetched or parsed
    ├── StoreError                    the database cannot be opened or migrated
    ├── EditionError (LookupError)    no edition for a date, or nothing to build it from
    ├── SendError                     the SMTP server could not be reached or failed
    │   └── MessageRefusedError       the server refused one message (others go on)
    └── PartialError                  a run did its work, but some feeds or messages failed

The CLI exits 1 for an error and 3 for ``PartialError`` (2 is click's, for bad usage).
"""

from __future__ import annotations


class DigestError(Exception):
    """Root of every error a user of market-digest can cause or fix."""


class ConfigError(DigestError, ValueError):
    """The configuration file or environment holds a wrong key or value."""


class AddressError(DigestError, ValueError):
    """An email address is not valid."""


class FeedError(DigestError):
    """A feed could not be fetched or parsed."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class StoreError(DigestError):
    """The database could not be opened or brought up to date."""


class EditionError(DigestError, LookupError):
    """An edition does not exist or cannot be built."""


class SendError(DigestError):
    """Mail could not be handed to the SMTP server."""


class MessageRefusedError(SendError):
    """The SMTP server refused one message; the others can still be sent."""


class PartialError(DigestError):
    """A run finished, but some of its feeds or messages failed (each one was reported)."""

    #: The command's exit status: scripts tell "partly done" from "nothing done" (1).
    exit_code = 3
