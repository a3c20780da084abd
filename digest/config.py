"""Settings: ``feeds.yaml`` for the edition and its feeds, ``DIGEST_*`` variables for the rest.

Secrets (the SMTP URL with its password, the signing key) come only from the environment.
Every wrong key or value raises ``ConfigError`` naming the file, the key and what was expected.

The variables: DIGEST_DB, DIGEST_OUTBOX, DIGEST_SMTP_URL, DIGEST_SECRET_KEY, DIGEST_DKIM_KEY,
DIGEST_DKIM_SELECTOR and DIGEST_STATUS_TOKEN. ``digest --help`` and the README describe each
one; a test reads this module for the names and checks both, so a new variable needs a line
in each.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from .errors import ConfigError
from .models import Cadence, Calendar, FeedSource, Method, Section, Timetable

DEFAULT_CONFIG = Path("feeds.yaml")
ENV_PREFIX = "DIGEST_"
#: An edition with fewer stories than this is not sent: an almost empty email to every
#: subscriber is worse than none, and it usually means the feeds were down.
DEFAULT_MIN_STORIES = 3


@dataclass(frozen=True, slots=True)
class EditionSettings:
    """How the edition looks and when it goes out."""

    title: str
    tagline: str
    send_at: dt.time
    timezone: ZoneInfo
    sender: str
    site_url: str
    max_stories: int
    #: Fewer stories than this and the edition is not sent (the feeds are likely down).
    min_stories: int
    #: The sender's postal address, printed in every message's footer (CAN-SPAM).
    postal_address: str
    #: How stories are grouped: "light" (TF-IDF, the default) or "embedding" (optional extra).
    clustering: Method = Method.EMBEDDING
    #: Which days it goes out: every day, or Monday to Friday.
    schedule: Cadence = Cadence.DAILY
    #: "nyse": no Stocks section on a day the New York Stock Exchange is closed.
    calendar: Calendar = Calendar.NONE
    #: A send missed by less than this (the service was down at send_at) is made up on return.
    catch_up: dt.timedelta = dt.timedelta(hours=6)

    @property
    def timetable(self) -> Timetable:
        return Timetable(self.send_at, self.timezone, self.schedule, self.calendar, self.catch_up)


@dataclass(frozen=True, slots=True)
class SendingSettings:
    """How mail goes out (``sending:`` in feeds.yaml)."""

    #: Parallel SMTP connections.
    connections: int = 4
    #: Messages per second at most, for a relay that demands it; None: as fast as it takes.
    rate: float | None = None
    #: Editions in a row whose message bounced (550, 551, 553) before the address is dropped.
    bounce_after: int = 2


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a run needs, loaded once."""

    config_path: Path
    edition: EditionSettings
    feeds: tuple[FeedSource, ...]
    allow_private_hosts: bool
    db_url: str
    outbox: Path
    #: None means: deliver through the embedded SMTP server into ``outbox``.
    smtp_url: str | None
    #: DIGEST_SECRET_KEY's keys: the first signs links, any of them is accepted. Empty: the
    #: store's own key.
    secret_keys: tuple[str, ...]
    #: DKIM signing, when DIGEST_DKIM_KEY (a PEM file) and DIGEST_DKIM_SELECTOR are set.
    dkim_key_path: Path | None = None
    dkim_selector: str | None = None
    sending: SendingSettings = SendingSettings()
    #: Requests in flight to one host at once: politeness toward a publisher of many feeds.
    per_host: int = 2
    #: How often ``digest serve`` fetches the feeds that are due (``fetch.fetch_every``).
    fetch_every: dt.timedelta = dt.timedelta(minutes=30)
    #: DIGEST_STATUS_TOKEN: who sends it may read /status. None: /status is off.
    status_token: str | None = None


_EDITION_KEYS = {
    "title",
    "tagline",
    "send_at",
    "timezone",
    "from",
    "site_url",
    "max_stories",
    "min_stories",
    "postal_address",
    "clustering",
    "schedule",
    "calendar",
    "catch_up",
}
_FEED_KEYS = {"name", "url", "section", "weight", "primary"}
_TOP_KEYS = {"edition", "feeds", "allow_private_hosts", "sending", "fetch"}
_FETCH_KEYS = {"per_host", "fetch_every"}
_SENDING_KEYS = {"connections", "rate", "bounce_after"}


