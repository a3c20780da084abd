"""The title_embeddings table: each title's sentence embedding, computed once.

The store keeps the vectors as bytes and decides nothing: which titles need embedding, and
how bytes become vectors, is digest/embedding.py's business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import select

from . import schema as s
from ._database import Database

#: Digests asked for in one query: well under SQLite's limit on bound parameters.
_CHUNK = 500


class EmbeddingStore(Database):
    def title_embeddings(self, digests: Sequence[str]) -> dict[str, bytes]:
        """The stored vectors of those ``digests`` that have one."""
        found: dict[str, bytes] = {}
        wanted = list(dict.fromkeys(digests))
        with self.begin() as c:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                query = select(s.title_embeddings).where(s.title_embeddings.c.digest.in_(chunk))
                found.update((row.digest, bytes(row.vector)) for row in c.execute(query))
        return found

    def save_title_embeddings(self, vectors: Mapping[str, bytes]) -> None:
        """Store new vectors by digest, in one transaction; a stored digest keeps its row."""
        if not vectors:
            return
        with self.begin() as c:
            known: set[str] = set()
            wanted = list(vectors)
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                query = select(s.title_embeddings.c.digest).where(
                    s.title_embeddings.c.digest.in_(chunk)
                )
                known.update(c.execute(query).scalars())
            rows = [
                {"digest": digest, "vector": vector}
                for digest, vector in vectors.items()
                if digest not in known
            ]
            if rows:
                c.execute(s.title_embeddings.insert(), rows)
