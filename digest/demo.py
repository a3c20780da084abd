"""Serve the bundled sample feeds on 127.0.0.1 for the demo, dated as if they were fresh.

The sample feeds are written for one fixed day; the server moves every date in them by the
same offset, so today's edition finds the same stories in its window.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import threading
from collections.abc import Iterator
from email.utils import format_datetime, parsedate_to_datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

#: The day the sample feeds were written for: their edition covers the 24 hours before
#: 2026-11-24 07:00 America/New_York.
SAMPLES_EDITION_END = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)

_RFC822_ELEMENT = re.compile(rb"(<(pubDate|lastBuildDate)>)([^<]+)(</\2>)")
_RFC3339_ELEMENT = re.compile(rb"(<(published|updated|dc:date)>)([^<]+)(</\2>)")


def shift_dates(document: bytes, offset: dt.timedelta) -> bytes:
    """``document`` with every RSS and Atom date moved by ``offset``."""

    def rfc822(match: re.Match[bytes]) -> bytes:
        moment = parsedate_to_datetime(match[3].decode().strip()) + offset
        return match[1] + format_datetime(moment).encode() + match[4]

    def rfc3339(match: re.Match[bytes]) -> bytes:
        raw = match[3].decode().strip().replace("Z", "+00:00")
        moment = dt.datetime.fromisoformat(raw) + offset
        return match[1] + moment.isoformat().replace("+00:00", "Z").encode() + match[4]

    return _RFC3339_ELEMENT.sub(rfc3339, _RFC822_ELEMENT.sub(rfc822, document))


class _ShiftingHandler(SimpleHTTPRequestHandler):
    offset = dt.timedelta(0)

    def __init__(self, *args: Any, offset: dt.timedelta, **kwargs: Any) -> None:
        self.offset = offset
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        body = shift_dates(path.read_bytes(), self.offset)
        self.send_response(200)
        self.send_header("Content-Type", "application/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the demo prints its own summary


@contextlib.contextmanager
def serve_samples(
    directory: Path, port: int, offset: dt.timedelta = dt.timedelta(0)
) -> Iterator[ThreadingHTTPServer]:
    """Serve ``directory`` on 127.0.0.1:``port`` with dates moved by ``offset``."""
    handler = partial(_ShiftingHandler, directory=str(directory), offset=offset)
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
