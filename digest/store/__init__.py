"""The database, one module per table family behind one ``Store``.

SQLite in WAL mode by default; any SQLAlchemy URL works (PostgreSQL for several workers).
Every multi-step change runs in one transaction, so a crash leaves no half-written state.
The store decides nothing: the rules (feed health, who gets mail) live in the library and
the store writes what they return.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._store import Store


def __getattr__(name: str) -> object:
    # Loaded when first named: the store loads SQLAlchemy (0.3 s), which ``digest fetch``
    # on an up-to-date SQLite file does without (``light``).
    if name == "Store":
        from ._store import Store

        return Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Store"]
