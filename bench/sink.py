"""An SMTP server on 127.0.0.1 that accepts every message and keeps none: the far end of a
send benchmark, as cheap as it can be so that it measures the sender.

It runs in a process of its own (``serve_sink``), so it takes no time from the sender's
interpreter; it speaks just enough SMTP for smtplib: EHLO (with 8BITMIME and SMTPUTF8), MAIL,
RCPT, DATA, RSET, NOOP and QUIT, each answered at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_EHLO = b"250-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 0\r\n"
_REPLIES = {
    b"HELO": b"250 sink\r\n",
    b"MAIL": b"250 OK\r\n",
    b"RCPT": b"250 OK\r\n",
    b"RSET": b"250 OK\r\n",
    b"NOOP": b"250 OK\r\n",
}
_END_OF_DATA = b"\r\n.\r\n"


class _Session(asyncio.Protocol):
    """One client: commands answered line by line, message data skipped up to its end."""

    def __init__(self, received: Any) -> None:
        self._received = received
        self._buffer = bytearray()
        self._in_data = False
        # Where the search for the end of the data goes on from: the part before has none.
        self._searched = 0
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._buffer += data
        while self._buffer:
            if self._in_data:
                # The data began right after "354", so its first line's CRLF is the one before.
                end = self._buffer.find(_END_OF_DATA, max(0, self._searched - 4))
                if end < 0:
                    self._searched = len(self._buffer)
                    return
                del self._buffer[: end + len(_END_OF_DATA)]
                self._in_data, self._searched = False, 0
                self._received.value += 1
                self._transport.write(b"250 OK discarded\r\n")
                continue
            line_end = self._buffer.find(b"\r\n")
            if line_end < 0:
                return
            verb = bytes(self._buffer[:4]).upper()
            del self._buffer[: line_end + 2]
            if verb == b"DATA":
                # "\r\n" before the data, so that an empty message ends at "\r\n.\r\n" too.
                self._buffer[:0] = b"\r\n"
                self._in_data = True
                self._transport.write(b"354 go ahead\r\n")
            elif verb == b"EHLO":
                self._transport.write(_EHLO)
            elif verb == b"QUIT":
                self._transport.write(b"221 bye\r\n")
                self._transport.close()
                return
            else:
                self._transport.write(_REPLIES.get(verb, b"500 unknown command\r\n"))


def _serve(listener: socket.socket, received: Any, ready: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Session(received), sock=listener)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


@dataclass(frozen=True)
class Sink:
    """A running sink: where it listens, and how many messages it has taken."""

    host: str
    port: int
    _received: Any

    @property
    def received(self) -> int:
        return int(self._received.value)


@contextlib.contextmanager
def serve_sink() -> Iterator[Sink]:
    """A sink on 127.0.0.1 in its own process, on a port the system picks, while in use."""
    context = multiprocessing.get_context("spawn")
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    port = int(listener.getsockname()[1])
    received = context.Value("q", 0, lock=False)
    ready = context.Event()
    process = context.Process(target=_serve, args=(listener, received, ready), daemon=True)
    process.start()
    listener.close()  # the server process has its own copy
    try:
        if not ready.wait(60):
            raise SystemExit("bench: the SMTP sink did not start")
        yield Sink("127.0.0.1", port, received)
    finally:
        process.terminate()
        process.join(10)
