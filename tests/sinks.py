"""An SMTP server on 127.0.0.1 that misbehaves on purpose, for the send ledger's tests.

It speaks just enough SMTP (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) and, for each message,
asks ``reply_to(recipient, attempt)`` what to do: answer a code, withhold the answer and drop
the connection, or stall. ``drop_after`` closes a connection, idle, after that many messages.
Every message whose data it read is kept, answered or not.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from digest.store import Store

#: What to do with one message: an SMTP reply line, or one of these.
WITHHOLD_AND_DIE = "withhold-and-die"
STALL = "stall"


@dataclass
class Sink:
    """The server; ``start()`` it, read ``received`` and ``tries``, ``close()`` it."""

    #: (recipient, attempt) → reply for RCPT ("250 OK", "451 ...", "550 ...").
    rcpt_reply: Callable[[str, int], str] = lambda recipient, attempt: "250 OK"
    #: (recipient, attempt) → reply after the data: a line, WITHHOLD_AND_DIE or STALL.
    data_reply: Callable[[str, int], str] = lambda recipient, attempt: "250 OK"
    #: Close each connection before its next command once it has taken this many messages.
    drop_after: int | None = None
    #: Recipient → how many messages with data were received (answered or not).
    received: Counter[str] = field(default_factory=Counter)
    #: Recipient → how many times it was offered in RCPT.
    tries: Counter[str] = field(default_factory=Counter)
    port: int = 0

    def start(self) -> Sink:
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def serve() -> None:
            # A whole message is read in one go, so the buffer must hold the largest.
            self._server = await asyncio.start_server(
                self._session, "127.0.0.1", 0, limit=4 * 1024 * 1024
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()

        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(serve(), self._loop)
        ready.wait(5)
        return self

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def close(self) -> None:
        """Stop listening and end every session (a stalled one too); safe to call twice."""
        if self._loop.is_closed():
            return

        async def stop() -> None:
            self._server.close()
            sessions = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in sessions:
                task.cancel()
            await asyncio.gather(*sessions, return_exceptions=True)
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        taken = 0
        recipient = ""
        try:
            writer.write(b"220 sink ESMTP\r\n")
            while True:
                line = await reader.readline()
                if not line:
                    return
                command = line.decode(errors="replace").strip()
                verb = command[:4].upper()
                if self.drop_after is not None and taken >= self.drop_after and verb == "MAIL":
                    return  # an idle connection the server let go
                if verb == "EHLO":
                    writer.write(b"250-sink\r\n250 8BITMIME\r\n")
                elif verb in ("HELO", "RSET", "NOOP") or verb == "MAIL":
                    writer.write(b"250 OK\r\n")
                elif verb == "RCPT":
                    recipient = command.partition(":")[2].strip().strip("<>")
                    self.tries[recipient] += 1
                    reply = self.rcpt_reply(recipient, self.tries[recipient])
                    writer.write(f"{reply}\r\n".encode())
                elif verb == "DATA":
                    writer.write(b"354 go ahead\r\n")
                    await writer.drain()
                    # smtplib ends the data with CRLF, so it always ends "\r\n.\r\n".
                    try:
                        await reader.readuntil(b"\r\n.\r\n")
                    except asyncio.IncompleteReadError:
                        return
                    self.received[recipient] += 1
                    taken += 1
                    reply = self.data_reply(recipient, self.tries[recipient])
                    if reply == WITHHOLD_AND_DIE:
                        return
                    if reply == STALL:
                        await asyncio.sleep(3600)
                    writer.write(f"{reply}\r\n".encode())
                elif verb == "QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    return
                else:
                    writer.write(b"500 what\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()


class Outcome(NamedTuple):
    """What the ledger and the sink say of an edition after senders were killed."""

    #: The ledger's count of each status.
    counts: dict[str, int]
    #: Addresses the ledger reports unknown (handed over at a kill, answer lost).
    unknown: set[str]
    #: Addresses the sink received more than once.
    duplicates: list[str]
    #: Addresses neither unknown nor received exactly once.
    lost: list[str]


def outcome(db_url: str, date: dt.date, people: Sequence[str], sink: Sink) -> Outcome:
    store = Store(db_url)
    try:
        counts = store.delivery_counts(date)
        statuses = {row[0]: row[1] for row in store.problem_deliveries(date)}
    finally:
        store.close()
    unknown = {address for address, status in statuses.items() if status == "unknown"}
    duplicates = [address for address, n in sink.received.items() if n > 1]
    lost = [a for a in people if a not in unknown and sink.received[a] != 1]
    return Outcome(counts, unknown, duplicates, lost)
