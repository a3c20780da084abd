"""The service's log: one line per event, with its time and level, for people or machines.

``human`` lines read ``2026-12-01 07:00:02 INFO digest.schedule: sent the edition of ...``;
``json`` lines are one object each (``time``, ``level``, ``logger``, ``message``) for a log
collector. The libraries underneath (the scheduler, the web and mail servers, the HTTP client)
speak only at WARNING and above: their routine chatter is not the operator's business.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import traceback
from typing import TextIO

#: ``--log-format`` choices.
FORMATS = ("human", "json")

#: Loggers of libraries whose INFO lines (each job run, each connection) are noise here.
QUIET = ("apscheduler", "uvicorn", "uvicorn.error", "uvicorn.access", "mail.log", "aiohttp")


def one_line(error: BaseException) -> str:
    """An exception as one line: its type and message, newlines folded."""
    text = "".join(traceback.format_exception_only(type(error), error))
    return " ".join(text.split())


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[1] is not None:
            line["error"] = one_line(record.exc_info[1])
        return json.dumps(line, ensure_ascii=False)


class HumanFormatter(logging.Formatter):
    """``time level logger: message``; a traceback's last line only, on the same line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        error = record.exc_info
        record.exc_info, record.exc_text = None, None
        try:
            line = super().format(record)
        finally:
            record.exc_info = error
        if error and error[1] is not None:
            line += f" ({one_line(error[1])})"
        return line


def configure_logging(log_format: str = "human", stream: TextIO | None = None) -> None:
    """Send every log line to ``stream`` (stderr) in ``log_format``, libraries at WARNING."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else HumanFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in QUIET:
        library = logging.getLogger(name)
        library.setLevel(logging.WARNING)
        # Through the one handler above, not one of its own (uvicorn may have set them up).
        for own in list(library.handlers):
            library.removeHandler(own)
        library.propagate = True
