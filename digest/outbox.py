"""The embedded SMTP server that fills ``outbox/``: aiosmtpd on 127.0.0.1.

When ``DIGEST_SMTP_URL`` is not set, every message still goes through real SMTP, to this
server, which writes each one to ``outbox/<edition date>/<recipient>.eml``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

# Letters and digits of any script stay, so two recipients whose local parts are not ASCII
# do not both become "__@example.com.eml".
_UNSAFE_FILENAME = re.compile(r"[^\w@.+-]")


class LoopbackController(Controller):
    """aiosmtpd's threaded ``Controller`` on 127.0.0.1, on a port the system picks.

    The listening socket is bound to port 0 and handed to the server as it is, so no other
    process can take the port between choosing and binding it. ``port`` is the port it got
    once ``start()`` returns (``Controller`` connects to it there to check it is up).
    """

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=0, **kwargs)

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self._serve_on_bound_socket()

    async def _serve_on_bound_socket(self) -> asyncio.AbstractServer:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind((self.hostname, 0))
            self.port = int(listener.getsockname()[1])
            return await self.loop.create_server(
                self._factory_invoker, sock=listener, ssl=self.ssl_context
            )
        except BaseException:
            listener.close()
            raise

    @property
    def url(self) -> str:
        """The ``smtp://`` URL to send to."""
        return f"smtp://{self.hostname}:{self.port}"


class _OutboxHandler:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        content = envelope.original_content or envelope.content
        for recipient in envelope.rcpt_tos:
            name = _UNSAFE_FILENAME.sub("_", recipient) + ".eml"
            write_atomically(self.directory / name, content)
        return "250 Message accepted for delivery"


def write_atomically(path: Path, content: bytes) -> None:
    """Write ``path`` so that a reader sees the old file or the whole new one."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_bytes(content)
    os.replace(partial, path)


@contextlib.contextmanager
def outbox_server(directory: Path) -> Iterator[str]:
    """Run an SMTP server on 127.0.0.1 that writes messages into ``directory``.

    Yields the ``smtp://`` URL to send to.
    """
    # SMTPUTF8, as a real server may offer it: an address whose local part is not ASCII
    # reaches the outbox too.
    controller = LoopbackController(_OutboxHandler(directory), enable_SMTPUTF8=True)
    controller.start()
    try:
        yield controller.url
    finally:
        controller.stop()
