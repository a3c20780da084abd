"""The web pages: the edition in a browser, its archive, signing up, and unsubscribing.

A small Starlette app; ``digest serve`` (and ``digest preview``) serve it with uvicorn.

Personal pages take a token (``?t=``) made for them alone (``digest.tokens``). A token that is
not genuine, not for that page, expired, or naming nobody gets one and the same refusal, so
the answer tells nothing about why. Signing up answers the same for every address, and its
mail goes out after the answer, so neither the page nor its timing tells whether an address
is subscribed. A link only shows a page with a button; only pressing it (a POST) changes
anything, so the link scanners of mail providers confirm and unsubscribe nobody.
"""

from __future__ import annotations

import datetime as dt
import hmac
import html
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from . import lifecycle
from .addresses import normalize_address
from .config import Settings
from .errors import AddressError, ConfigError, DigestError
from .http_headers import ResponseHeaders
from .lifecycle import Notice, State, SubscriberRecord
from .message import make_email
from .models import Digest, Story, Subscriber
from .pages import (
    ARCHIVE_HEADLINES,
    ARCHIVE_PAGE_SIZE,
    ArchiveEntry,
    Head,
    archive_page,
    page_count,
    shell,
    with_meta,
)
from .pipeline import publisher_of, send_notices
from .render import long_date
from .site import (
    ARCHIVE_PATH,
    CONFIRM_PATH,
    FEED_PATH,
    PREFERENCES_PATH,
    SUBSCRIBE_PATH,
    UNSUBSCRIBE_PATH,
    edition_path,
    is_published,
)
from .status import health_json, read_status, status_json
from .store import Store
from .subscribers import parse_watchlist
from .timetable import with_market_note
from .tokens import CONFIRM_LIFETIME, Purpose
from .window import edition_date

if TYPE_CHECKING:
    from .schedule import Service

log = logging.getLogger(__name__)


def _page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status)


def _message(
    head: Head, text: str, status: int = 200, background: BackgroundTask | None = None
) -> HTMLResponse:
    """A short page: ``head.title`` as its heading and ``text`` (HTML) under it."""
    response = _page(shell(head, head.title, f"<p>{text}</p>"), status)
    response.background = background
    return response


#: Whatever was wrong with a personal link's token: one answer, telling nothing of what.
REFUSAL = (
    "This link does not work",
    "It may be incomplete, out of date, or not for this page. Use the newest link in your "
    "email, or <a href='/'>sign up again</a> on the home page.",
)


def subscribe_form(message: str = "") -> str:
    """The sign-up form, above the edition on the home page and on its own page."""
    note = f"<p style='margin:8px 0 0 0;color:#a02a00;'>{message}</p>" if message else ""
    return (
        f"<form method='post' action='{SUBSCRIBE_PATH}' class='subscribe' "
        "style='box-sizing:border-box;max-width:600px;margin:16px auto 0 auto;padding:14px 16px;"
        "background-color:#ffffff;border:1px solid #dde1e6;"
        "font-family:Helvetica,Arial,sans-serif;font-size:15px;line-height:22px;color:#36404d;'>"
        "<label for='subscribe-email' style='display:block;margin:0 0 8px 0;font-weight:bold;"
        "color:#0f1c2e;'>Get this email every morning, free</label>"
        "<input id='subscribe-email' type='email' name='email' required autocomplete='email' "
        "placeholder='you@example.com' style='box-sizing:border-box;width:100%;max-width:360px;"
        "padding:8px;font-size:15px;border:1px solid #b8c0ca;margin:0 8px 8px 0;'>"
        "<button type='submit' style='padding:8px 16px;font-size:15px;font-weight:bold;"
        "color:#ffffff;background-color:#1d5fd1;border:0;'>Subscribe</button>"
        f"{note}</form>"
    )


_BODY_TAG = re.compile(r"<body[^>]*>", re.IGNORECASE)


def with_subscribe_form(page: str) -> str:
    """The edition's page with the sign-up form at its top, inside its <body>."""
    found = _BODY_TAG.search(page)
    if found is None:
        return subscribe_form() + page
    return page[: found.end()] + subscribe_form() + page[found.end() :]


#: Forms here hold one address; anything much bigger is not one of them.
_FORM_LIMIT = 4096


