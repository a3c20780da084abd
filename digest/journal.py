"""The in-flight journal: which claimed messages were handed to the server, and their answers.

The ledger in the database is written in batches, so a crash between two batches must not
leave it guessing. Before each message is handed over, a line ``S <id>`` is appended to the
sending run's journal, and after the server's answer ``R <id> <code>``: one ``write`` each,
which the operating system keeps even if the process is killed the next instant. The next run
reconciles what the ledger had claimed: answered → that answer; started without an answer →
unknown (maybe received: never sent again unless asked); never started → queued again.
A power cut can lose the last lines; ``unknown`` is the safe reading of a missing journal.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Reading:
    """What one run's journal says of its messages."""

    #: Handed over (``S``) and answered (``R``): the code, or None for a lost answer.
    answered: dict[int, int | None] = field(default_factory=dict)
    #: Handed over, no answer written: the run died with them in flight.
    in_flight: frozenset[int] = frozenset()


class Journal:
    """The append-only journal of one sending run (thread-safe)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        # Held while the run lives: the kernel drops it when the process dies, however it
        # dies, which is how a later run tells a dead run's claims from a live one's.
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._lock = threading.Lock()

    def started(self, delivery: int) -> None:
        self._append(f"S {delivery}\n")

    def answered(self, delivery: int, code: int | None) -> None:
        self._append(f"R {delivery} {'-' if code is None else code}\n")

    def _append(self, line: str) -> None:
        with self._lock:
            os.write(self._fd, line.encode())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def is_live(path: Path) -> bool:
    """Whether the run writing the journal at ``path`` is still alive."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def read_journal(path: Path) -> Reading | None:
    """What the journal at ``path`` says, or None when there is none (another host's run)."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return None
    # Only whole lines count: one without its newline was cut short ("S 1" of "S 12").
    lines = text.split("\n")[:-1]
    started: set[int] = set()
    answered: dict[int, int | None] = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[0] == "S" and parts[1].isdigit():
            started.add(int(parts[1]))
        elif len(parts) == 3 and parts[0] == "R" and parts[1].isdigit():
            code = int(parts[2]) if parts[2].isdigit() else None
            answered[int(parts[1])] = code
    return Reading(answered, frozenset(started - set(answered)))
