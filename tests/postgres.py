"""A throwaway PostgreSQL cluster: initdb in a temporary folder, listening only on a Unix socket
there, stopped and deleted when done. Used by the tests and by ``make bench``.

Debian's ``postgresql`` package provides the programs (``scripts/install-system-deps``
installs it). The server refuses to run as root, so as root the cluster belongs to the
``postgres`` user the package creates. Durability is off (fsync, synchronous_commit): a cluster
that lives for one test run has nothing to keep through a power cut.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: The database made with the cluster, which the store tests share (emptied between them).
DATABASE = "digest"


class PostgresMissing(RuntimeError):
    """No PostgreSQL server programs on this machine."""


def server_bin() -> Path:
    """The folder with initdb, pg_ctl and postgres: the newest installed version's."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name)
    )
    if found:
        return found[-1].parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    raise PostgresMissing(
        "PostgreSQL is not installed: run 'sudo scripts/install-system-deps' (package postgresql)"
    )


class Cluster:
    """A running cluster; ``url(name)`` is a SQLAlchemy URL for one of its databases."""

    def __init__(self, folder: Path, owner: str | None) -> None:
        self.folder = folder
        self.socket_dir = folder / "socket"
        self.user = owner or pwd.getpwuid(os.getuid()).pw_name
        self._owner = owner
        self._bin = server_bin()

    def _run(self, *command: str) -> None:
        argv = [str(self._bin / command[0]), *command[1:]]
        if self._owner is not None:
            argv = ["runuser", "-u", self._owner, "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, text=True)

    def start(self) -> Cluster:
        data = self.folder / "data"
        self.socket_dir.mkdir()
        if self._owner is not None:
            entry = pwd.getpwnam(self._owner)
            for path in (self.folder, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(data), "-U", self.user, "-A", "trust", "-E", "UTF8")
        options = (
            f"-c listen_addresses='' -c unix_socket_directories='{self.socket_dir}'"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=200"
        )
        log = str(self.folder / "log")
        self._run("pg_ctl", "-D", str(data), "-w", "-o", options, "-l", log, "start")
        self.create_database(DATABASE)
        return self

    def create_database(self, name: str) -> str:
        self._run("createdb", "-h", str(self.socket_dir), "-U", self.user, name)
        return self.url(name)

    def url(self, name: str = DATABASE) -> str:
        return f"postgresql+psycopg://{self.user}@/{name}?host={self.socket_dir}"

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "stop")


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """A cluster in a temporary folder while in use; raises PostgresMissing without one."""
    server_bin()
    owner = "postgres" if os.getuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="digest-pg-"))
    cluster = Cluster(folder, owner)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
