"""`digest demo` on a copy of the bundled samples, on free ports.

The demo runs as `make demo` runs it, in a process of its own: its feed server, SMTP server and
threads start and stop with that process.
"""

from __future__ import annotations

import datetime as dt
import shutil
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

from digest.demo import shift_dates

from .conftest import SAMPLES, digest_command, digest_process, free_port


def copy_samples(tmp_path: Path) -> Path:
    """The bundled samples in ``tmp_path``, their feeds on a free port; the config's path."""
    samples = tmp_path / "samples"
    shutil.copytree(SAMPLES / "feeds", samples / "feeds")
    shutil.copy(SAMPLES / "subscribers.csv", samples)
    config = (SAMPLES / "feeds.yaml").read_text(encoding="utf-8")
    (samples / "feeds.yaml").write_text(
        config.replace("127.0.0.1:8024", f"127.0.0.1:{free_port()}"), encoding="utf-8"
    )
    return samples / "feeds.yaml"


def test_demo_after_a_failed_fetch_fetches_the_samples_anyway(tmp_path: Path) -> None:
    config = copy_samples(tmp_path)
    failed = digest_command("fetch", config=config)  # nothing serves the samples yet
    assert failed.returncode == 1 and "Fetched 0/9 feeds" in failed.stdout
    outbox = tmp_path / "outbox"
    result = digest_process("demo", config=config, env={"DIGEST_OUTBOX": str(outbox)})
    assert result.returncode == 0, result.stderr
    assert "Fetched 9/9 feeds" in result.stdout
    assert len(list(outbox.rglob("*.eml"))) == 4


def test_demo_leaves_one_multipart_eml_per_sample_subscriber(tmp_path: Path) -> None:
    samples = copy_samples(tmp_path).parent
    outbox = tmp_path / "outbox"
    result = digest_process(
        "demo", config=samples / "feeds.yaml", env={"DIGEST_OUTBOX": str(outbox)}
    )
    assert result.returncode == 0, result.stderr
    assert "Fetched 9/9 feeds" in result.stdout
    (folder,) = outbox.iterdir()
    emails = sorted(folder.glob("*.eml"))
    lines = (SAMPLES / "subscribers.csv").read_text(encoding="utf-8").splitlines()[1:]
    expected = [line.split(",")[0] for line in lines]
    assert sorted(path.stem for path in emails) == sorted(expected)
    for path in emails:
        message = message_from_bytes(path.read_bytes(), policy=default_policy)
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert "covered by 3 outlets" in text and "covered by 3 outlets" in html
    # Run again: nobody gets the edition twice.
    again = digest_process(
        "demo", config=samples / "feeds.yaml", env={"DIGEST_OUTBOX": str(outbox)}
    )
    assert again.returncode == 0, again.stderr
    assert "to 0 subscribers (4 had it already)" in again.stdout


def test_shift_dates_moves_rss_and_atom_dates_alike() -> None:
    document = (
        b"<rss><item><pubDate>Mon, 23 Nov 2026 14:05:00 -0500</pubDate></item></rss>"
        b"<feed><entry><published>2026-11-23T19:05:00Z</published></entry></feed>"
    )
    shifted = shift_dates(document, dt.timedelta(days=1, hours=2))
    assert b"<pubDate>Tue, 24 Nov 2026 16:05:00 -0500</pubDate>" in shifted
    assert b"<published>2026-11-24T21:05:00Z</published>" in shifted
