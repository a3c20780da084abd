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
from digest.models import Digest, Story
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


def test_a_second_build_embeds_no_title_again(serve_samples, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from digest import embedding
    from digest.store import schema

    settings = load_settings(serve_samples(), env={})
    store = Store(settings.db_url)
    fetch_feeds(settings, store, SAMPLE_NOW + dt.timedelta(minutes=5))
    first = build_edition(settings, store, SAMPLE_DATE)
    with store.begin() as c:
        stored = c.execute(schema.title_embeddings.select()).all()
    titles = {item.title for story in _stories(first) for item in story.items}
    assert {row.digest for row in stored} >= {embedding.title_digest(t) for t in titles}
    embedded: list[str] = []
    real_embed = embedding.embed

    def counting(texts):  # type: ignore[no-untyped-def]
        embedded.extend(texts)
        return real_embed(texts)

    monkeypatch.setattr(embedding, "embed", counting)
    again = build_edition(settings, store, SAMPLE_DATE)
    store.close()
    assert embedded == []
    assert [story.lead.title for story in _stories(again)] == [
        story.lead.title for story in _stories(first)
    ]


def _stories(digest: Digest) -> list[Story]:
    return [*digest.top, *(story for _, section in digest.sections for story in section)]
