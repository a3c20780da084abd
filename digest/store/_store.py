"""The one ``Store``: every table family's reads and writes on one database."""

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
