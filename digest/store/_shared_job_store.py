"""APScheduler's SQLAlchemy job store on the store's engine (imported only by ``serve``)."""

from __future__ import annotations

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

from . import schema as s
from ._database import Database


class SharedJobStore(SQLAlchemyJobStore):  # type: ignore[misc]  # APScheduler ships no hints
    """The job store on an engine it does not own: its shutdown leaves the engine (and the
    store's other users) alone. Its table is made by the schema's migrations."""

    def __init__(self, database: Database) -> None:
        super().__init__(engine=database.engine, tablename=s.scheduler_jobs.name)

    def shutdown(self) -> None:
        pass
