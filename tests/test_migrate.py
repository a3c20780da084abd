"""``digest migrate`` copies a store to another database, verified, and only into an empty one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from digest.models import Subscriber
from digest.store import Store, schema

from .conftest import SAMPLE_NOW, DemoEdition, digest_command
from .postgres import Cluster


def _contents(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary key order."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table.name: [
                    tuple(row)
                    for row in connection.execute(
                        select(table).order_by(*table.primary_key.columns)
                    )
                ]
                for table in schema.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def test_the_demo_database_goes_to_postgresql_and_back_unchanged(
    demo_edition: DemoEdition, postgres: Cluster, tmp_path: Path
) -> None:
    demo = f"sqlite:///{demo_edition.config.parent / 'digest.db'}"
    target = postgres.create_database("roundtrip")
    there = digest_command("migrate", "--from", demo, "--to", target, config=demo_edition.config)
    assert there.returncode == 0, there.stderr
    assert there.stdout.startswith(f"Copied {demo} to ")
    back = f"sqlite:///{tmp_path / 'back.db'}"
    again = digest_command("migrate", "--from", target, "--to", back, config=demo_edition.config)
    assert again.returncode == 0, again.stderr
    original, copied = _contents(demo), _contents(back)
    assert copied == original
    assert original["subscribers"] and original["items"] and original["deliveries"]
    # The copy goes on where the original left off: new rows get new ids.
    store = Store(target)
    try:
        store.add_subscriber(Subscriber("new.reader@example.com"), SAMPLE_NOW)
        assert store.subscriber("new.reader@example.com") is not None
    finally:
        store.close()


@pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)
def test_a_target_that_holds_anything_is_refused_untouched(
    db_url: str, tmp_path: Path, demo_edition: DemoEdition
) -> None:
    store = Store(db_url)
    store.add_subscriber(Subscriber("already@example.com"), SAMPLE_NOW)
    store.close()
    before = _contents(db_url)
    demo = f"sqlite:///{demo_edition.config.parent / 'digest.db'}"
    refused = digest_command("migrate", "--from", demo, "--to", db_url, config=demo_edition.config)
    assert refused.returncode == 1
    (line,) = refused.stderr.splitlines()
    assert "the target is not empty (subscriber_changes, subscribers hold rows)" in line
    assert _contents(db_url) == before


def test_the_scheduler_jobs_are_left_behind_for_serve_to_add_again(
    db_url: str, tmp_path: Path
) -> None:
    import datetime as dt

    from digest.config import load_settings
    from digest.schedule import Service
    from digest.store.transfer import copy_store

    from .conftest import write_config

    source = f"sqlite:///{tmp_path / 'source.db'}"
    feeds = [{"name": "Wire", "url": "http://127.0.0.1:9/rss", "section": "stocks"}]
    settings = load_settings(write_config(tmp_path, feeds), env={"DIGEST_DB": source})
    store = Store(source)
    store.add_subscriber(Subscriber("already@example.com"), SAMPLE_NOW)
    service = Service(settings, store, clock=lambda: dt.datetime(2026, 12, 1, 11, tzinfo=dt.UTC))
    service.start()
    service.shutdown()
    assert set(store.scheduled_runs()) == {"edition", "fetch", "retry"}
    store.close()
    counts = copy_store(source, db_url)
    assert "scheduler_jobs" not in counts and counts["subscribers"] == 1
    target = Store(db_url)
    assert target.scheduled_runs() == {}
    assert target.subscriber("already@example.com") is not None
    target.close()
