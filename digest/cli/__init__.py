"""The ``digest`` command: a thin click layer over the library, one module per family."""

from . import database, edition, feeds, headlines, inbound, service, subscribers
from ._app import main

__all__ = [
    "database",
    "edition",
    "feeds",
    "headlines",
    "inbound",
    "main",
    "service",
    "subscribers",
]
