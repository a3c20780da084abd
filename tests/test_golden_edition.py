"""The edition built from samples/ with a fixed window, story by story, against a golden file.

After a deliberate change to clustering or ranking, rewrite the golden file with
``DIGEST_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_golden_edition.py`` and review its diff.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from digest.config import load_settings
from digest.pipeline import build_edition, fetch_feeds
from digest.store import Store

from .conftest import REPO, SAMPLE_DATE, SAMPLE_NOW

GOLDEN = REPO / "tests" / "data" / "sample-edition.golden.json"


def test_sample_edition_matches_the_golden_file(serve_samples) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(serve_samples(), env={})
    store = Store(settings.db_url)
    fetch_feeds(settings, store, SAMPLE_NOW + dt.timedelta(minutes=5))
    digest = build_edition(settings, store, SAMPLE_DATE)
    store.close()
    stories = [
        {
            "section": "top" if position < len(digest.top) else story.section.value,
            "lead": story.lead.title,
            "outlets": list(story.outlets),
            "tickers": list(story.tickers),
        }
        for position, story in enumerate(
            [*digest.top, *(story for _, section in digest.sections for story in section)]
        )
    ]
    if os.environ.get("DIGEST_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(
            json.dumps(stories, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    golden = json.loads(Path(GOLDEN).read_text(encoding="utf-8"))
    for number, (built, expected) in enumerate(zip(stories, golden, strict=False), start=1):
        assert built == expected, f"story {number} differs"
    assert len(stories) == len(golden)
