"""The real ``digest serve``, in a child process: feeds on a local HTTP server, mail to an SMTP
server on loopback, the edition due a few seconds after start."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from email.utils import format_datetime
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

import yaml

from digest.config import load_settings
from digest.ledger import Status
from digest.models import Subscriber
from digest.store import Store

from .conftest import FeedServer, Route, free_port, write_config
from .sinks import Sink

NEW_YORK = ZoneInfo("America/New_York")
PEOPLE = [f"reader{number:02d}@example.com" for number in range(16)]
HEADLINES = [
    "Nvidia shares climb after record data center revenue",
    "Bitcoin tops 90,000 dollars as exchange inflows slow",
    "Federal Reserve holds rates steady, signals patience",
    "Apple unveils cheaper iPhone aimed at emerging markets",
    "Ethereum developers schedule the next network upgrade",
]


def fresh_feed(now: dt.datetime) -> bytes:
    items = "".join(
        f"<item><title>{title}</title><link>https://news.example.com/{index}</link>"
        f"<guid>https://news.example.com/{index}</guid>"
        f"<pubDate>{format_datetime(now - dt.timedelta(hours=1 + index))}</pubDate></item>"
        for index, title in enumerate(HEADLINES)
    )
    return (
        "<?xml version='1.0'?><rss version='2.0'><channel><title>Wire</title>"
        f"<link>https://news.example.com/</link>{items}</channel></rss>"
    ).encode()


def wait_for(condition: Callable[[], bool], what: str, limit: float = 90.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.05)


def check_inbound(port: int, sender: str) -> None:
    """The list's own addresses take mail; any other address is refused."""
    import smtplib

    from digest.inbound import mailboxes_of

    boxes = mailboxes_of(sender)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail("postmaster@example.org", [boxes.bounces], b"Subject: hi\r\n\r\nhello\r\n")
        try:
            smtp.sendmail("a@example.org", ["someone@elsewhere.example"], b"Subject: x\r\n\r\nx")
        except smtplib.SMTPRecipientsRefused as refused:
            ((code, _),) = refused.recipients.values()
            assert code == 550
        else:
            raise AssertionError("mail for another address was taken")


class Serve:
    """One ``digest serve`` child, its log in a file."""

    def __init__(self, config: Path, port: int, log: Path, *extra: str) -> None:
        self.log = log
        self.port = port
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
        env.update(self.env)
        command = [sys.executable, "-m", "digest", "--config", str(config), "serve"]
        with log.open("w") as out:  # the child keeps its own copy of the file
            self.process = subprocess.Popen(
                [*command, "--port", str(port), "--inbound-port", "0", *extra],
                stdout=subprocess.DEVNULL,
                stderr=out,
                env=env,
            )
        Serve.running.append(self.process)

    env: ClassVar[dict[str, str]] = {}
    running: ClassVar[list[subprocess.Popen[bytes]]] = []

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    @classmethod
    def kill_all(cls) -> None:
        """What a failed test left running."""
        for process in cls.running:
            if process.poll() is None:
                process.kill()
            process.wait()
        cls.running.clear()


def test_serve_sends_on_time_stops_mid_send_and_resumes_without_sending_twice(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    now = dt.datetime.now(dt.UTC)
    feed_server.routes["/wire.xml"] = Route(
        fresh_feed(now), headers={"Content-Type": "application/rss+xml"}
    )
    url = feed_server.url("/wire.xml")
    send_at = (now + dt.timedelta(seconds=30)).astimezone(NEW_YORK).replace(microsecond=0)
    config = write_config(
        tmp_path,
        [{"name": "Wire", "url": url, "section": "stocks"}],
        send_at=send_at.strftime("%H:%M:%S"),
        min_stories=1,
    )
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["sending"] = {"connections": 1}
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")

    def slow(recipient: str, attempt: int) -> str:
        time.sleep(0.3)  # a slow relay, so that the stop comes mid-send
        return "250 OK"

    sink = Sink(data_reply=slow).start()
    Serve.env = {"DIGEST_SMTP_URL": sink.url, "DIGEST_OUTBOX": str(tmp_path / "outbox")}
    settings = load_settings(config, env={})
    store = Store(settings.db_url)
    for email in PEOPLE:
        store.add_subscriber(Subscriber(email), now)
    store.close()
    date = send_at.date()
    try:
        first = Serve(config, free_port(), tmp_path / "first.log", "--log-format", "json")
        wait_for(lambda: "next at" in first.text(), "the first serve to start")
        taken = first.text().split("receiving the list's mail on 127.0.0.1:")[1].split('"')[0]
        # The same inbound port as the first: it goes on without receiving mail.
        second = Serve(config, free_port(), tmp_path / "second.log", "--inbound-port", taken)
        wait_for(lambda: "not sending" in second.text(), "the second serve to say it does not send")
        assert f"not receiving mail: cannot listen on 127.0.0.1:{taken}" in second.text()
        with urllib.request.urlopen(f"http://127.0.0.1:{second.port}/healthz", timeout=10) as r:
            assert json.load(r)["role"] == "standby"
        assert second.stop() == 0
        assert "does not hold" not in second.text()

        with urllib.request.urlopen(f"http://127.0.0.1:{first.port}/healthz", timeout=10) as r:
            health = json.load(r)
        assert health["ok"] and health["scheduler"] == "running" and health["role"] == "sender"
        today, tomorrow = send_at, send_at + dt.timedelta(days=1)
        expected = {when.isoformat(timespec="seconds") for when in (today, tomorrow)}
        assert health["next_edition"] in expected

        wait_for(lambda: sum(sink.received.values()) >= 4, "the send to begin")
        assert first.stop() == 0
        lines = [json.loads(line) for line in first.text().splitlines()]
        assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
        messages = [line["message"] for line in lines]
        assert messages[-1] == "stopped"
        assert any(m.startswith("SIGTERM: stopping") for m in messages)
        assert any(m.startswith("fetched 1 feeds") for m in messages)
        (summary,) = [m for m in messages if m.startswith(f"the edition of {date}: ")]
        sent_first = sum(sink.received.values())
        assert 4 <= sent_first < len(PEOPLE)
        assert f"{sent_first} sent" in summary
        assert not any(line["logger"].startswith("apscheduler") for line in lines)
        assert not any(m.startswith("catching up") for m in messages)  # it went on time

        third = Serve(config, free_port(), tmp_path / "third.log")
        wait_for(lambda: "receiving the list's mail" in third.text(), "the inbound server")
        inbound_port = int(third.text().split("receiving the list's mail on 127.0.0.1:")[1][:5])
        check_inbound(inbound_port, settings.edition.sender)
        wait_for(lambda: sum(sink.received.values()) >= len(PEOPLE), "the rest to arrive")
        wait_for(lambda: "sent before" in third.text(), "the resumed send's summary")
        assert third.stop() == 0
        assert f"catching up the edition of {date}" in third.text()
        assert third.text().splitlines()[-1].endswith("INFO digest.serve: stopped")
    finally:
        Serve.kill_all()
        sink.close()
    assert sorted(sink.received) == PEOPLE
    assert set(sink.received.values()) == {1}  # nothing twice
    store = Store(settings.db_url)
    assert store.delivery_counts(date) == {Status.SENT: len(PEOPLE)}
    store.close()


def test_a_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    import socket

    from .conftest import digest_command

    config = write_config(
        tmp_path, [{"name": "W", "url": "http://127.0.0.1:9/rss", "section": "stocks"}]
    )
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = digest_command("serve", "--port", str(port), config=config)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: cannot serve the web pages on 127.0.0.1:{port}: Address already in use"
    )
