"""``digest inbound``: receive the list's own mail (mailto: unsubscribes and bounce reports)."""

from __future__ import annotations

from contextlib import ExitStack

import click

from ._app import Context, main, pass_context, say


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=2525,
    show_default=True,
    help="SMTP port to listen on (0: any free port, printed).",
)
@pass_context
def inbound(context: Context, host: str, port: int) -> None:
    """Receive mail for the From address: unsubscribe who mails the List-Unsubscribe
    address, and record bounce reports (an address that keeps bouncing is dropped).

    Mail for any other address is refused; anything else is taken and ignored. Each
    unsubscribe and bounce is logged on stderr.
    """
    import logging
    import os
    import signal
    import threading

    from ..receive import inbound_server, make_receiver

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # aiosmtpd logs every connection and command at INFO: only its warnings are worth a line.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    with context.store() as store, ExitStack() as running:
        receiver = make_receiver(context.settings, store)
        try:
            _, listening = running.enter_context(inbound_server(receiver, host, port))
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise click.ClickException(f"cannot listen on {host}:{port}: {reason}") from None
        boxes = receiver.mailboxes
        say(
            f"Receiving mail for {boxes.sender}, {boxes.bounces} and {boxes.unsubscribe} "
            f"on {host}:{listening} (Ctrl-C stops)"
        )
        # Ctrl-C and SIGTERM set a flag the loop below looks at, rather than raising wherever
        # the main thread happens to be: the server then stops the ordinary way.
        stopping = threading.Event()
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda *_: stopping.set())
        while not stopping.wait(0.2):
            pass
        say("Stopped.")
