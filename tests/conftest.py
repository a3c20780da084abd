"""Real parts on loopback: an HTTP server for feeds, aiosmtpd for mail, SQLite in tmp_path, and
a throwaway PostgreSQL cluster on a Unix socket (tests/postgres.py)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from digest.outbox import LoopbackController

from .postgres import Cluster, throwaway_cluster

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
SHARED_DATA = REPO.parent / "shared" / "data"
#: The sample feeds' edition: 2026-11-24, sent at 07:00 New York time.
SAMPLE_DATE = dt.date(2026, 11, 24)
SAMPLE_NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


@dataclass
class Route:
    """What the test server answers on one path."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    #: Seconds between bytes of the body: a server that trickles.
    drip: float = 0.0
    #: Close the connection after the headers, without a body.
    reset: bool = False


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gives up mid-response is what some tests do on purpose


class FeedServer:
    """A real HTTP server on 127.0.0.1 answering from a table of routes."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.stopping = threading.Event()
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers.items())))
                route = server.routes.get(self.path)
                if route is None:
                    self._answer(Route(b"not found", 404))
                    return
                etag = route.headers.get("ETag")
                if etag is not None and self.headers.get("If-None-Match") == etag:
                    self._answer(Route(b"", 304, {"ETag": etag}))
                    return
                if route.delay:
                    threading.Event().wait(route.delay)
                if route.reset:
                    self.send_response(200)
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self._answer(route)

            def _answer(self, route: Route) -> None:
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                if route.status != 304:
                    self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                if route.status == 304:
                    return
                if not route.drip:
                    self.wfile.write(route.body)
                    return
                for index in range(len(route.body)):
                    try:
                        self.wfile.write(route.body[index : index + 1])
                        self.wfile.flush()
                    except OSError:
                        return  # the client gave up, as it should
                    if server.stopping.wait(route.drip):
                        return

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve_file(self, path: str, file: Path, **headers: str) -> str:
        self.routes[path] = Route(file.read_bytes(), headers=headers)
        return self.url(path)

    def close(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """One PostgreSQL cluster for the whole run; each test empties its tables (``db_url``)."""
    with throwaway_cluster() as cluster:
        yield cluster


def _emptied(url: str) -> None:
    """Every table of a migrated database emptied, ids starting again from 1; the schema
    version is all ``meta`` keeps."""
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            tables = [name for name in inspect(connection).get_table_names() if name != "meta"]
            if tables:
                names = ", ".join(f'"{name}"' for name in tables)
                connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            if "meta" in inspect(connection).get_table_names():
                connection.execute(text("DELETE FROM meta WHERE key <> 'schema_version'"))
    finally:
        engine.dispose()


#: The databases the store, ledger and sender tests run on.
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database's URL: a SQLite file in tmp_path, or the PostgreSQL cluster's."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'digest.db'}"
    cluster: Cluster = request.getfixturevalue("postgres")
    _emptied(cluster.url())
    return cluster.url()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


class Inbox:
    """aiosmtpd on 127.0.0.1, keeping every message it receives.

    ``options`` go to aiosmtpd's ``SMTP`` (``enable_SMTPUTF8``, ``authenticator``...).
    """

    def __init__(self, **options: Any) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        #: The MAIL FROM parameters of each message ("SMTPUTF8", "SIZE=...").
        self.mail_options: list[list[str]] = []
        self.refuse: set[str] = set()
        inbox = self

        class Handler:
            async def handle_RCPT(
                self, server: Any, session: Any, envelope: Any, address: str, options: Any
            ) -> str:
                if address in inbox.refuse:
                    return "550 5.1.1 mailbox unavailable"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                inbox.messages.append(
                    (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
                )
                inbox.mail_options.append(list(envelope.mail_options))
                return "250 OK"

        self.controller = LoopbackController(Handler(), **options)
        self.controller.start()
        self.port = self.controller.port

    @property
    def url(self) -> str:
        return self.controller.url

    def parsed(self) -> dict[str, Message]:
        """Each received message by its first recipient."""
        return {
            recipients[0]: message_from_bytes(raw, policy=default_policy)
            for _, recipients, raw in self.messages
        }

    def close(self) -> None:
        self.controller.stop()


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    smtp = Inbox()
    yield smtp
    smtp.close()


def write_config(directory: Path, feeds: list[dict[str, Any]], **edition: Any) -> Path:
    """A feeds.yaml in ``directory`` with the sample edition settings and ``feeds``."""
    import yaml

    settings = {
        "title": "Market Digest",
        "tagline": "Daily stocks & crypto headlines, free to your inbox",
        "send_at": "07:00",
        "timezone": "America/New_York",
        "from": "Market Digest <digest@example.com>",
        "site_url": "http://127.0.0.1:8025",
        "max_stories": 30,
        "postal_address": "Market Digest, 100 Example Street, Springfield, IL 62701, USA",
        **edition,
    }
    path = directory / "feeds.yaml"
    path.write_text(
        yaml.safe_dump({"edition": settings, "allow_private_hosts": True, "feeds": feeds}),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def serve_samples(feed_server: FeedServer, tmp_path: Path) -> Callable[..., Path]:
    """Serve every sample feed and write a config for them; returns the config path."""

    def make(**edition: Any) -> Path:
        import yaml

        sample = yaml.safe_load((SAMPLES / "feeds.yaml").read_text(encoding="utf-8"))
        feeds = []
        for feed in sample["feeds"]:
            name = feed["url"].rsplit("/", 1)[1]
            url = feed_server.serve_file(f"/{name}", SAMPLES / "feeds" / name)
            feeds.append({**feed, "url": url})
        return write_config(tmp_path, feeds, **edition)

    return make


@dataclass(frozen=True)
class DemoEdition:
    """The demo run once on a copy of the samples: its config and the messages it sent."""

    config: Path
    messages: tuple[Path, ...]


def free_port() -> int:
    """A port that was free a moment ago: only for a server in another process.

    A server in this process binds port 0 itself and reports the port it got (see
    ``FeedServer``, ``Inbox``, ``serve_app``). The demo cannot: it runs in a child process
    and serves the sample feeds on the port their URLs in the config name, and those URLs
    are the feeds' identity in the store, so the port has to be in the config before the
    child starts. Should another process take it in between, the demo fails saying so
    ("cannot serve the sample feeds on 127.0.0.1:PORT"), not quietly.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def demo_edition(tmp_path_factory: pytest.TempPathFactory) -> DemoEdition:
    import shutil

    root = tmp_path_factory.mktemp("demo")
    samples = root / "samples"
    shutil.copytree(SAMPLES / "feeds", samples / "feeds")
    shutil.copy(SAMPLES / "subscribers.csv", samples)
    text = (SAMPLES / "feeds.yaml").read_text(encoding="utf-8")
    config = samples / "feeds.yaml"
    config.write_text(text.replace("127.0.0.1:8024", f"127.0.0.1:{free_port()}"), encoding="utf-8")
    result = digest_process("demo", config=config, env={"DIGEST_OUTBOX": str(root / "outbox")})
    assert result.returncode == 0, result.stderr
    messages = tuple(sorted((root / "outbox").rglob("*.eml")))
    assert messages
    return DemoEdition(config, messages)


