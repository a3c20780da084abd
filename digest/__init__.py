"""market-digest: many stock and crypto news feeds, one clean daily email."""

__version__ = "0.1.0"
