from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from digest.config import load_settings
from digest.errors import ConfigError
from digest.models import Cadence, Calendar, Method

from .conftest import REPO, write_config

FEED = {"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks", "weight": 1.2}


def test_bundled_configs_load() -> None:
    for path in (REPO / "feeds.yaml", REPO / "samples" / "feeds.yaml"):
        settings = load_settings(path, env={})
        assert settings.feeds
        assert settings.edition.title == "Market Digest"


def test_production_config_lists_real_feeds_in_both_sections() -> None:
    settings = load_settings(REPO / "feeds.yaml", env={})
    assert len(settings.feeds) >= 25
    assert {feed.section.value for feed in settings.feeds} == {"stocks", "crypto"}
    assert all(feed.url.startswith("https://") for feed in settings.feeds)


def test_environment_supplies_database_outbox_and_secrets(tmp_path: Path) -> None:
    path = write_config(tmp_path, [FEED])
    env = {
        "DIGEST_DB": "sqlite:///elsewhere.db",
        "DIGEST_OUTBOX": "/tmp/mail",
        "DIGEST_SMTP_URL": "smtp://u:p@mail.example.com:587?starttls=1",
        "DIGEST_SECRET_KEY": "k",
    }
    settings = load_settings(path, env=env)
    assert settings.db_url == "sqlite:///elsewhere.db"
    assert str(settings.outbox) == "/tmp/mail"
    assert settings.smtp_url == env["DIGEST_SMTP_URL"]
    assert settings.secret_keys == ("k",)


def test_the_secret_key_may_list_several_keys_the_first_one_signing(tmp_path: Path) -> None:
    path = write_config(tmp_path, [FEED])
    settings = load_settings(path, env={"DIGEST_SECRET_KEY": " new-key , old-key"})
    assert settings.secret_keys == ("new-key", "old-key")
    assert load_settings(path, env={}).secret_keys == ()
    with pytest.raises(ConfigError, match="DIGEST_SECRET_KEY: an empty key between commas"):
        load_settings(path, env={"DIGEST_SECRET_KEY": "new-key,,old-key"})


def test_database_defaults_to_a_file_beside_the_config(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, [FEED]), env={})
    assert settings.db_url == f"sqlite:///{tmp_path.resolve() / 'digest.db'}"
    assert settings.smtp_url is None
    assert settings.edition.clustering is Method.EMBEDDING


@pytest.mark.parametrize(
    ("edition", "feeds", "message"),
    [
        ({"send_at": "7am"}, [FEED], "edition.send_at: expected a time as HH:MM"),
        ({"timezone": "Mars/Olympus"}, [FEED], "edition.timezone: unknown time zone"),
        ({"from": "nobody"}, [FEED], "edition.from: expected an address"),
        ({"site_url": "ftp://x"}, [FEED], "edition.site_url: expected an http(s) URL"),
        ({"max_stories": 0}, [FEED], "edition.max_stories: expected a whole number"),
        ({"colour": "red"}, [FEED], "edition.colour: unknown key"),
        ({"clustering": "magic"}, [FEED], "edition.clustering: expected light or embedding"),
        ({"schedule": "hourly"}, [FEED], "edition.schedule: expected daily or weekdays"),
        ({"calendar": "lse"}, [FEED], "edition.calendar: expected none or nyse"),
        ({"catch_up": "soon"}, [FEED], "edition.catch_up: expected a duration such as 6h"),
        (
            {},
            [{**FEED, "section": "bonds"}],
            "feeds[0].section: expected one of stocks, crypto, markets",
        ),
        ({}, [{**FEED, "url": "file:///etc/passwd"}], "feeds[0].url: expected an http(s) URL"),
        ({}, [{**FEED, "weight": -1}], "feeds[0].weight: expected a number above 0"),
        ({}, [{**FEED, "primary": "yes"}], "feeds[0].primary: expected true or false"),
        ({}, [FEED, FEED], "feeds[1].url: https://wire.example.com/rss is listed twice"),
        ({}, [], "feeds: expected a non-empty list"),
    ],
)
def test_wrong_values_name_the_file_and_key(
    tmp_path: Path, edition: dict[str, object], feeds: list[dict[str, object]], message: str
) -> None:
    path = write_config(tmp_path, feeds, **edition)
    with pytest.raises(ConfigError) as raised:
        load_settings(path, env={})
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("edition:\n  title: [unclosed\nfeeds: []\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"feeds\.yaml: line \d+"):
        load_settings(path, env={})


def test_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "absent.yaml", env={})


def test_bad_smtp_url_is_a_config_error(tmp_path: Path) -> None:
    path = write_config(tmp_path, [FEED])
    with pytest.raises(ConfigError, match="DIGEST_SMTP_URL"):
        load_settings(path, env={"DIGEST_SMTP_URL": "http://mail.example.com"})


def test_schedule_calendar_catch_up_and_fetch_every(tmp_path: Path) -> None:
    path = write_config(tmp_path, [FEED], schedule="weekdays", calendar="nyse", catch_up="1h30m")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["fetch"] = {"fetch_every": "10m"}
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    settings = load_settings(path, env={})
    timetable = settings.edition.timetable
    assert timetable.schedule is Cadence.WEEKDAYS and timetable.calendar is Calendar.NYSE
    assert timetable.catch_up == dt.timedelta(hours=1, minutes=30)
    assert settings.fetch_every == dt.timedelta(minutes=10)
    defaults = load_settings(write_config(tmp_path, [FEED]), env={})
    assert defaults.edition.timetable.catch_up == dt.timedelta(hours=6)
    assert defaults.fetch_every == dt.timedelta(minutes=30)
    raw["fetch"] = {"fetch_every": "20s"}
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"fetch\.fetch_every: expected at least 1m"):
        load_settings(path, env={})
