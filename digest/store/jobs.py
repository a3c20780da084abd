"""The scheduler's jobs, kept in the store's own database (table ``scheduler_jobs``).

APScheduler's SQLAlchemy job store reads and writes the rows on the store's engine, so the
jobs live beside the ledger and the sender lease, on SQLite or PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from . import schema as s
from ._database import Database

_j = s.scheduler_jobs.c


class JobStore(Database):
    def make_job_store(self) -> Any:
        """A job store for APScheduler over this database's ``scheduler_jobs``."""
        # APScheduler is loaded by the service only, not by every command that opens a store.
        from ._shared_job_store import SharedJobStore

        return SharedJobStore(self)

    def scheduled_runs(self) -> dict[str, dt.datetime | None]:
        """Each scheduled job's next run time (None: paused), by job id."""
        with self.begin() as c:
            rows = c.execute(select(_j.id, _j.next_run_time)).all()
        return {
            row.id: None
            if row.next_run_time is None
            else dt.datetime.fromtimestamp(row.next_run_time, dt.UTC)
            for row in rows
        }
