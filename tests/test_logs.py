"""The service's log lines: one per event, with time and level, human or JSON."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from digest.logs import QUIET, configure_logging


@pytest.fixture
def restored() -> Iterator[None]:
    """The logging set-up as it was, pytest's capture included."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    libraries = [logging.getLogger(name) for name in QUIET]
    saved = [(lib.level, list(lib.handlers), lib.propagate) for lib in libraries]
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for library, (level, own, propagate) in zip(libraries, saved, strict=True):
        library.setLevel(level)
        library.propagate = propagate
        for handler in own:
            library.addHandler(handler)


def test_human_lines_have_time_level_and_logger_and_libraries_speak_at_warning(
    restored: None,
) -> None:
    stream = io.StringIO()
    configure_logging("human", stream)
    logging.getLogger("digest.schedule").info("fetched 3 feeds")
    logging.getLogger("apscheduler.scheduler").info("Added job 'fetch'")
    logging.getLogger("uvicorn.error").warning("port in use")
    try:
        raise ValueError("bad\nsecond line")
    except ValueError:
        logging.getLogger("digest.web").exception("a page failed")
    lines = stream.getvalue().splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    assert re.fullmatch(rf"{stamp} INFO digest.schedule: fetched 3 feeds", lines[0])
    assert re.fullmatch(rf"{stamp} WARNING uvicorn.error: port in use", lines[1])
    assert re.fullmatch(
        rf"{stamp} ERROR digest.web: a page failed \(ValueError: bad second line\)", lines[2]
    )
    assert len(lines) == 3  # the scheduler's INFO is not shown; the traceback is one line


def test_json_lines_are_one_object_each(restored: None) -> None:
    stream = io.StringIO()
    configure_logging("json", stream)
    logging.getLogger("digest.serve").info("stopped")
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["level"] == "INFO" and record["logger"] == "digest.serve"
    assert record["message"] == "stopped"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", record["time"])
