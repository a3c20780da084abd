"""The meta table: the schema version (see schema.py) and the site's own secrets."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from . import schema as s
from ._database import Database


class MetaStore(Database):
    def signing_key(self) -> str:
        """The key that signs subscribers' links when DIGEST_SECRET_KEY is not set.

        Made once and kept in the database, so links in sent mail stay valid.
        """
        query = select(s.meta.c.value).where(s.meta.c.key == "signing_key")
        with self.begin() as c:
            found = c.execute(query).scalar()
            if found is not None:
                return str(found)
            try:
                # Several processes starting at once (workers on PostgreSQL) may all find no
                # key: the first one written is everyone's, the others read it back.
                with c.begin_nested():
                    key = secrets.token_urlsafe(32)
                    c.execute(s.meta.insert().values(key="signing_key", value=key))
            except IntegrityError:
                return str(c.execute(query).scalar_one())
            return key