@contextlib.contextmanager
def serve_app(app: Any) -> Iterator[int]:
    """Run an ASGI app with uvicorn on 127.0.0.1, on a socket bound to port 0; yields its port."""
    import time

    import uvicorn

    listener = socket.create_server(("127.0.0.1", 0))
    port = int(listener.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, log_level="error"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()


def invoke_cli(config: Path, *args: str) -> tuple[int, str]:
    """Run the ``digest`` CLI in-process on ``config``: its exit code and output."""
    from click.testing import CliRunner

    from digest.cli import main

    result = CliRunner().invoke(
        main, ["--config", str(config), *args], env={"DIGEST_DB": "", "COLUMNS": "250"}
    )
    return result.exit_code, result.output


@dataclass(frozen=True)
class CommandResult:
    """What a run of the ``digest`` command left: exit status, standard output, standard error."""

    returncode: int
    stdout: str
    stderr: str


def digest_command(*args: str, config: Path, env: dict[str, str] | None = None) -> CommandResult:
    """Run the ``digest`` command on ``config`` in this process, as a child process would.

    The environment is the one ``digest_process`` gives a child: this process's without its
    ``DIGEST_*`` variables, then ``env`` (``load_settings`` reads ``os.environ``). Stdout and
    stderr are kept apart, and an exception that escapes the command is written to stderr as
    the traceback Python would print, with exit status 1.
    """
    from click.testing import CliRunner

    from digest.cli import main

    # CliRunner sets these in os.environ for the run and restores it after; None unsets.
    overrides: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith("DIGEST_")
    }
    overrides.update(env or {})
    result = CliRunner().invoke(main, ["--config", str(config), *args], env=overrides)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return CommandResult(result.exit_code, result.stdout, stderr)


def digest_process(
    *args: str,
    config: Path,
    env: dict[str, str] | None = None,
    command: tuple[str, ...] = (sys.executable, "-m", "digest"),
) -> CommandResult:
    """Run the real ``digest`` command on ``config`` in a child process.

    Its environment is this process's without the ``DIGEST_*`` variables, then ``env``.
    """
    clean = {name: value for name, value in os.environ.items() if not name.startswith("DIGEST_")}
    result = subprocess.run(
        [*command, "--config", str(config), *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=120,
        check=False,
    )
    return CommandResult(result.returncode, result.stdout, result.stderr)
