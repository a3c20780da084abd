"""``digest serve``: the whole service in one process; ``digest status``: how it is doing."""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import click

from ._app import Context, main, pass_context, say

if TYPE_CHECKING:
    import uvicorn


def _server(config: uvicorn.Config, on_stop: Any) -> uvicorn.Server:
    """A uvicorn server whose SIGTERM and Ctrl-C stop the whole service gracefully and end
    the process with status 0 (uvicorn's own raises the signal again after its shutdown)."""
    import signal

    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            else:
                on_stop(signal.Signals(sig).name)
                self.should_exit = True

    return Server(config)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8025, show_default=True, help="Port for the web pages.")
@click.option(
    "--inbound-port",
    type=click.IntRange(0, 65535),
    default=2525,
    show_default=True,
    help="SMTP port (on --host) for the list's own mail: unsubscribes and bounces (0: any).",
)
@click.option("--no-inbound", is_flag=True, help="Do not receive mail (another host does).")
@click.option(
    "--log-format",
    type=click.Choice(["human", "json"]),
    default="human",
    show_default=True,
    help="One line per event: for people, or one JSON object for a log collector.",
)
@pass_context
def serve(
    context: Context, host: str, port: int, inbound_port: int, no_inbound: bool, log_format: str
) -> None:
    """Run the service: fetch at start and every fetch.fetch_every, send each edition at
    send_at, serve the web pages, and receive unsubscribes and bounces by mail.

    Only one serve on a database sends (it holds the sender lease); another serves pages
    and says so. SIGTERM or Ctrl-C stops it: the message in flight finishes and is recorded.
    """
    import logging
    import os
    import signal
    import socket

    import uvicorn

    from ..logs import configure_logging
    from ..receive import inbound_server, make_receiver
    from ..schedule import Service
    from ..timetable import describe
    from ..web import make_app

    settings = context.settings
    try:
        listener = socket.create_server((host, port))
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise click.ClickException(
            f"cannot serve the web pages on {host}:{port}: {reason}"
        ) from None
    configure_logging(log_format)
    log = logging.getLogger("digest.serve")
    with listener, context.store() as store, ExitStack() as running:
        service = Service(settings, store)

        def stopping(name: str) -> None:
            if not service.stop.is_set():
                log.info("%s: stopping (the message in flight finishes first)", name)
            service.stop.set()

        config = uvicorn.Config(
            make_app(settings, store, service=service),
            host=host,
            port=port,
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=3,
        )
        server = _server(config, stopping)
        # Until the web server takes them over, the signals stop the start-up too.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, server.handle_exit)
        if not no_inbound:
            try:
                _, listening = running.enter_context(
                    inbound_server(make_receiver(settings, store), host, inbound_port)
                )
            except OSError as exc:
                # Most often a first serve on this host receives the mail already: this one
                # still serves the pages (and sends, if it holds the lease).
                reason = os.strerror(exc.errno) if exc.errno else str(exc)
                log.warning(
                    "not receiving mail: cannot listen on %s:%d: %s", host, inbound_port, reason
                )
            else:
                log.info("receiving the list's mail on %s:%d", host, listening)
        service.start()
        log.info(
            "serving http://%s:%d/; editions %s; next at %s",
            host,
            port,
            describe(service.timetable),
            service.next_edition().astimezone(service.timetable.timezone).isoformat(),
        )
        try:
            if not server.should_exit:
                server.run(sockets=[listener])
        finally:
            service.stop.set()
            service.shutdown()
    log.info("stopped")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print what /status answers, as JSON.")
@pass_context
def status(context: Context, as_json: bool) -> None:
    """The service at a glance: when the next edition goes out, who sends, the last fetch,
    each feed's health and the last editions with their send ledger."""
    import datetime as dt
    import json

    from ..status import read_status, status_json, status_lines

    with context.store() as store:
        report = read_status(context.settings, store, dt.datetime.now(dt.UTC))
    if as_json:
        say(json.dumps(status_json(report), indent=2))
        return
    for line in status_lines(report):
        say(line)