def is_http_url(url: str) -> bool:
    """An absolute http(s) URL with a host: what every feed and the site must be."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


#: libyaml's safe loader where PyYAML was built with it: a 500-feed file loads in a tenth of
#: the pure-Python loader's time.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_settings(path: Path = DEFAULT_CONFIG, env: Mapping[str, str] | None = None) -> Settings:
    """Read ``path`` and the ``DIGEST_*`` variables of ``env`` (default: the process's)."""
    env = os.environ if env is None else env
    where = str(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file (pass --config PATH)") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"{where}:{line}: {problem}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with 'edition' and 'feeds'")
    _reject_unknown(where, "", raw, _TOP_KEYS)

    edition = _edition(where, _mapping(where, "edition", raw.get("edition")))
    feeds = _feeds(where, raw.get("feeds"))
    allow_private = raw.get("allow_private_hosts", False)
    if not isinstance(allow_private, bool):
        raise ConfigError(f"{where}: allow_private_hosts: expected true or false")
    sending = _sending(where, raw.get("sending", {}))
    fetching = _mapping(where, "fetch", raw.get("fetch", {}))
    _reject_unknown(where, "fetch.", fetching, _FETCH_KEYS)
    per_host = _whole_number(where, "fetch.per_host", fetching.get("per_host", 2), 1)
    fetch_every = _duration(where, "fetch.fetch_every", fetching.get("fetch_every", "30m"))
    if fetch_every < dt.timedelta(minutes=1):
        raise ConfigError(f"{where}: fetch.fetch_every: expected at least 1m")

    db_url = env.get(f"{ENV_PREFIX}DB") or f"sqlite:///{path.resolve().parent / 'digest.db'}"
    outbox = Path(env.get(f"{ENV_PREFIX}OUTBOX") or "outbox")
    smtp_url = env.get(f"{ENV_PREFIX}SMTP_URL") or None
    if smtp_url is not None:
        _check_smtp_url(smtp_url)
    return Settings(
        config_path=path,
        edition=edition,
        feeds=feeds,
        allow_private_hosts=allow_private,
        sending=sending,
        per_host=per_host,
        fetch_every=fetch_every,
        db_url=db_url,
        outbox=outbox,
        smtp_url=smtp_url,
        secret_keys=_secret_keys(env),
        status_token=env.get(f"{ENV_PREFIX}STATUS_TOKEN") or None,
        **_dkim(env),
    )


def _sending(where: str, raw: Any) -> SendingSettings:
    raw = _mapping(where, "sending", raw)
    _reject_unknown(where, "sending.", raw, _SENDING_KEYS)
    rate = raw.get("rate")
    if rate is not None and (
        isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0
    ):
        raise ConfigError(f"{where}: sending.rate: expected messages per second above 0")
    return SendingSettings(
        connections=_whole_number(where, "sending.connections", raw.get("connections", 4), 1),
        rate=None if rate is None else float(rate),
        bounce_after=_whole_number(where, "sending.bounce_after", raw.get("bounce_after", 2), 1),
    )


def _secret_keys(env: Mapping[str, str]) -> tuple[str, ...]:
    from .tokens import signing_keys

    raw = env.get(f"{ENV_PREFIX}SECRET_KEY") or ""
    keys = signing_keys(raw)
    if raw.strip() and len(keys) != len(raw.split(",")):
        raise ConfigError(
            f"{ENV_PREFIX}SECRET_KEY: an empty key between commas "
            "(expected NEW_KEY or NEW_KEY,OLD_KEY,...)"
        )
    return keys


def _dkim(env: Mapping[str, str]) -> dict[str, Any]:
    key = env.get(f"{ENV_PREFIX}DKIM_KEY") or None
    selector = env.get(f"{ENV_PREFIX}DKIM_SELECTOR") or None
    if (key is None) != (selector is None):
        raise ConfigError(
            f"{ENV_PREFIX}DKIM_KEY and {ENV_PREFIX}DKIM_SELECTOR: set both to sign with DKIM, "
            "or neither"
        )
    if key is None:
        return {}
    path = Path(key)
    if not path.is_file():
        raise ConfigError(f"{ENV_PREFIX}DKIM_KEY: {key}: no such file (expected a PEM private key)")
    return {"dkim_key_path": path, "dkim_selector": selector}


def _mapping(where: str, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {key}: expected a mapping")
    return value


def _reject_unknown(where: str, prefix: str, raw: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(map(str, raw)) - known)
    if unknown:
        expected = ", ".join(sorted(known))
        raise ConfigError(
            f"{where}: {prefix}{unknown[0]}: unknown key (expected one of {expected})"
        )


def _string(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {key}: expected a non-empty string")
    return value.strip()


def _edition(where: str, raw: dict[str, Any]) -> EditionSettings:
    _reject_unknown(where, "edition.", raw, _EDITION_KEYS)
    optional = {"max_stories", "min_stories", "clustering", "schedule", "calendar", "catch_up"}
    for key in sorted(_EDITION_KEYS - optional):
        if key not in raw:
            raise ConfigError(f"{where}: edition.{key}: missing")

    send_at_raw = str(raw["send_at"])
    try:
        send_at = dt.time.fromisoformat(send_at_raw)
    except ValueError:
        raise ConfigError(
            f"{where}: edition.send_at: expected a time as HH:MM, got {send_at_raw!r}"
        ) from None

    tz_name = _string(where, "edition.timezone", raw["timezone"])
    try:
        timezone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{where}: edition.timezone: unknown time zone {tz_name!r} "
            "(expected an IANA name such as America/New_York)"
        ) from None

    sender = _string(where, "edition.from", raw["from"])
    if "@" not in parseaddr(sender)[1]:
        raise ConfigError(
            f"{where}: edition.from: expected an address such as 'Name <digest@example.com>'"
        )

    site_url = _string(where, "edition.site_url", raw["site_url"]).rstrip("/")
    if not is_http_url(site_url):
        raise ConfigError(f"{where}: edition.site_url: expected an http(s) URL, got {site_url!r}")

    max_stories = _whole_number(where, "edition.max_stories", raw.get("max_stories", 30), 1)
    min_stories = _whole_number(
        where, "edition.min_stories", raw.get("min_stories", DEFAULT_MIN_STORIES), 0
    )
    if min_stories > max_stories:
        raise ConfigError(
            f"{where}: edition.min_stories: {min_stories} is more than max_stories ({max_stories})"
        )

    clustering = str(raw.get("clustering", Method.EMBEDDING.value))
    if clustering not in {method.value for method in Method}:
        choices = " or ".join(method.value for method in Method)
        raise ConfigError(f"{where}: edition.clustering: expected {choices}, got {clustering!r}")

    return EditionSettings(
        title=_string(where, "edition.title", raw["title"]),
        tagline=_string(where, "edition.tagline", raw["tagline"]),
        send_at=send_at,
        timezone=timezone,
        sender=sender,
        site_url=site_url,
        max_stories=max_stories,
        min_stories=min_stories,
        postal_address=_string(where, "edition.postal_address", raw["postal_address"]),
        clustering=Method(clustering),
        schedule=_choice(where, "edition.schedule", raw.get("schedule", "daily"), Cadence),
        calendar=_choice(where, "edition.calendar", raw.get("calendar", "none"), Calendar),
        catch_up=_duration(where, "edition.catch_up", raw.get("catch_up", "6h")),
    )


_CADENCE = TypeVar("_CADENCE", Cadence, Calendar)


def _choice(where: str, key: str, value: Any, kind: type[_CADENCE]) -> _CADENCE:
    try:
        return kind(str(value).lower())
    except ValueError:
        choices = " or ".join(choice.value for choice in kind)
        raise ConfigError(f"{where}: {key}: expected {choices}, got {value!r}") from None


_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def _duration(where: str, key: str, value: Any) -> dt.timedelta:
    """A duration written as 6h, 30m, 90s or 1h30m."""
    found = _DURATION.fullmatch(str(value).strip().replace(" ", ""))
    if found is None or not any(found.groups()):
        raise ConfigError(f"{where}: {key}: expected a duration such as 6h, 30m or 1h30m")
    hours, minutes, seconds = (int(part or 0) for part in found.groups())
    return dt.timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _whole_number(where: str, key: str, value: Any, least: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ConfigError(f"{where}: {key}: expected a whole number of at least {least}")
    return value


def _feeds(where: str, raw: Any) -> tuple[FeedSource, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: feeds: expected a non-empty list of feeds")
    sections = ", ".join(section.value for section in Section)
    feeds: list[FeedSource] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw):
        key = f"feeds[{index}]"
        entry = _mapping(where, key, entry)
        _reject_unknown(where, f"{key}.", entry, _FEED_KEYS)
        url = _string(where, f"{key}.url", entry.get("url"))
        if not is_http_url(url):
            raise ConfigError(f"{where}: {key}.url: expected an http(s) URL, got {url!r}")
        if url in seen:
            raise ConfigError(f"{where}: {key}.url: {url} is listed twice")
        seen.add(url)
        try:
            section = Section(str(entry.get("section", "")).lower())
        except ValueError:
            raise ConfigError(
                f"{where}: {key}.section: expected one of {sections}, got {entry.get('section')!r}"
            ) from None
        weight = entry.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
            raise ConfigError(f"{where}: {key}.weight: expected a number above 0")
        name = _string(where, f"{key}.name", entry.get("name", urlsplit(url).netloc))
        primary = entry.get("primary", False)
        if not isinstance(primary, bool):
            raise ConfigError(f"{where}: {key}.primary: expected true or false")
        feeds.append(
            FeedSource(name=name, url=url, section=section, weight=float(weight), primary=primary)
        )
    return tuple(feeds)


def _check_smtp_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError(
            f"{ENV_PREFIX}SMTP_URL: expected smtp://user:pass@host:587?starttls=1 "
            "or smtps://user:pass@host:465"
        )
    try:
        parts.port  # noqa: B018  (the property raises on a bad port)
    except ValueError:
        raise ConfigError(f"{ENV_PREFIX}SMTP_URL: the port is not a number") from None
    # The client's own rules (a password only over TLS): told at start, not after the fetch.
    from .send import Mailer

    try:
        Mailer(url)
    except ConfigError as exc:
        raise ConfigError(f"{ENV_PREFIX}SMTP_URL: {exc}") from None
