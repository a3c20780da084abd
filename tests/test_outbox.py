"""The embedded SMTP server: one .eml per recipient, on a port it binds itself."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from urllib.parse import urlsplit

from digest.message import compose, to_bytes
from digest.outbox import outbox_server
from digest.send import Mailer

from .test_send import NOW, SENDER, make_email


def test_embedded_server_writes_one_eml_per_recipient(tmp_path: Path) -> None:
    folder = tmp_path / "2026-11-24"
    with outbox_server(folder) as url:
        mailer = Mailer(url)
        mailer.send(
            to_bytes(compose(make_email("a@example.com"), SENDER, NOW)), SENDER, "a@example.com"
        )
        mailer.close()
    (eml,) = folder.iterdir()
    assert eml.name == "a@example.com.eml"
    parsed = message_from_bytes(eml.read_bytes(), policy=default_policy)
    assert parsed["To"] == "a@example.com"
    assert not list(folder.glob(".*partial"))


def test_embedded_servers_at_once_each_report_the_port_they_listen_on(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    with outbox_server(first) as first_url, outbox_server(second) as second_url:
        ports = {urlsplit(first_url).port, urlsplit(second_url).port}
        assert len(ports) == 2 and 0 not in ports and None not in ports
        for url, recipient in ((first_url, "a@example.com"), (second_url, "b@example.com")):
            mailer = Mailer(url)
            mailer.send(to_bytes(compose(make_email(recipient), SENDER, NOW)), SENDER, recipient)
            mailer.close()
    assert [path.name for path in first.iterdir()] == ["a@example.com.eml"]
    assert [path.name for path in second.iterdir()] == ["b@example.com.eml"]
