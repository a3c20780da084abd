"""The meta table: the schema version (see schema.py) and the site's own secrets."""

from __future__ import annotations

import secrets

from sqlalchemy import select

from . import schema as s
from ._database import Database


class MetaStore(Database):
    def signing_key(self) -> str:
        """The key that signs subscribers' links when DIGEST_SECRET_KEY is not set.

        Made once and kept in the database, so links in sent mail stay valid.
        """
        with self.begin() as c:
            found = c.execute(select(s.meta.c.value).where(s.meta.c.key == "signing_key")).scalar()
            if found is not None:
                return str(found)
            key = secrets.token_urlsafe(32)
            c.execute(s.meta.insert().values(key="signing_key", value=key))
            return key
