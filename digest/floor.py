"""A floor under the edition: whether it may go out at all.

An almost empty edition, or one built while most feeds were down, is worse than none: it
reaches every subscriber and cannot be taken back. Pure: the caller brings the facts.
"""

from __future__ import annotations

from collections.abc import Sequence

from .models import FeedState


def why_not_send(story_count: int, feeds: Sequence[FeedState], min_stories: int) -> str | None:
    """Why an edition of ``story_count`` stories must not be sent, or None if it may."""
    if story_count < min_stories:
        return (
            f"it has {story_count} {'story' if story_count == 1 else 'stories'}, "
            f"fewer than edition.min_stories ({min_stories})"
        )
    live = [feed for feed in feeds if feed.active and feed.gone_at is None]
    failing = [feed for feed in live if feed.consecutive_failures]
    # More than half: a normal morning has a few flaky feeds, not a majority down.
    if live and 2 * len(failing) > len(live):
        return f"{len(failing)} of {len(live)} feeds are failing"
    return None
