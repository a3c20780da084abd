"""The package's public API lists exactly what it exports, and every error derives from the root."""

from __future__ import annotations

import inspect

import digest
from digest import errors


def test_all_lists_every_public_member() -> None:
    for name in digest.__all__:
        getattr(digest, name)  # loads the lazily imported ones
    public = {
        name
        for name, value in vars(digest).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public | {"__version__"} == set(digest.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    assert not hasattr(digest, "make_email")


def test_every_error_is_exported_and_derives_from_digest_error() -> None:
    defined = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value)
        and issubclass(value, Exception)
        and value.__module__ == errors.__name__
    }
    assert defined <= set(digest.__all__)
    assert all(issubclass(getattr(errors, name), digest.DigestError) for name in defined)
