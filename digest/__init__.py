"""market-digest: many stock and crypto news feeds, one clean daily email.

The public API: load settings, open the store, and run the stages one by one or whole.
"""

__version__ = "0.1.0"

import typing

if typing.TYPE_CHECKING:
    from .config import Settings, load_settings
    from .errors import (
        AddressError,
        ConfigError,
        DigestError,
        EditionError,
        FeedError,
        MessageRefusedError,
        PartialError,
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
    from .pipeline import build_edition, fetch_feeds, run_edition, send_edition
    from .store import Store

#: Where each public name lives. They load on first use, so that importing one light
#: module of the package (the CLI's ``--help``, settings) does not load them all.
_HOMES = {
    "Settings": "config",
    "load_settings": "config",
    "AddressError": "errors",
    "ConfigError": "errors",
    "DigestError": "errors",
    "EditionError": "errors",
    "FeedError": "errors",
    "MessageRefusedError": "errors",
    "PartialError": "errors",
    "SendError": "errors",
    "StoreError": "errors",
    "Delivery": "models",
    "Digest": "models",
    "Email": "models",
    "FeedSource": "models",
    "FetchResult": "models",
    "Item": "models",
    "Section": "models",
    "Story": "models",
    "Subscriber": "models",
    "build_edition": "pipeline",
    "fetch_feeds": "pipeline",
    "run_edition": "pipeline",
    "send_edition": "pipeline",
    "Store": "store",
}


def __getattr__(name: str) -> typing.Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'digest' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


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
    "PartialError",
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
    "run_edition",
    "send_edition",
]
