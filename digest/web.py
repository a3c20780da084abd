"""The web pages: the edition in a browser, its archive, and unsubscribing.

A small Starlette app; ``digest preview`` serves it with uvicorn on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from .config import Settings
from .message import make_email
from .models import Digest, Subscriber
from .pipeline import publisher_of
from .render import long_date
from .site import (
    ARCHIVE_PATH,
    FEED_PATH,
    PREFERENCES_PATH,
    UNSUBSCRIBE_PATH,
    edition_path,
    is_published,
)
from .store import Store
from .window import edition_date

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def _page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=_SECURITY_HEADERS)


_SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _message(title: str, text: str, status: int = 200) -> HTMLResponse:
    return _page(
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title></head>"
        "<body style='font-family:Helvetica,Arial,sans-serif;max-width:600px;margin:40px auto;"
        f"padding:0 16px;'><h1>{html.escape(title)}</h1><p>{text}</p></body></html>",
        status,
    )


def make_app(
    settings: Settings,
    store: Store,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> Starlette:
    """The ASGI app for ``settings``' site; ``clock`` tells it what day it is."""
    publisher = publisher_of(settings, store)
    site = publisher.site

    def published() -> list[tuple[dt.date, Digest]]:
        """The editions the site shows, newest first: sent ones, and today's."""
        today = edition_date(clock(), settings.edition.timezone)
        sent = store.sent_dates()
        shown = []
        for date in store.edition_dates():
            if date not in sent and date != today:
                continue  # unpublished whatever it holds: no need to load it
            digest = store.load_edition(date)
            if digest is not None and is_published(date, today, date in sent, digest.story_count):
                shown.append((date, digest))
        return shown

    def edition_response(date: dt.date, request: Request) -> Response:
        digest = dict(published()).get(date)
        if digest is None:
            return _message("Not found", f"There is no edition for {date}.", 404)
        # ?t=TOKEN, from the links in the email, is that subscriber's own page: their
        # watchlist first and their links. Without it the page is the public one.
        reader = site.reader(request.query_params.get("t", ""))
        person = (store.subscriber(reader) or Subscriber(reader)) if reader else None
        page = make_email(digest, publisher, person)
        if request.url.path.endswith(".txt"):
            return PlainTextResponse(page.text, headers=_SECURITY_HEADERS)
        return _page(page.html)

    async def latest(request: Request) -> Response:
        shown = published()
        if not shown:
            return _message("No edition yet", "The first edition is on its way.", 404)
        return edition_response(shown[0][0], request)

    async def archive_index(request: Request) -> Response:
        rows = "".join(
            f"<li><a href='{edition_path(date)}'>{long_date(date)}</a></li>"
            for date, _ in published()
        )
        return _message(f"{settings.edition.title}: archive", f"<ul>{rows}</ul>")

    async def archive_edition(request: Request) -> Response:
        raw = request.path_params["date"].removesuffix(".txt")
        try:
            date = dt.date.fromisoformat(raw)
        except ValueError:
            return _message("Not found", "That is not a date.", 404)
        return edition_response(date, request)

    def subscriber_of(request: Request) -> str | None:
        return site.reader(request.query_params.get("t", ""))

    async def unsubscribe(request: Request) -> Response:
        email = subscriber_of(request)
        if email is None:
            return _message(
                "Unsubscribe",
                "This link is not valid. Use the unsubscribe link at the end of your email.",
                400,
            )
        if request.method == "POST":
            store.unsubscribe(email, dt.datetime.now(dt.UTC))
            return _message("Unsubscribed", f"{html.escape(email)} will get no more emails.")
        return _message(
            "Unsubscribe",
            f"Stop sending {html.escape(settings.edition.title)} to {html.escape(email)}?"
            "<form method='post'><button type='submit'>Unsubscribe</button></form>",
        )

    async def preferences(request: Request) -> Response:
        email = subscriber_of(request)
        if email is None:
            return _message(
                "Preferences", "Open this page from the link at the end of your email.", 400
            )
        person = store.subscriber(email)
        subscribed = person is not None and person.active
        token = html.escape(request.query_params.get("t", ""))
        action = (
            f"<form method='post' action='{UNSUBSCRIBE_PATH}?t={token}'>"
            "<button type='submit'>Unsubscribe</button></form>"
            if subscribed
            else ""
        )
        return _message(
            "Preferences",
            f"{html.escape(email)} is {'subscribed' if subscribed else 'not subscribed'} to "
            f"{html.escape(settings.edition.title)}, sent every morning at "
            f"{settings.edition.send_at:%H:%M} ({html.escape(str(settings.edition.timezone))})."
            f"{action}",
        )

    async def atom_feed(request: Request) -> Response:
        shown = published()[:30]
        updated = shown[0][0] if shown else dt.date(1970, 1, 1)
        entries = []
        for date, digest in shown:
            lead = digest.top[0].lead.title if digest.top else "No stories"
            entries.append(
                "<entry>"
                f"<title>{html.escape(settings.edition.title)} for {long_date(date)}</title>"
                f"<link href='{site.page(edition_path(date))}'/>"
                f"<id>{site.page(edition_path(date))}</id>"
                f"<updated>{digest.window_end.isoformat()}</updated>"
                f"<summary>{digest.story_count} stories. Top: {html.escape(lead)}</summary>"
                "</entry>"
            )
        body = (
            "<?xml version='1.0' encoding='utf-8'?>"
            "<feed xmlns='http://www.w3.org/2005/Atom'>"
            f"<title>{html.escape(settings.edition.title)}</title>"
            f"<subtitle>{html.escape(settings.edition.tagline)}</subtitle>"
            f"<link href='{site.page('/')}'/><link rel='self' href='{site.page(FEED_PATH)}'/>"
            f"<id>{site.page('/')}</id><updated>{updated.isoformat()}T00:00:00Z</updated>"
            f"<author><name>{html.escape(settings.edition.title)}</name></author>"
            + "".join(entries)
            + "</feed>"
        )
        return Response(body, media_type="application/atom+xml", headers=_SECURITY_HEADERS)

    return Starlette(
        routes=[
            Route("/", latest),
            Route(ARCHIVE_PATH, archive_index),
            Route(ARCHIVE_PATH + "{date}", archive_edition),
            Route(FEED_PATH, atom_feed),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
            Route(PREFERENCES_PATH, preferences),
            Route(UNSUBSCRIBE_PATH, unsubscribe, methods=["GET", "POST"]),
        ]
    )
