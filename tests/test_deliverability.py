"""The demo edition's messages as mail providers and spam filters see them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from digest.config import load_settings
from digest.render import HTML_LIMIT

from .conftest import REPO, DemoEdition

#: The clients the issue of record names: Gmail (web, iOS, Android), Outlook (Windows, web),
#: Apple Mail (macOS, iOS); the list itself lives in scripts/check-email-clients.mjs.
EMAIL_CHECK = REPO / "scripts" / "check-email-clients.mjs"
_RULE_LINE = re.compile(r"^\s*(-?\d+\.\d+)\s+([A-Z0-9_]+)\s", re.MULTILINE)


def read(path: Path) -> EmailMessage:
    message = message_from_bytes(path.read_bytes(), policy=email_policy.strict)
    assert isinstance(message, EmailMessage)
    return message


def test_spamassassin_scores_every_message_zero(demo_edition: DemoEdition) -> None:
    spamassassin = shutil.which("spamassassin")
    assert spamassassin, "spamassassin is not installed: run 'make system-deps' (as root)"
    for path in demo_edition.messages:
        result = subprocess.run(
            [spamassassin, "-t", "-L", "-x"],
            input=path.read_bytes(),
            capture_output=True,
            timeout=120,
            check=False,
        )
        report = result.stdout.decode(errors="replace")
        score = re.search(r"Content analysis details:\s+\((-?[\d.]+) points", report)
        assert score is not None, report[-2000:]
        assert float(score[1]) == 0.0, report[report.find("Content analysis") :]
        details = report[report.find("Content analysis details") :]
        fired = {name: float(points) for points, name in _RULE_LINE.findall(details)}
        assert fired, details
        assert all(points == 0.0 for points in fired.values()), fired


def test_no_html_feature_breaks_in_the_named_mail_clients(
    demo_edition: DemoEdition, tmp_path: Path
) -> None:
    node = shutil.which("node")
    assert node, "node is not installed"
    assert (REPO / "node_modules" / "doiuse-email").is_dir(), "run 'make setup' (npm ci)"
    files = []
    for path in demo_edition.messages:
        html = read(path).get_body(("html",))
        assert html is not None
        target = tmp_path / f"{path.stem}.html"
        target.write_text(html.get_content(), encoding="utf-8")
        files.append(str(target))
    result = subprocess.run(
        [node, str(EMAIL_CHECK), *files],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(reports) == len(files)
    for report in reports:
        assert report["success"] and not report.get("errors"), report.get("errors")


def test_messages_parse_strictly_and_every_link_is_https_or_the_site(
    demo_edition: DemoEdition,
) -> None:
    site = load_settings(demo_edition.config, env={}).edition.site_url
    allowed = ("https://", site + "/", site + "?")
    for path in demo_edition.messages:
        message = read(path)
        for header in (
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "List-Id",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
        ):
            assert message[header], f"{path.name}: no {header}"
        assert not message.defects
        html_part = message.get_body(("html",))
        text_part = message.get_body(("plain",))
        assert html_part is not None and text_part is not None
        html = html_part.get_content()
        assert len(html.encode()) <= HTML_LIMIT
        hrefs = [a.get("href") for a in BeautifulSoup(html, "html.parser").find_all("a")]
        text_links = re.findall(r"\b[a-z]+://\S+", text_part.get_content())
        for link in [*hrefs, *text_links]:
            assert str(link).startswith(allowed), f"{path.name}: {link}"
        for target in re.findall(r"<([^>]+)>", message["List-Unsubscribe"]):
            assert target.startswith((site + "/", "https://", "mailto:")), target


def test_each_subscriber_gets_a_stable_message_id(demo_edition: DemoEdition) -> None:
    ids = [read(path)["Message-ID"] for path in demo_edition.messages]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"<digest\.\d{8}\.[0-9a-f]{20}@example\.com>", i) for i in ids)


@pytest.mark.parametrize(
    "subject",
    [
        "Breaking\r\nBcc: victim@example.com",
        "Breaking =?utf-8?q?=0D=0ABcc:_victim@example.com?=",
        "Breaking =?utf-8?b?DQpCY2M6IHZpY3RpbUBleGFtcGxlLmNvbQ==?=",
    ],
)
def test_no_newline_reaches_a_header_encoded_or_not(subject: str) -> None:
    import datetime as dt

    from digest.message import compose, to_bytes
    from digest.models import Email

    email = Email("a@example.com", subject, "<p>x</p>", "x", "<id@example.com>")
    raw = to_bytes(
        compose(email, "Digest <d@example.com>", dt.datetime(2026, 11, 24, tzinfo=dt.UTC))
    )
    parsed = message_from_bytes(raw, policy=email_policy.default)
    assert parsed["Bcc"] is None
    assert "\n" not in str(parsed["Subject"]) and "\r" not in str(parsed["Subject"])
    assert "victim@example.com" in str(parsed["Subject"])


def test_dkim_signature_verifies_when_a_key_is_configured(
    tmp_path: Path,
    serve_samples,
    inbox,  # type: ignore[no-untyped-def]
) -> None:
    import base64
    import datetime as dt

    import dkim

    from digest.models import Subscriber
    from digest.pipeline import build_edition, fetch_feeds, send_edition
    from digest.store import Store

    key = tmp_path / "dkim.pem"
    subprocess.run(
        [
            "openssl",
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            str(key),
        ],
        check=True,
        capture_output=True,
    )
    public_der = subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public_der)
    env = {"DIGEST_SMTP_URL": inbox.url, "DIGEST_DKIM_KEY": str(key), "DIGEST_DKIM_SELECTOR": "md1"}
    settings = load_settings(serve_samples(), env=env)
    store = Store(settings.db_url)
    now = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)
    store.add_subscriber(Subscriber("ann@example.com"), now)
    fetch_feeds(settings, store, now)
    build_edition(settings, store, now.date())
    send_edition(settings, store, now.date(), now)
    store.close()
    ((_, _, raw),) = inbox.messages
    assert raw.startswith(b"DKIM-Signature:")
    lookups = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        lookups.append(name)
        return record

    assert dkim.verify(raw, dnsfunc=dns)
    assert lookups == [b"md1._domainkey.example.com."]
    tampered = re.sub(rb"(?m)^Subject:", b"Subject: Re:", raw, count=1)
    assert tampered != raw
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_dkim_needs_both_variables(tmp_path: Path) -> None:
    from digest.errors import ConfigError

    from .conftest import write_config

    path = write_config(
        tmp_path, [{"name": "W", "url": "https://w.example.com/rss", "section": "stocks"}]
    )
    with pytest.raises(ConfigError, match="set both"):
        load_settings(path, env={"DIGEST_DKIM_SELECTOR": "s1"})
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(path, env={"DIGEST_DKIM_SELECTOR": "s1", "DIGEST_DKIM_KEY": "/nope.pem"})
