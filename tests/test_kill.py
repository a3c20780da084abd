"""``kill -9`` of the sender at random points, over and over: nothing is lost, nothing is sent
twice; what was in flight at a kill is reported unknown, not guessed at."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from digest.config import load_settings
from digest.models import Subscriber
from digest.store import Store

from .conftest import write_config
from .sinks import Sink, outcome
from .test_sending import DATE, NOW, edition

CYCLES = 20
PEOPLE = [f"reader{n:04d}@example.com" for n in range(1500)]
#: Messages a second (sending.rate): slow enough that every cycle is killed mid-send.
RATE = 100


def test_killing_the_sender_at_random_never_loses_or_doubles_a_message(tmp_path: Path) -> None:
    sink = Sink().start()
    feed = {"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks"}
    config = write_config(tmp_path, [feed])
    config.write_text(config.read_text() + f"sending: {{rate: {RATE}}}\n")
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("DIGEST_")},
        "DIGEST_SMTP_URL": sink.url,
        "DIGEST_DB": f"sqlite:///{tmp_path / 'digest.db'}",
    }
    settings = load_settings(config, env=env)
    store = Store(settings.db_url)
    store.save_edition(edition(), NOW)
    store.enrol([Subscriber(address) for address in PEOPLE], NOW)
    store.close()
    command = [sys.executable, "-m", "digest", "--config", str(config), "send"]
    command += ["--date", DATE.isoformat(), "--force"]
    chance = random.Random(20261130)
    kills = 0
    try:
        for _ in range(CYCLES):
            sender = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            # Imports take about a second, then about RATE messages go each second.
            time.sleep(chance.uniform(1.2, 2.2))
            if sender.poll() is None:
                sender.send_signal(signal.SIGKILL)
                kills += 1
            sender.wait(30)
        finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert finished.returncode in (0, 3), finished.stderr
    finally:
        sink.close()

    counts, unknown, duplicates, lost = outcome(settings.db_url, DATE, PEOPLE, sink)
    print(
        f"\nkill loop: {CYCLES} cycles, {kills} kills, {len(duplicates)} duplicates,"
        f" {len(lost)} losses, {len(unknown)} unknown"
    )
    assert kills >= CYCLES // 2  # the loop did kill mid-send, not after the send was done
    assert duplicates == []
    assert lost == []
    assert counts.get("sent", 0) + len(unknown) == len(PEOPLE)
    assert set(counts) <= {"sent", "unknown"}
    # An unknown one was handed over at a kill: it arrived at most once.
    assert all(sink.received[address] <= 1 for address in unknown)
