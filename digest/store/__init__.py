"""The database, one module per table family behind one ``Store``.

SQLite in WAL mode by default; any SQLAlchemy URL works (PostgreSQL for several workers).
Every multi-step change runs in one transaction, so a crash leaves no half-written state.
The store decides nothing: the rules (feed health, who gets mail) live in the library and
the store writes what they return.
"""

from __future__ import annotations

from .claims import ClaimStore
from .deliveries import DeliveryStore
from .editions import EditionStore
from .embeddings import EmbeddingStore
from .feeds import FeedStore
from .items import ItemStore
from .jobs import JobStore
from .leases import LeaseStore
from .meta import MetaStore
from .subscribers import SubscriberStore


class Store(
    FeedStore,
    ItemStore,
    SubscriberStore,
    EditionStore,
    DeliveryStore,
    ClaimStore,
    LeaseStore,
    MetaStore,
    EmbeddingStore,
    JobStore,
):
    """All reads and writes of the database go through here."""


__all__ = ["Store"]
