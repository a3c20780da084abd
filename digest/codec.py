"""The edition as JSON, for the database: an exact round trip of ``Digest``.

Editions are stored whole so that a day's edition, once sent, reads the same forever.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import fields
from typing import Any

from .models import Digest, Item, Section, Story


def _item_to_json(item: Item) -> dict[str, Any]:
    raw = {field.name: getattr(item, field.name) for field in fields(Item)}
    return {**raw, "section": item.section.value, "published": item.published.isoformat()}


def _item_from_json(raw: dict[str, Any]) -> Item:
    return Item(
        **{
            **raw,
            "section": Section(raw["section"]),
            "published": dt.datetime.fromisoformat(raw["published"]),
        }
    )


def _story_to_json(story: Story) -> dict[str, Any]:
    return {
        "section": story.section.value,
        "score": story.score,
        "items": [_item_to_json(item) for item in story.items],
        "tickers": list(story.tickers),
        "earlier_outlets": list(story.earlier_outlets),
    }


def _story_from_json(raw: dict[str, Any]) -> Story:
    return Story(
        items=tuple(_item_from_json(item) for item in raw["items"]),
        section=Section(raw["section"]),
        score=raw["score"],
        tickers=tuple(raw.get("tickers", ())),
        earlier_outlets=tuple(raw.get("earlier_outlets", ())),
    )


def _digest_to_json(digest: Digest) -> dict[str, Any]:
    return {
        "date": digest.date.isoformat(),
        "title": digest.title,
        "tagline": digest.tagline,
        "window_start": digest.window_start.isoformat(),
        "window_end": digest.window_end.isoformat(),
        "top": [_story_to_json(story) for story in digest.top],
        "sections": [
            [section.value, [_story_to_json(story) for story in stories]]
            for section, stories in digest.sections
        ],
    }


def _digest_from_json(raw: dict[str, Any]) -> Digest:
    return Digest(
        date=dt.date.fromisoformat(raw["date"]),
        title=raw["title"],
        tagline=raw["tagline"],
        window_start=dt.datetime.fromisoformat(raw["window_start"]),
        window_end=dt.datetime.fromisoformat(raw["window_end"]),
        top=tuple(_story_from_json(story) for story in raw["top"]),
        sections=tuple(
            (Section(section), tuple(_story_from_json(story) for story in stories))
            for section, stories in raw["sections"]
        ),
    )


def encode_edition(digest: Digest) -> str:
    """``digest`` as a JSON document."""
    return json.dumps(_digest_to_json(digest))


def decode_edition(payload: str) -> Digest:
    """The ``Digest`` that ``encode_edition`` wrote."""
    return _digest_from_json(json.loads(payload))
