"""Render an edition into the HTML and plain-text parts of one subscriber's email.

Jinja2 with autoescape on: feed text is escaped. The HTML part's styles are inlined with
css-inline (mail clients drop most of <style>), and the part is kept under Gmail's clipping
size by shortening summaries first, then dropping the last stories, with a pointer to the
web edition. Pure: no I/O beyond reading the templates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from .models import Digest, Story
from .site import Links

#: Inside the package (digest/templates links to the top-level templates/), so an installed
#: wheel finds them as well as a checkout does.
TEMPLATES_DIR = Path(str(files("digest") / "templates"))
#: Longest subject line before it is cut; most clients show about this much.
SUBJECT_LIMIT = 110
#: Gmail clips an HTML part past 102 KB; this leaves room for the transfer encoding.
HTML_LIMIT = 95_000
PREHEADER_LIMIT = 140

_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False)


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    html: str
    text: str
    #: How many stories made it into the message (fewer than the edition's when trimmed).
    stories: int


@dataclass(frozen=True, slots=True)
class Trim:
    """How much the message gives up to stay small."""

    summary_chars: int | None = None
    drop_summaries: bool = False
    #: Say that the web edition has more.
    note: bool = False


#: Tried in order until the HTML part is small enough.
TRIM_STEPS = (
    Trim(),
    Trim(160, note=True),
    Trim(90, note=True),
    Trim(drop_summaries=True, note=True),
)


def make_environment(templates_dir: Path = TEMPLATES_DIR) -> Environment:
    environment = Environment(
        loader=FileSystemLoader(templates_dir),
        autoescape=select_autoescape(["html", "html.j2"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["long_date"] = long_date
    environment.filters["shorten_summary"] = shorten_summary
    environment.filters["developing_label"] = developing_label
    environment.filters["host"] = lambda url: urlsplit(url).netloc
    return environment


def long_date(date: dt.date) -> str:
    return f"{date:%A}, {date:%B} {date.day}, {date:%Y}"


def shorten_summary(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def outlets_label(story: Story) -> str:
    """'Market Wire' or 'Market Wire, covered by 5 outlets'."""
    if len(story.outlets) == 1:
        return story.lead.source_name
    return f"{story.lead.source_name}, covered by {len(story.outlets)} outlets"


def developing_label(story: Story) -> str:
    """'' for a new story; 'developing: +5 outlets since yesterday' for one carried over."""
    if not story.earlier_outlets:
        return ""
    added = story.new_outlets
    if not added:
        return "developing: new reports since yesterday"
    return f"developing: +{added} outlet{'s' if added != 1 else ''} since yesterday"


def make_subject(digest: Digest) -> str:
    subject = f"{digest.title} for {digest.date:%b} {digest.date.day}"
    if digest.top:
        subject += f": {digest.top[0].lead.title}"
    if len(subject) > SUBJECT_LIMIT:
        subject = subject[: SUBJECT_LIMIT - 1].rsplit(" ", 1)[0] + "…"
    return subject


def make_preheader(digest: Digest) -> str:
    """The line inboxes show after the subject: how many stories, and the next leads."""
    leads = [story.lead.title for story in digest.top[1:3]]
    count = digest.story_count
    text = f"{count} {'story' if count == 1 else 'stories'} today"
    if leads:
        text += ". Also: " + "; ".join(leads)
    return shorten_summary(text, PREHEADER_LIMIT)


def _keep(digest: Digest, count: int) -> Digest:
    """The first ``count`` stories of ``digest``, in order."""
    top = digest.top[:count]
    left = count - len(top)
    sections = []
    for section, stories in digest.sections:
        kept = stories[: max(0, left)]
        left -= len(kept)
        if kept:
            sections.append((section, kept))
    return replace(digest, top=top, sections=tuple(sections))


def render_digest(
    digest: Digest,
    links: Links,
    recipient_name: str = "",
    environment: Environment | None = None,
    *,
    postal_address: str = "",
    watchlist: Sequence[Story] = (),
) -> Rendered:
    """Both parts of the email for one subscriber, the HTML part under ``HTML_LIMIT``."""
    drafts = Drafts(
        digest,
        links,
        recipient_name,
        environment,
        postal_address=postal_address,
        watchlist=watchlist,
    )
    return drafts.rendered()


def first_fitting(steps: int, html_bytes: Callable[[int], int]) -> int:
    """The first trimming step whose HTML part is at most ``HTML_LIMIT`` bytes, else the last."""
    for step in range(steps):
        if html_bytes(step) <= HTML_LIMIT:
            return step
    return steps - 1


class Drafts:
    """One subscriber's email at each trimming step, from the whole edition down to no story.

    A step is rendered when it is first asked for; ``rendered`` keeps the first whose HTML
    part fits. Apart from that choice the steps stand alone, so a caller that knows the sizes
    another way (the same edition with other links) can render only the step it needs.
    """

    __slots__ = ("_attempts", "_context", "_digest", "_environment", "_html", "_text", "subject")

    def __init__(
        self,
        digest: Digest,
        links: Links,
        recipient_name: str = "",
        environment: Environment | None = None,
        *,
        postal_address: str = "",
        watchlist: Sequence[Story] = (),
    ) -> None:
        self._environment = environment or make_environment()
        self._context: dict[str, Any] = {
            "links": links,
            "recipient_name": recipient_name,
            "postal_address": postal_address,
            "watchlist": tuple(watchlist),
            "preheader": make_preheader(digest),
        }
        self._digest = digest
        fewer_stories = [(count, TRIM_STEPS[-1]) for count in range(digest.story_count - 1, -1, -1)]
        self._attempts = [(digest.story_count, trim) for trim in TRIM_STEPS] + fewer_stories
        self._html: dict[int, str] = {}
        self._text: dict[int, str] = {}
        self.subject = make_subject(digest)

    @property
    def steps(self) -> int:
        return len(self._attempts)

    def stories(self, step: int) -> int:
        """How many stories the message has at ``step``."""
        return self._attempts[step][0]

    def html(self, step: int) -> str:
        if step not in self._html:
            template = self._environment.get_template("digest.html.j2")
            self._html[step] = _INLINER.inline(template.render(self._step_context(step)))
        return self._html[step]

    def text(self, step: int) -> str:
        if step not in self._text:
            template = self._environment.get_template("digest.txt.j2")
            self._text[step] = template.render(self._step_context(step))
        return self._text[step]

    def rendered(self) -> Rendered:
        """The first step whose HTML part is under ``HTML_LIMIT``, as sent."""
        step = first_fitting(self.steps, lambda step: len(self.html(step).encode()))
        return Rendered(self.subject, self.html(step), self.text(step), self.stories(step))

    def _step_context(self, step: int) -> dict[str, Any]:
        count, trim = self._attempts[step]
        return {**self._context, "digest": _keep(self._digest, count), "trim": trim}
