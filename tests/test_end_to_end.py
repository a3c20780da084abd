"""`digest run` against the sample feeds on a real HTTP server and a real SMTP server.

The commands run in this process (``digest_command``): the feeds, SMTP server and database
are as real as they were in a child process, without a Python start-up per command.
"""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest

from .conftest import SAMPLE_DATE, FeedServer, Inbox, Route, digest_command


@pytest.fixture
def sample_config(serve_samples, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    config = serve_samples()
    people = tmp_path / "people.csv"
    people.write_text(
        "email,name\nalice@example.com,Alice\nbob@example.org,Bob\ncarol@example.net,\n",
        encoding="utf-8",
    )
    result = digest_command("subscribers", "import", "--confirmed", str(people), config=config)
    assert result.returncode == 0, result.stderr
    return config


def test_run_sends_one_multipart_message_per_subscriber(
    sample_config: Path, inbox: Inbox, feed_server: FeedServer
) -> None:
    result = digest_command(
        "run",
        "--date",
        SAMPLE_DATE.isoformat(),
        config=sample_config,
        env={"DIGEST_SMTP_URL": inbox.url},
    )
    assert result.returncode == 0, result.stderr
    received = inbox.parsed()
    assert sorted(received) == ["alice@example.com", "bob@example.org", "carol@example.net"]
    for recipient, message in received.items():
        assert message["To"] == recipient
        assert message.get_content_type() == "multipart/alternative"
        for header in ("From", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe"):
            assert message[header], f"{header} missing"
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert "Top stories" in html and "TOP STORIES" in text
        # At least one story reached by several outlets, shown as such in both parts.
        assert "outlets" in html and "outlets" in text
        assert "/unsubscribe?t=" in message["List-Unsubscribe"]
        assert "<mailto:digest+unsubscribe@example.com?subject=" in message["List-Unsubscribe"]
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert recipient not in message["List-Unsubscribe"]


def test_second_run_sends_nothing_twice(sample_config: Path, inbox: Inbox) -> None:
    env = {"DIGEST_SMTP_URL": inbox.url}
    date = SAMPLE_DATE.isoformat()
    first = digest_command("run", "--date", date, config=sample_config, env=env)
    assert first.returncode == 0, first.stderr
    second = digest_command("run", "--date", date, config=sample_config, env=env)
    assert second.returncode == 0, second.stderr
    assert len(inbox.messages) == 3
    assert "3 had it already" in second.stdout


def test_without_smtp_url_the_embedded_server_writes_the_outbox(
    sample_config: Path, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    result = digest_command(
        "run",
        "--date",
        SAMPLE_DATE.isoformat(),
        config=sample_config,
        env={"DIGEST_OUTBOX": str(outbox)},
    )
    assert result.returncode == 0, result.stderr
    files = sorted(path.name for path in (outbox / SAMPLE_DATE.isoformat()).iterdir())
    assert files == ["alice@example.com.eml", "bob@example.org.eml", "carol@example.net.eml"]
    raw = (outbox / SAMPLE_DATE.isoformat() / "bob@example.org.eml").read_bytes()
    message = message_from_bytes(raw, policy=default_policy)
    assert message["To"] == "bob@example.org"
    assert {part.get_content_type() for part in message.iter_parts()} == {
        "text/plain",
        "text/html",
    }


def test_unreachable_smtp_server_is_one_line_and_nothing_is_lost(
    sample_config: Path, inbox: Inbox
) -> None:
    date = SAMPLE_DATE.isoformat()
    down = digest_command(
        "run", "--date", date, config=sample_config, env={"DIGEST_SMTP_URL": "smtp://127.0.0.1:9"}
    )
    assert down.returncode == 1
    assert "Traceback" not in down.stderr
    assert down.stderr.strip().count("\n") == 0
    assert "127.0.0.1:9" in down.stderr
    # The messages stayed pending: the next send delivers every one of them.
    again = digest_command(
        "send", "--date", date, config=sample_config, env={"DIGEST_SMTP_URL": inbox.url}
    )
    assert again.returncode == 0, again.stderr
    assert len(inbox.messages) == 3


def test_a_mailbox_refusal_is_reported_and_final(sample_config: Path, inbox: Inbox) -> None:
    inbox.refuse.add("bob@example.org")
    date = SAMPLE_DATE.isoformat()
    env = {"DIGEST_SMTP_URL": inbox.url}
    first = digest_command("run", "--date", date, config=sample_config, env=env)
    assert first.returncode == 3  # partial: the edition went out, one message did not
    assert "not sent bob@example.org: bounced: 550 5.1.1 mailbox unavailable" in first.stdout
    assert first.stderr == "Error: partial: 1 of 3 messages not sent (1 bounced)\n"
    assert sorted(r for _, rs, _ in inbox.messages for r in rs) == [
        "alice@example.com",
        "carol@example.net",
    ]
    # 550 says the mailbox does not exist: a later send does not knock again.
    inbox.refuse.clear()
    second = digest_command("send", "--date", date, config=sample_config, env=env)
    assert second.returncode == 0, second.stderr
    assert "to 0 subscribers (2 had it already)" in second.stdout
    sends = digest_command("sends", date, config=sample_config)
    assert sends.returncode == 0, sends.stderr
    assert "2 sent" in sends.stdout and "1 bounced" in sends.stdout


def test_a_broken_feed_is_named_and_the_edition_is_still_built(
    sample_config: Path, inbox: Inbox, feed_server: FeedServer
) -> None:
    feed_server.routes["/market-wire.xml"] = Route(b"gone wrong", status=500)
    result = digest_command(
        "run",
        "--date",
        SAMPLE_DATE.isoformat(),
        config=sample_config,
        env={"DIGEST_SMTP_URL": inbox.url},
    )
    assert result.returncode == 3, result.stderr  # partial
    assert result.stderr == "Error: partial: 1 of 9 feeds failed\n"
    assert "Fetched 8/9 feeds" in result.stdout
    assert f"failed Market Wire ({feed_server.url('/market-wire.xml')}): HTTP 500" in result.stdout
    assert len(inbox.messages) == 3
    feeds = digest_command(
        "feeds", "--format", "table", config=sample_config, env={"COLUMNS": "250"}
    )
    first_row = next(line for line in feeds.stdout.splitlines() if "│" in line)
    assert "Market Wire" in first_row and "failing (500)" in first_row


def test_a_watchlist_leads_that_subscribers_email_only(sample_config: Path, inbox: Inbox) -> None:
    added = digest_command(
        "subscribers",
        "add",
        "--confirmed",
        "dana@example.com",
        "--watch",
        "TSLA,XRP",
        config=sample_config,
    )
    assert added.returncode == 0, added.stderr
    result = digest_command(
        "run",
        "--date",
        SAMPLE_DATE.isoformat(),
        config=sample_config,
        env={"DIGEST_SMTP_URL": inbox.url},
    )
    assert result.returncode == 0, result.stderr
    received = inbox.parsed()
    dana = received["dana@example.com"].get_body(("plain",)).get_content()
    alice = received["alice@example.com"].get_body(("plain",)).get_content()
    assert dana.index("YOUR WATCHLIST") < dana.index("TOP STORIES")
    watch_block = dana[dana.index("YOUR WATCHLIST") : dana.index("TOP STORIES")]
    assert "Tesla" in watch_block and "XRP" in watch_block
    assert dana.count("Tesla shares slide") == 1  # not repeated further down
    assert "YOUR WATCHLIST" not in alice
