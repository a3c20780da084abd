"""``digest subscribers``: unsubscribed stays unsubscribed, one subscriber per address in any
letter case, and ``add`` changes an address already there only when asked."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest

from digest.lifecycle import SubscriberReport
from digest.store import Store

from .conftest import Inbox, digest_command, invoke_cli, write_config
from .factories import BASE

FEED = {"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks"}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, [FEED])


def unsubscribe(config: Path, email: str) -> None:
    """What the unsubscribe link does, on the database beside ``config``."""
    store = Store(f"sqlite:///{config.parent / 'digest.db'}")
    try:
        assert store.unsubscribe(email, BASE)
    finally:
        store.close()


def ok(config: Path, *args: str) -> str:
    """The output of ``digest subscribers ARGS``, which must succeed."""
    code, out = invoke_cli(config, "subscribers", *args)
    assert code == 0, out
    return out


def export(config: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(ok(config, "export"))))


def statuses(config: Path) -> dict[str, str]:
    return {row["email"]: row["status"] for row in export(config)}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- unsubscribed stays unsubscribed ---------------------------------------------------------


def test_reimporting_an_export_does_not_resubscribe_anybody(config: Path, tmp_path: Path) -> None:
    ok(config, "add", "--confirmed", "ann@example.com")
    ok(config, "add", "--confirmed", "bob@example.com")
    unsubscribe(config, "bob@example.com")
    exported = write(tmp_path / "export.csv", ok(config, "export"))
    plain = write(tmp_path / "plain.csv", "email\nBob@Example.com\n")
    for file in (exported, plain):
        for update in ((), ("--update",)):
            out = ok(config, "import", "--confirmed", str(file), *update)
            assert "Imported 0 new subscribers." in out
            assert "skipped bob@example.com: unsubscribed on 2026-11-24" in out
    assert statuses(config) == {"ann@example.com": "active", "bob@example.com": "unsubscribed"}


def test_add_does_not_resubscribe_an_address_that_unsubscribed(config: Path) -> None:
    ok(config, "add", "--confirmed", "bob@example.com", "--name", "Bob")
    unsubscribe(config, "bob@example.com")
    assert ok(config, "add", "--confirmed", "BOB@example.com").strip() == (
        "Skipped bob@example.com: unsubscribed on 2026-11-24; only they can subscribe again."
    )
    assert ok(
        config, "add", "--confirmed", "bob@example.com", "--update", "--name", "Rob"
    ).strip() == (
        "Skipped bob@example.com: unsubscribed on 2026-11-24; updated its name; "
        "only they can subscribe again."
    )
    assert export(config) == [
        {"email": "bob@example.com", "name": "Rob", "status": "unsubscribed", "watch": ""}
    ]


def test_an_export_carried_into_a_new_database_keeps_its_unsubscribes(
    config: Path, tmp_path: Path
) -> None:
    ok(config, "add", "--confirmed", "ann@example.com")
    ok(config, "add", "--confirmed", "bob@example.com")
    unsubscribe(config, "bob@example.com")
    exported = write(tmp_path / "export.csv", ok(config, "export"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other = write_config(elsewhere, [FEED])
    out = ok(other, "import", "--confirmed", str(exported))
    assert "Imported 2 new subscribers." in out and "1 of them unsubscribed" in out
    assert statuses(other) == {"ann@example.com": "active", "bob@example.com": "unsubscribed"}


def test_an_unknown_status_names_its_line(config: Path, tmp_path: Path) -> None:
    people = write(tmp_path / "people.csv", "email,status\nann@example.com,paused\n")
    code, out = invoke_cli(config, "subscribers", "import", str(people))
    assert code == 1
    assert (
        "people.csv:2: status 'paused': expected one of "
        "'pending', 'active', 'unsubscribed', 'bounced', 'complained'"
    ) in out


# -- one subscriber per address ---------------------------------------------------------------


def test_letter_case_does_not_make_another_subscriber(config: Path, tmp_path: Path) -> None:
    people = write(
        tmp_path / "people.csv", "email\nDup@Example.com\ndup@example.com\nDUP@EXAMPLE.COM\n"
    )
    out = ok(config, "import", "--confirmed", str(people))
    assert "Imported 1 new subscriber." in out and "2 already subscribed, unchanged" in out
    out = ok(config, "add", "--confirmed", "dUp@example.com")
    assert out.strip() == "Dup@example.com is already subscribed; nothing changed."
    assert statuses(config) == {"Dup@example.com": "active"}
    assert ok(config, "remove", "DUP@example.COM").strip() == "Removed Dup@example.com."
    assert export(config) == []


def test_remove_of_an_unknown_address_says_so(config: Path) -> None:
    code, out = invoke_cli(config, "subscribers", "remove", "who@example.com")
    assert code == 1 and "who@example.com: not a subscriber" in out


# -- add changes an address already there only with --update -----------------------------------


def test_add_of_an_existing_address_changes_nothing_without_update(config: Path) -> None:
    ok(config, "add", "--confirmed", "ann@example.com", "--name", "Ann", "--watch", "NVDA")
    out = ok(config, "add", "--confirmed", "Ann@example.com", "--name", "Annie", "--watch", "BTC")
    assert out.strip() == (
        "ann@example.com is already subscribed; nothing changed "
        "(pass --update to change its name and watchlist)."
    )
    assert export(config) == [
        {"email": "ann@example.com", "name": "Ann", "status": "active", "watch": "NVDA"}
    ]


def test_add_with_update_changes_name_and_watchlist_and_says_which(config: Path) -> None:
    ok(config, "add", "--confirmed", "ann@example.com", "--name", "Ann", "--watch", "NVDA")
    out = ok(config, "add", "--confirmed", "ann@example.com", "--update", "--watch", "BTC")
    assert out.strip() == "ann@example.com is already subscribed; updated its watchlist."
    out = ok(config, "add", "--confirmed", "ann@example.com", "--update", "--name", "Annie")
    assert out.strip() == "ann@example.com is already subscribed; updated its name."
    out = ok(config, "add", "--confirmed", "ann@example.com", "--update", "--name", "Annie")
    assert out.strip() == "ann@example.com is already subscribed; nothing changed."
    assert export(config) == [
        {"email": "ann@example.com", "name": "Annie", "status": "active", "watch": "BTC"}
    ]


def test_import_with_update_changes_details_and_reports_counts(
    config: Path, tmp_path: Path
) -> None:
    ok(config, "add", "--confirmed", "ann@example.com", "--name", "Ann")
    people = write(
        tmp_path / "people.csv", "email,name\nann@example.com,Annie\nbob@example.com,Bob\n"
    )
    out = ok(config, "import", "--confirmed", str(people))
    assert "Imported 1 new subscriber." in out
    assert "1 already subscribed, unchanged (pass --update to change them)" in out
    assert export(config)[0]["name"] == "Ann"
    out = ok(config, "import", "--confirmed", str(people), "--update")
    assert "Imported 0 new subscribers." in out and "1 already subscribed, updated" in out
    assert [row["name"] for row in export(config)] == ["Annie", "Bob"]


# -- new addresses are pending unless --confirmed ----------------------------------------------


def test_add_without_confirmed_mails_a_confirmation_and_the_address_waits_for_it(
    config: Path, inbox: Inbox
) -> None:
    env = {"DIGEST_SMTP_URL": inbox.url}
    added = digest_command("subscribers", "add", "ann@example.com", config=config, env=env)
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines() == [
        "Added ann@example.com, pending: it gets editions once its owner follows the "
        "confirmation link.",
        f"Mailed 1 confirmation link via 127.0.0.1:{inbox.port}.",
    ]
    ((_, recipients, raw),) = inbox.messages
    assert recipients == ["ann@example.com"]
    assert b"Subject: Confirm your subscription to Market Digest" in raw
    assert b"http://127.0.0.1:8025/confirm?t=" in raw
    assert statuses(config) == {"ann@example.com": "pending"}
    # Asked again: the link again. Vouched for: active, and nothing more is mailed.
    again = digest_command("subscribers", "add", "ann@example.com", config=config, env=env)
    assert again.stdout.splitlines()[0] == "ann@example.com is still waiting for its confirmation."
    assert len(inbox.messages) == 2
    confirmed = digest_command(
        "subscribers", "add", "ann@example.com", "--confirmed", config=config, env=env
    )
    assert confirmed.stdout.strip() == (
        "Subscribed ann@example.com, which was waiting for its confirmation."
    )
    assert len(inbox.messages) == 2
    assert statuses(config) == {"ann@example.com": "active"}


def test_add_with_confirmed_subscribes_at_once_and_mails_nothing(
    config: Path, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    added = digest_command(
        "subscribers",
        "add",
        "ann@example.com",
        "--confirmed",
        config=config,
        env={"DIGEST_OUTBOX": str(outbox)},
    )
    assert added.stdout.strip() == "Subscribed ann@example.com."
    assert not outbox.exists()
    assert statuses(config) == {"ann@example.com": "active"}
    (change,) = _report(config, "ann@example.com").history
    assert change.why == "added by the operator, who vouched for consent"


def test_import_without_confirmed_mails_each_new_address_into_the_outbox(
    config: Path, tmp_path: Path
) -> None:
    people = write(
        tmp_path / "people.csv",
        "email,status\nann@example.com,\nbob@example.com,active\n"
        "carol@example.com,unsubscribed\ndave@example.com,bounced\neve@example.com,pending\n",
    )
    outbox = tmp_path / "outbox"
    env = {"DIGEST_OUTBOX": str(outbox)}
    imported = digest_command("subscribers", "import", str(people), config=config, env=env)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.splitlines() == [
        "Imported 5 new subscribers.",
        "  3 of them pending, until they follow the confirmation link",
        "  1 of them unsubscribed, as the file says",
        "  1 of them bounced, as the file says",
        f"Mailed 3 confirmation links via {outbox / 'confirmation'}.",
    ]
    mailed = sorted(path.name for path in (outbox / "confirmation").glob("*.eml"))
    assert mailed == ["ann@example.com.eml", "bob@example.com.eml", "eve@example.com.eml"]
    assert statuses(config) == {
        "ann@example.com": "pending",
        "bob@example.com": "pending",
        "carol@example.com": "unsubscribed",
        "dave@example.com": "bounced",
        "eve@example.com": "pending",
    }
    # The same file vouched for: the pending ones become active, but a file's "pending"
    # stays so (its owner never confirmed), and the suppressed ones stay suppressed.
    confirmed = digest_command(
        "subscribers", "import", "--confirmed", str(people), config=config, env=env
    )
    assert confirmed.stdout.splitlines() == [
        "Imported 0 new subscribers.",
        "  2 waiting for their confirmation, subscribed now",
        "  1 still waiting for their confirmation",
        f"  skipped carol@example.com: unsubscribed on {dt.date.today()}",
        f"  skipped dave@example.com: bounced on {dt.date.today()}",
        f"Mailed 1 confirmation link via {outbox / 'confirmation'}.",
    ]
    assert statuses(config)["ann@example.com"] == "active"
    assert statuses(config)["eve@example.com"] == "pending"


def test_confirmations_the_server_refuses_are_named_and_the_run_is_partial(
    config: Path, tmp_path: Path, inbox: Inbox
) -> None:
    inbox.refuse.add("bob@example.com")
    people = write(tmp_path / "people.csv", "email\nann@example.com\nbob@example.com\n")
    imported = digest_command(
        "subscribers", "import", str(people), config=config, env={"DIGEST_SMTP_URL": inbox.url}
    )
    assert imported.returncode == 3
    assert "Mailed 1 confirmation link via" in imported.stdout
    assert "  not sent: bob@example.com: 550 5.1.1 mailbox unavailable" in (imported.stdout)
    assert imported.stderr.strip() == (
        "Error: partial: 1 of 2 confirmation links not sent; the same command sends them again"
    )
    assert statuses(config) == {"ann@example.com": "pending", "bob@example.com": "pending"}


# -- show -------------------------------------------------------------------------------------


def _report(config: Path, email: str) -> SubscriberReport:
    store = Store(f"sqlite:///{config.parent / 'digest.db'}")
    try:
        report = store.report(email)
    finally:
        store.close()
    assert report is not None
    return report


def test_show_prints_the_state_its_history_and_the_deliveries(config: Path) -> None:
    from digest.rank import build_digest

    ok(config, "add", "--confirmed", "ann@example.com", "--name", "Ann", "--watch", "NVDA,BTC")
    ok(config, "add", "--confirmed", "bob@example.com")
    store = Store(f"sqlite:///{config.parent / 'digest.db'}")
    try:
        for day, error in ((23, None), (24, "450 mailbox busy")):
            date = dt.date(2026, 11, day)
            window = (BASE - dt.timedelta(days=1), BASE)
            digest = build_digest(
                [], date=date, title="T", tagline="t", window=window, max_stories=5
            )
            store.save_edition(digest, BASE)
            store.plan_deliveries(date, lambda email: f"<{email}>")
            store.mark_delivery(date, "ann@example.com", BASE, error=error)
        store.unsubscribe(
            "ann@example.com", BASE + dt.timedelta(days=1), "unsubscribed on the web page"
        )
        created = store.report("ann@example.com").history[0].at  # type: ignore[union-attr]
    finally:
        store.close()
    code, out = invoke_cli(config, "subscribers", "show", "ANN@example.com")
    assert code == 0, out
    lines = [" ".join(line.replace("│", " ").split()) for line in out.splitlines()]
    lines = [line for line in lines if any(char.isalnum() for char in line)]
    assert lines == [
        "ann@example.com (Ann)",
        "State: unsubscribed since 2026-11-25 06:00 UTC",
        "Watchlist: NVDA BTC",
        "History:",
        "┃ When ┃ State ┃ Why ┃",
        f"{created:%Y-%m-%d %H:%M} UTC active added by the operator, who vouched for consent",
        "2026-11-25 06:00 UTC unsubscribed unsubscribed on the web page",
        "Deliveries:",
        "┃ Edition ┃ Status ┃ Attempts ┃ Sent ┃ Error ┃",
        "2026-11-24 failed 1 450 mailbox busy",
        "2026-11-23 sent 1 2026-11-24 06:00 UTC",
    ]
    code, out = invoke_cli(config, "subscribers", "show", "bob@example.com")
    assert code == 0 and "State: active since" in out
    assert [line.split() for line in out.splitlines() if "queued" in line] == [
        ["│", "2026-11-24", "│", "queued", "│", "0", "│", "│", "│"],
        ["│", "2026-11-23", "│", "queued", "│", "0", "│", "│", "│"],
    ]
    ok(config, "add", "carol@example.com", "--confirmed")
    code, out = invoke_cli(config, "subscribers", "show", "carol@example.com")
    assert code == 0 and out.splitlines()[-1] == "Deliveries: none yet."
    code, out = invoke_cli(config, "subscribers", "show", "who@example.com")
    assert code == 1 and "who@example.com: not a subscriber" in out