async def _form(request: Request) -> dict[str, str]:
    """The fields of a posted urlencoded form (the first value of each); {} when too big."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _FORM_LIMIT:
            return {}
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def make_app(
    settings: Settings,
    store: Store,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    *,
    service: Service | None = None,
) -> Starlette:
    """The ASGI app for ``settings``' site; ``clock`` tells it what time it is; ``service``
    (under ``digest serve``) is what ``/healthz`` asks whether the scheduler runs.

    Every page that reads the database or renders is built in a worker thread, never in
    the event loop, so one slow page does not hold up the others or an unsubscribe.
    """
    publisher = publisher_of(settings, store)
    site = publisher.site
    title = html.escape(settings.edition.title)
    name = settings.edition.title

    def head(heading: str, path: str, description: str | None = None) -> Head:
        return Head(heading, description or settings.edition.tagline, site.page(path), name)

    def message(
        heading: str,
        text: str,
        status: int = 200,
        background: BackgroundTask | None = None,
        path: str = "/",
    ) -> HTMLResponse:
        return _message(head(heading, path), text, status, background)

    def refused() -> HTMLResponse:
        return message(*REFUSAL, 400)

    # Public pages of sent editions, rendered once: (date, home page, plain text) → body.
    rendered: dict[tuple[dt.date, bool, bool], str] = {}
    # A sent edition never changes (it is frozen when its first message goes): decoded once.
    frozen: dict[dt.date, Digest] = {}
    frozen_lock = threading.Lock()

    def load(date: dt.date, sent: bool) -> Digest | None:
        with frozen_lock:
            if date in frozen:
                return frozen[date]
        digest = store.load_edition(date)
        if digest is not None:
            digest = with_market_note(digest, settings.edition.timetable)
        if digest is not None and sent:
            with frozen_lock:
                frozen[date] = digest
        return digest

    def published() -> list[tuple[dt.date, bool]]:
        """The editions the site shows, newest first, and whether each was sent: the sent
        ones, and today's while it has stories."""
        today = edition_date(clock(), settings.edition.timezone)
        dates = store.edition_dates()
        sent = store.sent_dates(*dates) if dates else set()
        shown = []
        for date in dates:
            if date in sent:
                shown.append((date, True))
            elif date == today:
                digest = load(date, False)
                if digest is not None and is_published(date, today, False, digest.story_count):
                    shown.append((date, False))
        return shown

    def holder(request: Request, purpose: Purpose) -> tuple[SubscriberRecord, dt.datetime] | None:
        """The subscriber the link's token names and when it was issued, or None unless the
        token is genuine, for ``purpose``, unexpired, and names a subscriber."""
        token = site.read(purpose, request.query_params.get("t", ""), clock())
        if token is None:
            return None
        record = store.record_by_public_id(token.public_id)
        return None if record is None else (record, token.issued)

    def mail(notice: Notice | None) -> BackgroundTask | None:
        """Send ``notice`` after the answer has gone, so its time does not show in it."""
        if notice is None:
            return None

        def send() -> None:
            try:
                report = send_notices(settings, store, [notice], clock())
            except Exception:
                log.exception("the %s to %s was not sent", notice.mail, notice.subscriber.email)
                return
            for failed, reason in report.failed:
                log.warning("the %s was not sent: %s", failed.mail, reason)

        return BackgroundTask(send)

    def edition_response(date: dt.date, request: Request, home: bool = False) -> Response:
        sent = dict(published()).get(date)
        digest = None if sent is None else load(date, sent)
        if sent is None or digest is None:
            return message("Not found", f"There is no edition for {date}.", 404)
        text = request.url.path.endswith(".txt")
        # ?t=TOKEN, from the links in the email, is that subscriber's own page: their
        # watchlist first and their links. Without it, or with a token that does not work
        # here, the page is the public one, the same for everyone.
        found = holder(request, Purpose.ARCHIVE)
        key = (date, home, text)
        if found is None and sent and key in rendered:
            body = rendered[key]
        else:
            body = edition_page(digest, found[0].subscriber if found else None, home, text)
            if found is None and sent:
                rendered[key] = body
        return PlainTextResponse(body) if text else _page(body)

    def edition_page(digest: Digest, person: Subscriber | None, home: bool, text: bool) -> str:
        page = make_email(digest, publisher, person)
        if text:
            return page.text
        leads = "; ".join(story.lead.title for story in headlines(digest, ARCHIVE_HEADLINES))
        heading = f"{name}, {long_date(digest.date)}"
        tags = head(heading, "/" if home else edition_path(digest.date), leads or None)
        return with_meta(with_subscribe_form(page.html) if home else page.html, tags)

    def latest(request: Request) -> Response:
        shown = published()
        if not shown:
            return message(
                "No edition yet", "The first edition is on its way." + subscribe_form(), 404
            )
        return edition_response(shown[0][0], request, home=True)

    def archive_index(request: Request) -> Response:
        shown = published()
        pages = page_count(len(shown))
        try:
            number = int(request.query_params.get("page", "1"))
        except ValueError:
            number = 0
        if not 1 <= number <= pages:
            return message("Not found", "There is no such archive page.", 404, path=ARCHIVE_PATH)
        start = (number - 1) * ARCHIVE_PAGE_SIZE
        entries = []
        for date, sent in shown[start : start + ARCHIVE_PAGE_SIZE]:
            digest = load(date, sent)
            if digest is None:
                continue
            top = headlines(digest, ARCHIVE_HEADLINES)
            entries.append(
                ArchiveEntry(date, tuple((story.lead.title, story.lead.link) for story in top))
            )
        path = ARCHIVE_PATH if number == 1 else f"{ARCHIVE_PATH}?page={number}"
        tags = head(f"{name}: archive", path, f"Every edition of {name} so far.")
        return _page(archive_page(entries, number, pages, tags, settings.edition.tagline))

    def archive_edition(request: Request) -> Response:
        raw = request.path_params["date"].removesuffix(".txt")
        try:
            date = dt.date.fromisoformat(raw)
        except ValueError:
            return message("Not found", "That is not a date.", 404)
        return edition_response(date, request)

    async def subscribe(request: Request) -> Response:
        if request.method == "GET":
            return message(f"Subscribe to {settings.edition.title}", subscribe_form())
        form = await _form(request)
        return await run_in_threadpool(sign_up, form.get("email", ""))

    def sign_up(raw: str) -> Response:
        try:
            email = normalize_address(raw)
        except AddressError:
            return message(
                f"Subscribe to {settings.edition.title}",
                subscribe_form("That is not an email address; please check it."),
                400,
            )
        applied = store.sign_up(email, clock())
        # The same page whatever the address's state: see the module's docstring.
        return message(
            "Check your inbox",
            f"Unless {html.escape(email)} already gets {title}, a link to confirm your "
            f"subscription is on its way to it. Open it within {CONFIRM_LIFETIME.days} days "
            "and press the button there: nothing else is sent until you do.",
            background=mail(applied.notice),
        )

    def confirm(request: Request) -> Response:
        found = holder(request, Purpose.CONFIRM)
        if found is None:
            return refused()
        record, issued = found
        email = html.escape(record.subscriber.email)
        if request.method == "GET":
            transition = lifecycle.confirm(record.state, record.since, issued)
            if transition.refused:
                return refused()
            if transition.why is None:
                return message("You are subscribed", f"{email} already gets {title}.")
            return message(
                "Confirm your subscription",
                f"Send {title} to {email} every morning?"
                "<form method='post'><button type='submit'>Yes, subscribe me</button></form>",
            )
        applied = store.confirm(record.subscriber.public_id, issued, clock())
        if applied is None:
            return refused()
        return message(
            "You are subscribed",
            f"{email} gets {title} from the next edition on. Every edition ends with a link "
            "to unsubscribe in one click.",
            background=mail(applied.notice),
        )

    async def unsubscribe(request: Request) -> Response:
        form = await _form(request) if request.method == "POST" else {}
        return await run_in_threadpool(unsubscribe_page, request, form)

    def unsubscribe_page(request: Request, form: dict[str, str]) -> Response:
        found = holder(request, Purpose.UNSUBSCRIBE)
        if found is None:
            return refused()
        person = found[0].subscriber
        email = html.escape(person.email)
        if request.method == "POST":
            # RFC 8058: a mail program's unsubscribe button posts this, with no person there.
            one_click = form.get("List-Unsubscribe") == "One-Click"
            why = (
                "unsubscribed in one click from their mail program"
                if one_click
                else "unsubscribed on the web page"
            )
            store.unsubscribe(person.email, clock(), why)
            return message("Unsubscribed", f"{email} will get no more emails.")
        return message(
            "Unsubscribe",
            f"Stop sending {title} to {email}?"
            "<form method='post'><button type='submit'>Unsubscribe</button></form>",
        )

    async def preferences(request: Request) -> Response:
        form = await _form(request) if request.method == "POST" else None
        return await run_in_threadpool(preferences_page, request, form)

    def preferences_page(request: Request, form: dict[str, str] | None) -> Response:
        found = holder(request, Purpose.PREFERENCES)
        if found is None:
            return refused()
        record = found[0]
        person = record.subscriber
        note, status_code = "", 200
        if form is not None and record.state is State.ACTIVE:
            try:
                watchlist = parse_watchlist(form.get("watch", ""))
            except ConfigError as exc:
                why = str(exc).removeprefix("--watch: ")
                note = html.escape(why[:1].upper() + why[1:]) + "."
                status_code = 400
            else:
                store.set_watchlist(person.public_id, watchlist)
                person = replace(person, watchlist=watchlist)
                shown = ", ".join(watchlist) or "empty"
                note = f"Saved: your watchlist is {html.escape(shown)}."
        email = html.escape(person.email)
        when = f"{settings.edition.send_at:%H:%M} ({html.escape(str(settings.edition.timezone))})"
        status = {
            State.ACTIVE: f"{email} is subscribed to {title}, sent every morning at {when}.",
            State.PENDING: f"{email} is not subscribed yet: its subscription to {title} waits "
            "for the confirmation link sent to it.",
            State.UNSUBSCRIBED: f"{email} is unsubscribed from {title}.",
            State.BOUNCED: f"{email} gets no more {title}: mail to it bounced.",
            State.COMPLAINED: f"{email} gets no more {title}: it reported an edition as spam.",
        }[record.state]
        action = ""
        if record.state is State.ACTIVE:
            token = site.token(Purpose.UNSUBSCRIBE, person.public_id, clock())
            watch = html.escape(", ".join(person.watchlist))
            action = (
                f"<p class='note'>{note}</p>"
                * bool(note)
                + "<form method='post' class='watchlist'>"
                "<label for='watch'>Your watchlist: tickers and coins whose stories come first "
                "in your edition, separated by commas</label><br>"
                f"<input id='watch' name='watch' value='{watch}' placeholder='NVDA, BTC' "
                "style='box-sizing:border-box;width:100%;max-width:360px;padding:8px;"
                "font-size:15px;border:1px solid #b8c0ca;margin:8px 8px 8px 0;'>"
                "<button type='submit'>Save</button></form>"
                f"<form method='post' action='{UNSUBSCRIBE_PATH}?t={token}'>"
                "<p>Or stop getting it: <button type='submit'>Unsubscribe</button></p></form>"
            )
        return message("Preferences", status + action, status_code)

    def atom_feed(request: Request) -> Response:
        shown = [(date, load(date, sent)) for date, sent in published()[:30]]
        updated = shown[0][0] if shown else dt.date(1970, 1, 1)
        entries = []
        for date, digest in shown:
            if digest is None:
                continue
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
        return Response(body, media_type="application/atom+xml")

    def healthz(request: Request) -> Response:
        running = service.running if service is not None else True
        role = None if service is None else ("sender" if service.sender else "standby")
        try:
            answer = health_json(read_status(settings, store, clock(), editions=1), running, role)
        except DigestError as exc:
            log.error("/healthz: the database does not answer: %s", exc)
            return JSONResponse({"ok": False, "database": "not answering"}, status_code=503)
        return JSONResponse(answer, status_code=200 if running else 503)

    def status(request: Request) -> Response:
        expected = settings.status_token
        if expected is None:
            return message("Not found", "There is no such page.", 404)
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return JSONResponse(
                {"error": "send Authorization: Bearer DIGEST_STATUS_TOKEN"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return JSONResponse(status_json(read_status(settings, store, clock())))

    app = Starlette(
        routes=[
            Route("/", latest),
            Route(ARCHIVE_PATH.rstrip("/"), _redirect_to(ARCHIVE_PATH)),
            Route("/healthz", healthz),
            Route("/status", status),
            Route(ARCHIVE_PATH, archive_index),
            Route(ARCHIVE_PATH + "{date}", archive_edition),
            Route(FEED_PATH, atom_feed),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
            Route(PREFERENCES_PATH, preferences, methods=["GET", "POST"]),
            Route(UNSUBSCRIBE_PATH, unsubscribe, methods=["GET", "POST"]),
            Route(SUBSCRIBE_PATH, subscribe, methods=["GET", "POST"]),
            Route(CONFIRM_PATH, confirm, methods=["GET", "POST"]),
        ]
    )
    # Starlette's own slash redirect is absolute, built from the request's Host header.
    app.router.redirect_slashes = False
    app.add_middleware(ResponseHeaders, https=settings.edition.site_url.startswith("https://"))
    return app


def headlines(digest: Digest, count: int) -> list[Story]:
    """The edition's first ``count`` stories: its top stories, then its sections in order."""
    stories = list(digest.top) + [story for _, section in digest.sections for story in section]
    return stories[:count]


def _redirect_to(path: str) -> Callable[[Request], Response]:
    """A handler that redirects to ``path`` on this site, relative: no Host header in it."""

    def redirect(request: Request) -> Response:
        query = request.url.query
        return RedirectResponse(f"{path}?{query}" if query else path, status_code=308)

    return redirect
