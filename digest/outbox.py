"""The embedded SMTP server: on 127.0.0.1, it files each message into ``outbox/``.

With no DIGEST_SMTP_URL, mail still goes through real SMTP, to this aiosmtpd server, which
writes ``outbox/<edition date>/<recipient>.eml``.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9@._+-]")


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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def outbox_server(directory: Path) -> Iterator[str]:
    """Run an SMTP server on 127.0.0.1 that writes messages into ``directory``.

    Yields the ``smtp://`` URL to send to.
    """
    port = _free_port()
    controller = Controller(_OutboxHandler(directory), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}"
    finally:
        controller.stop()
