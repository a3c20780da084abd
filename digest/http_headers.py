"""The headers every answer of the site carries, and which answers no cache may keep.

Security headers go on every response, a page, a redirect, a 404 or an error alike; a page
about one person (their own page, or a page opened with their token) gets
``Cache-Control: no-store``, so no browser or proxy keeps it for the next one to see.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .site import CONFIRM_PATH, PREFERENCES_PATH, SUBSCRIBE_PATH, UNSUBSCRIBE_PATH

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


#: On every response, whatever answers it (a page, a redirect, a 404, an error).
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}
#: Pages about one person (their address, their links): never kept by a browser or proxy.
PERSONAL_PATHS = frozenset(
    {SUBSCRIBE_PATH, CONFIRM_PATH, PREFERENCES_PATH, UNSUBSCRIBE_PATH, "/status"}
)


def is_personal(path: str, query: str) -> bool:
    """Whether the answer to ``path?query`` is one person's: its own page, or a page opened
    with their token (``?t=``)."""
    return path in PERSONAL_PATHS or "t" in parse_qs(query)


class ResponseHeaders:
    """Adds the security headers to every response, and ``Cache-Control: no-store`` to the
    personal ones (an ASGI middleware, so it also covers 404s and errors)."""

    def __init__(self, app: ASGIApp, https: bool = False) -> None:
        self.app = app
        self.extra = dict(SECURITY_HEADERS)
        if https:  # the public site is https (TLS ends at the proxy): browsers stay on it
            self.extra["Strict-Transport-Security"] = "max-age=31536000"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = dict(self.extra)
        if is_personal(scope["path"], scope.get("query_string", b"").decode("latin-1")):
            extra["Cache-Control"] = "no-store"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in extra.items():
                    if name.lower().encode() not in present:
                        headers.append((name.lower().encode(), value.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
