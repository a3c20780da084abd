"""market-digest: many stock and crypto news feeds, one clean daily email.

The public API: load settings, open the store, and run the stages one by one or whole.
"""

__version__ = "0.1.0"

from .config import Settings, load_settings
from .errors import (
    AddressError,
    ConfigError,
    DigestError,
    EditionError,
    FeedError,
    MessageRefusedError,
    SendError,
    StoreError,
)
from .models import (
    Delivery,
    Digest,
    Email,
    FeedSource,
    FetchResult,
    Item,
    Section,
    Story,
    Subscriber,
)
from .pipeline import build_edition, fetch_feeds, send_edition
from .store import Store

__all__ = [
    "AddressError",
    "ConfigError",
    "Delivery",
    "Digest",
    "DigestError",
    "EditionError",
    "Email",
    "FeedError",
    "FeedSource",
    "FetchResult",
    "Item",
    "MessageRefusedError",
    "Section",
    "SendError",
    "Settings",
    "Store",
    "StoreError",
    "Story",
    "Subscriber",
    "__version__",
    "build_edition",
    "fetch_feeds",
    "load_settings",
    "send_edition",
]
