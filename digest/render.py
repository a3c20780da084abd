"""Render an edition into the HTML and plain-text parts of one subscriber's email.

Jinja2 with autoescape on: feed text is escaped, and the summaries that reach the HTML
template as markup were cleaned by the sanitizer first. Pure: no I/O beyond the templates.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from .models import Digest, Story

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
#: Longest subject line before it is cut; most clients show about this much.
SUBJECT_LIMIT = 110


@dataclass(frozen=True, slots=True)
class Links:
    """Where a subscriber's message points besides the stories."""

    site_url: str
    unsubscribe: str
    view_in_browser: str


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    html: str
    text: str


def make_environment(templates_dir: Path = TEMPLATES_DIR) -> Environment:
    environment = Environment(
        loader=FileSystemLoader(templates_dir),
        autoescape=select_autoescape(["html", "html.j2"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["outlets_label"] = outlets_label
    environment.filters["long_date"] = long_date
    environment.filters["safe_summary"] = lambda story: Markup(story.lead.summary_html)
    return environment


def outlets_label(story: Story) -> str:
    """'Market Wire' or 'Market Wire +4 outlets'."""
    others = len(story.outlets) - 1
    if others == 0:
        return story.lead.source_name
    return f"{story.lead.source_name} +{others} outlet{'s' if others > 1 else ''}"


def long_date(date: dt.date) -> str:
    return f"{date:%A}, {date:%B} {date.day}, {date:%Y}"


def make_subject(digest: Digest) -> str:
    subject = f"{digest.title} for {digest.date:%b} {digest.date.day}"
    if digest.top:
        subject += f": {digest.top[0].lead.title}"
    if len(subject) > SUBJECT_LIMIT:
        subject = subject[: SUBJECT_LIMIT - 1].rsplit(" ", 1)[0] + "…"
    return subject


def render_digest(
    digest: Digest, links: Links, recipient_name: str = "", environment: Environment | None = None
) -> Rendered:
    """Both parts of the email for one subscriber."""
    environment = environment or make_environment()
    context = {"digest": digest, "links": links, "recipient_name": recipient_name}
    return Rendered(
        subject=make_subject(digest),
        html=environment.get_template("digest.html.j2").render(context),
        text=environment.get_template("digest.txt.j2").render(context),
    )
