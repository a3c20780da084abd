"""The send ledger's rules and the in-flight journal, on their own."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from digest.journal import Journal, is_live, read_journal
from digest.ledger import GIVE_UP_AFTER, Reply, Status, has_bounced, next_try, status_of

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (250, Status.SENT),
        (421, Status.DEFERRED),
        (450, Status.DEFERRED),
        (451, Status.DEFERRED),
        (452, Status.DEFERRED),
        (550, Status.BOUNCED),
        (551, Status.BOUNCED),
        (553, Status.BOUNCED),
        (552, Status.FAILED),
        (554, Status.FAILED),
        (None, Status.UNKNOWN),
    ],
)
def test_a_reply_decides_the_status(code: int | None, status: Status) -> None:
    assert status_of(Reply(code, "text")) is status


def test_deferred_messages_back_off_and_are_given_up_after_a_day() -> None:
    waits = [next_try(NOW, attempts, NOW) for attempts in range(1, 9)]
    gaps = [due - NOW for due in waits if due is not None]
    assert gaps == sorted(gaps) and gaps[0] == dt.timedelta(seconds=5)
    late = NOW + GIVE_UP_AFTER - dt.timedelta(minutes=1)
    assert next_try(NOW, 5, late) is None  # another hour would pass the day


def test_an_address_bounces_for_good_after_enough_editions_in_a_row() -> None:
    bounced, sent = Status.BOUNCED, Status.SENT
    assert has_bounced([bounced, bounced], 2)
    assert not has_bounced([bounced], 2)  # one edition is not yet a pattern
    assert not has_bounced([bounced, sent, bounced], 2)
    assert has_bounced([bounced, bounced, sent], 2)  # newest first: the last two bounced


def test_the_journal_tells_answered_from_in_flight(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "run.log")
    journal.started(1)
    journal.answered(1, 250)
    journal.started(2)
    journal.answered(2, None)
    journal.started(3)
    journal.close()
    with (tmp_path / "run.log").open("a") as file:
        file.write("S 4")  # a line cut short by a crash: as if never written
    reading = read_journal(tmp_path / "run.log")
    assert reading is not None
    assert reading.answered == {1: 250, 2: None}
    assert reading.in_flight == {3}
    assert read_journal(tmp_path / "missing.log") is None


def test_a_journal_is_live_while_its_process_lives(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    code = (
        "import sys, time; from pathlib import Path; from digest.journal import Journal;"
        " Journal(Path(sys.argv[1])); print('open', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        assert is_live(path)
    finally:
        holder.kill()  # like kill -9: the lock goes with the process
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    assert not is_live(path)
    assert not is_live(tmp_path / "never.log")
    assert os.path.exists(path)
